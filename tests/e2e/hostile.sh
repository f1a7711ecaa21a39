#!/bin/sh
# End-to-end: hostile and broken clients (issue 6 §2, without the connection
# flood). For each: what the client observes (close within a deadline, CONNACK,
# HTTP status, TLS alert), the hub's log line with its reason= for exactly that
# connection, and that an honest device and an honest API call still work.
# The clients are Python scripts in hostile/ (standard library only, loopback,
# bounded in time and count).
#
# What evhttp answers itself (header/body limits, a method it cannot parse)
# is HTML; hubd still logs each with a reason.
# Usage: hostile.sh BUILD_DIR   (ports: HUB_HTTPS_PORT / HUB_MQTT_PORT)
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
HERE=$(cd "$(dirname "$0")" && pwd)
H=$HERE/hostile
. "$HERE/lib.sh"
trap cleanup_hub EXIT INT TERM
command -v python3 >/dev/null 2>&1 || { echo "hostile.sh: python3 is required (scripts/install-deps)"; exit 1; }
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree

# Memory bounds read VmRSS. Under AddressSanitizer freed memory waits in a
# 256 MiB quarantine, so RSS grows with every allocation; a small quarantine
# keeps RSS close to what is live (shadow memory still adds an eighth).
RSS_GROWTH_KIB=16384
if nm "$HUBD" 2>/dev/null | grep -q __asan_init; then
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
    export ASAN_OPTIONS
    RSS_GROWTH_KIB=24576
fi

# Small limits so that every deadline is reached in a second or two.
HANDSHAKE_MS=1000
CONNECT_MS=1000
REQUEST_MS=2000
MAX_HEADER=4096
MAX_BODY=8192
MAX_PACKET=4096
start_hub --tls-handshake-timeout-ms $HANDSHAKE_MS --mqtt-connect-timeout-ms $CONNECT_MS \
    --http-request-timeout-ms $REQUEST_MS --max-header-bytes $MAX_HEADER \
    --max-request-body-bytes $MAX_BODY --mqtt-max-packet-bytes $MAX_PACKET
PKI=$HUB_DIR/pki
mkdir -p "$PKI"
cd "$PKI" || exit 1
q() { "$@" >/dev/null 2>&1 || echo "setup step failed: $*"; }

# --- PKI: a verified CA, devices h1 (honest) and h2 (abused) -------------------
q "$HUBCTL" cert root --out root --subject "Hostile Root CA"
for d in h1 h2; do
    q "$HUBCTL" cert device --out $d --device-id $d --issuer-cert root.pem --issuer-key root.key
done
q "$HUBCTL" ca upload hca root.pem
q "$HUBCTL" cert verification --out pop --code "$("$HUBCTL" ca code hca)" \
    --issuer-cert root.pem --issuer-key root.key
q "$HUBCTL" ca verify hca pop.pem
for d in h1 h2; do q "$HUBCTL" device create $d --auth ca; done
# A real chain of 99 intermediates under the verified root, leaf for h2.
prev=root
for i in $(seq 1 99); do
    q "$HUBCTL" cert intermediate --out i$i --issuer-cert $prev.pem --issuer-key $prev.key \
        --subject "Hostile Int $i"
    prev=i$i
done
q "$HUBCTL" cert device --out long --device-id h2 --issuer-cert i99.pem --issuer-key i99.key
{ cat long.pem; for i in $(seq 99 -1 1); do cat i$i.pem; done; } >long100.pem
# About 1.5 MiB: the 99 intermediates 25 times over.
{ cat long.pem; for r in $(seq 1 25); do for i in $(seq 1 99); do cat i$i.pem; done; done; } >big.pem
# 99 self-issued CAs with one name and one key, all signing each other: every
# ordering is a path with valid signatures, the worst case for path building.
openssl ecparam -name prime256v1 -genkey -noout -out loop.key 2>/dev/null
for i in $(seq 1 99); do
    q openssl req -x509 -new -key loop.key -subj "/CN=Loop CA" -set_serial $i -days 2 \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -out loop$i.pem
done
openssl ecparam -name prime256v1 -genkey -noout -out loopleaf.key 2>/dev/null
q openssl req -new -key loopleaf.key -subj /CN=h2 -out loopleaf.csr
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >leaf.ext
q openssl x509 -req -in loopleaf.csr -CA loop1.pem -CAkey loop.key -set_serial 1000 -days 2 \
    -extfile leaf.ext -out loopleaf.pem
{ cat loopleaf.pem; for i in $(seq 1 99); do cat loop$i.pem; done; } >loop100.pem

NOW=$(date +%s)
HOSTILE_SVC_TOKEN=$(sas_token localhost iothubowner "$(policy_key iothubowner)" $((NOW + 3600)))
HOSTILE_PKI=$PKI
HOSTILE_HANDSHAKE_TIMEOUT_MS=$HANDSHAKE_MS
HOSTILE_CONNECT_TIMEOUT_MS=$CONNECT_MS
HOSTILE_REQUEST_TIMEOUT_MS=$REQUEST_MS
HOSTILE_MAX_HEADER=$MAX_HEADER
HOSTILE_MAX_BODY=$MAX_BODY
HOSTILE_MAX_PACKET=$MAX_PACKET
HOSTILE_RSS_GROWTH_KIB=$RSS_GROWTH_KIB
HUBD_PID=$HUB_PID
export HUB_HTTPS_PORT HUB_MQTT_PORT HUB_CAFILE HOSTILE_SVC_TOKEN HOSTILE_PKI HUBD_PID \
    HOSTILE_HANDSHAKE_TIMEOUT_MS HOSTILE_CONNECT_TIMEOUT_MS HOSTILE_REQUEST_TIMEOUT_MS \
    HOSTILE_MAX_HEADER HOSTILE_MAX_BODY HOSTILE_MAX_PACKET HOSTILE_RSS_GROWTH_KIB

# --- helpers ----------------------------------------------------------------------
log_mark() { wc -l <"$HUB_DIR/hubd.log"; }
# log_since MARK PATTERN: a log line after line MARK matches PATTERN.
log_since() { tail -n +"$(($1 + 1))" "$HUB_DIR/hubd.log" | grep -qE -- "$2"; }

# case NAME REASON SCRIPT CASE [ENV=VALUE...]: runs one helper case; it must
# hold, and the hub must log `peer=<the client> ... reason=REASON` for it
# (REASON "-" for an accepted request; a regex is fine).
case_() {
    name=$1; reason=$2; script=$3; cas=$4; shift 4
    mark=$(log_mark)
    if ! out=$(env "$@" timeout 60 python3 "$H/$script.py" "$cas" 2>&1); then
        fail "$name" "$(printf '%s' "$out" | tr '\n' ' ')"
        return
    fi
    pass "$name: $(printf '%s' "$out" | grep -v '^peer=' | tr '\n' ' ')"
    [ "$reason" = "-" ] && return
    peer=$(printf '%s' "$out" | sed -n 's/^peer=//p')
    # The line comes when the hub closes; give it a moment.
    i=0
    until log_since "$mark" "peer=$peer .*reason=$reason"; do
        i=$((i + 1))
        if [ $i -gt 20 ]; then fail "$name: logged reason=$reason" "no line for peer=$peer"; return; fi
        sleep 0.1
    done
    pass "$name: logged reason=$reason"
}

# The hub still serves: an honest device publishes QoS 1 and gets its PUBACK,
# an honest API call gets its 200.
honest() {
    case_ "  $1: an honest device still publishes" "-" mqtt honest
    case_ "  $1: an honest API call still answers" "-" http honest
}

# Sockets only: the store opens a second SQLite handle on first use.
fd_count() { for f in /proc/"$HUB_PID"/fd/*; do readlink "$f"; done | grep -c '^socket:'; }
fd_list() { for f in /proc/"$HUB_PID"/fd/*; do readlink "$f"; done | sort | uniq -c | tr '\n' ' '; }
FD0=$(fd_count)
FDS0=$(fd_list)

# --- TLS, MQTT port -----------------------------------------------------------------
M="HOSTILE_TLS_PORT=$HUB_MQTT_PORT"
case_ "mqtt/tls: nothing sent, cut at the handshake deadline" TLS_HANDSHAKE_TIMEOUT tls silent "$M"
case_ "mqtt/tls: partial ClientHello, cut at the deadline" TLS_HANDSHAKE_TIMEOUT tls partial_hello "$M"
case_ "mqtt/tls: trickled ClientHello, cut at the deadline" TLS_HANDSHAKE_TIMEOUT tls trickle_hello "$M"
case_ "mqtt/tls: HTTP text instead of a ClientHello" 'TLS_ERROR detail=".*http request' tls http_text "$M"
case_ "mqtt/tls: plaintext MQTT instead of TLS" TLS_ERROR tls mqtt_plain "$M"
case_ "mqtt/tls: random bytes" TLS_ERROR tls random_bytes "$M"
case_ "mqtt/tls: TLS 1.0 refused" 'TLS_ERROR detail=".*unsupported protocol' tls tls10 "$M"
case_ "mqtt/tls: TLS 1.1 refused" 'TLS_ERROR detail=".*unsupported protocol' tls tls11 "$M"
case_ "mqtt/tls: leaf + 99 intermediates refused fast" CHAIN_TOO_LONG tls chain_100 "$M"
case_ "mqtt/tls: 99 self-issued look-alike CAs refused fast" CHAIN_UNTRUSTED tls chain_loop "$M"
case_ "mqtt/tls: 1.5 MiB chain refused in the handshake" \
    'TLS_ERROR detail=".*excessive message size' tls chain_1mib "$M"
honest "after the TLS cases"

# Renegotiation: python's ssl cannot start one; openssl s_client does on "R".
# The hub (SSL_OP_NO_RENEGOTIATION) answers the new ClientHello with a
# no_renegotiation alert, s_client gives up with a fatal alert, the hub logs
# that alert. s_client has no source-port option, so the line is found as the
# first TLS_ERROR after the mark.
mark=$(log_mark)
reneg=$( (sleep 0.5; echo R; sleep 1.5) | timeout 10 openssl s_client -connect 127.0.0.1:$HUB_MQTT_PORT \
    -tls1_2 -CAfile "$HUB_CAFILE" -cert h1.pem -key h1.key 2>&1)
if printf '%s' "$reneg" | grep -q 'RENEGOTIATING' && printf '%s' "$reneg" | grep -q 'no renegotiation'; then
    pass "mqtt/tls: TLS 1.2 renegotiation refused (no_renegotiation alert)"
else
    fail "mqtt/tls: TLS 1.2 renegotiation refused" "$(printf '%s' "$reneg" | tail -5 | tr '\n' ' ')"
fi
sleep 0.3
if log_since "$mark" 'event=conn_closed .*reason=TLS_ERROR detail=".*alert handshake failure'; then
    pass "mqtt/tls: renegotiation: logged reason=TLS_ERROR"
else
    fail "mqtt/tls: renegotiation: logged reason=TLS_ERROR"
fi

# --- TLS, HTTPS port ----------------------------------------------------------------
# The HTTPS port cuts a handshake at tls_handshake_timeout_ms as a whole
# (src/http/deadline.c), however slowly the bytes come.
S="HOSTILE_TLS_PORT=$HUB_HTTPS_PORT"
SR="HOSTILE_HANDSHAKE_TIMEOUT_MS=$HANDSHAKE_MS"
case_ "https/tls: nothing sent, cut at the handshake deadline" TLS_HANDSHAKE_TIMEOUT tls silent "$S" "$SR"
case_ "https/tls: HTTP without TLS, closed" - tls http_text "$S"
case_ "https/tls: TLS 1.0 refused" - tls tls10 "$S"
case_ "https/tls: TLS 1.1 refused" - tls tls11 "$S"
case_ "https/tls: 1.5 MiB chain refused in the handshake" - tls chain_1mib "$S"
case_ "https/tls: trickled ClientHello cut at the handshake deadline" TLS_HANDSHAKE_TIMEOUT tls \
    trickle_hello "$S" "$SR"
honest "after the HTTPS TLS cases"

# --- TLS and MQTT, DPS registration port -----------------------------------------------
# The provisioning listener has its own connection code (src/dpsdev): the
# same deadlines and packet limits, logged as event=dps_conn_closed.
D="HOSTILE_TLS_PORT=$HUB_DPS_MQTT_PORT"
DM="HUB_MQTT_PORT=$HUB_DPS_MQTT_PORT"
case_ "dps/tls: nothing sent, cut at the handshake deadline" TLS_HANDSHAKE_TIMEOUT tls silent "$D"
case_ "dps/tls: random bytes" TLS_ERROR tls random_bytes "$D"
case_ "dps/tls: TLS 1.0 refused" TLS_ERROR tls tls10 "$D"
case_ "dps/mqtt: no CONNECT after the handshake" 'CONNECT_TIMEOUT|TLS_HANDSHAKE_TIMEOUT' mqtt no_connect "$DM"
case_ "dps/mqtt: 256 MiB CONNECT header" PACKET_TOO_LARGE mqtt huge_remaining_length_first "$DM"
honest "after the DPS port cases"

# --- MQTT -----------------------------------------------------------------------------
case_ "mqtt: no CONNECT after the handshake" CONNECT_TIMEOUT mqtt no_connect
case_ "mqtt: second CONNECT" PROTOCOL_VIOLATION mqtt second_connect
case_ "mqtt: remaining length 268435455, no body" PACKET_TOO_LARGE mqtt huge_remaining_length
case_ "mqtt: the same as the first packet" PACKET_TOO_LARGE mqtt huge_remaining_length_first
case_ "mqtt: five-byte remaining length" MALFORMED_PACKET mqtt malformed_length
case_ "mqtt: PUBLISH one byte over the limit, body withheld" PACKET_TOO_LARGE mqtt publish_too_large
case_ "mqtt: PUBLISH exactly at the limit is accepted" - mqtt publish_at_limit
case_ "mqtt: QoS 2 PUBLISH" QOS2_UNSUPPORTED mqtt qos2
case_ "mqtt: keep-alive 2 s then silence" KEEPALIVE_TIMEOUT mqtt keepalive_silence
case_ "mqtt: half-closed after CONNECT" PEER_CLOSED mqtt half_close
honest "after the MQTT protocol cases"
case_ "mqtt: unacked QoS 1 flood, memory bounded" - mqtt qos1_flood
case_ "mqtt: unread twin GET flood, back-pressure and memory bounded" - mqtt twin_get_flood
honest "after the floods"

# --- HTTP -----------------------------------------------------------------------------
case_ "http: invalid JSON: 400 with the parser's message" BAD_JSON http invalid_json
case_ "http: invalid UTF-8 in a JSON string: 400" BAD_JSON http invalid_utf8
case_ "http: /devices/..%2F..%2Fetc%2Fpasswd: 400" BAD_PATH http traversal_encoded_slash
case_ "http: /certificates/..%2f..%2fetc: 400" BAD_PATH http traversal_certificates
# ".." is a legal IoT Hub device id (the id alphabet includes '.'): a lookup, no file.
case_ "http: /devices/%2e%2e: 404 (an id, not a path)" NOT_FOUND http traversal_dotdot
case_ "http: /devices/../../etc/passwd: 404" NO_ROUTE http traversal_dotdot_raw
case_ "http: DELETE /devices: 405 Azure JSON" BAD_METHOD http method_delete_collection
case_ "http: POST /devices/h1: 405 Azure JSON" BAD_METHOD http method_post_device
case_ "http: PUT /certificates: 405 Azure JSON" BAD_METHOD http method_put_certificates
# evhttp answers these itself (HTML); hubd logs them from the connection's
# output (src/http/deadline.c).
case_ "http: headers over max_header_bytes: 400 and closed" HTTP_MALFORMED http huge_headers
case_ "http: body over max_request_body_bytes: 413" BODY_TOO_LARGE http huge_body
case_ "http: Content-Length over the limit: 413 before the body" BODY_TOO_LARGE \
    http huge_body_declared
case_ "http: OPTIONS: 405 Azure JSON" BAD_METHOD http method_options
# A method libevent 2.1 cannot parse never reaches hubd's routers: evhttp
# answers 501 itself (HTML), and hubd logs it.
case_ "http: unknown method BREW: 501 from evhttp" METHOD_NOT_IMPLEMENTED http method_unknown
case_ "http: slow body cut at http_request_timeout_ms" REQUEST_TIMEOUT http slow_body
case_ "http: slow request head cut at http_request_timeout_ms" REQUEST_TIMEOUT http slow_headers
honest "after the HTTP cases"

# --- refusals counted in /metrics (when the hub has it) ------------------------------
out=$(timeout 30 python3 "$H/http.py" metrics 2>&1); rc=$?
if [ $rc -eq 3 ]; then
    echo "skip metrics: $out"
elif [ $rc -eq 0 ]; then
    pass "metrics: $(printf '%s' "$out" | head -1)"
else
    fail "metrics: refusals counted by reason" "$(printf '%s' "$out" | tr '\n' ' ')"
fi

# --- no leaked connection -------------------------------------------------------------
i=0
while [ "$(fd_count)" -gt "$FD0" ] && [ $i -lt 30 ]; do i=$((i + 1)); sleep 0.1; done
if [ "$(fd_count)" -eq "$FD0" ]; then
    pass "the hub holds as many sockets as before the cases ($FD0)"
else
    fail "the hub holds as many sockets as before the cases" "before: $FDS0; after: $(fd_list)"
fi
RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$HUB_PID/status")
[ "$RSS" -lt 131072 ] && pass "hub RSS at the end: $RSS KiB (< 128 MiB)" || fail "hub RSS at the end: $RSS KiB"
stop_hub
summary

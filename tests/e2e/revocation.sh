#!/bin/sh
# End-to-end: revocation and certificate lifecycle (issue 6, section 3).
# CRLs made with the openssl CLI (`openssl ca -revoke` / `-gencrl`, an
# implementation independent of hubd's) are uploaded with `hubctl ca crl`:
# a revoked device is refused at its next CONNECT with reason CHAIN_REVOKED,
# a connected one is closed within a second of the CRL that lists it, a
# revoked intermediate refuses its devices, other devices keep working. An
# expired CRL is still enforced, logged and shown by `hubctl ca show`.
# `hubctl ca list` shows days to expiry, and the device query finds
# devices by x509CertificateExpiry (MQTT and HTTPS record it).
# Usage: revocation.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
trap cleanup_hub EXIT INT TERM

start_hub
PKI=$HUB_DIR/pki
mkdir -p "$PKI"
cd "$PKI" || exit 1
q() { "$@" >/dev/null 2>&1; }

# --- PKI: a root (20 days, so `ca list` marks it), devices under it and under an intermediate
q "$HUBCTL" cert root --out root --subject "Revocation Root CA" --days 20
q "$HUBCTL" cert intermediate --out int --issuer-cert root.pem --issuer-key root.key --subject "Revocation Int CA"
for d in dev1 dev2 dev3; do
    q "$HUBCTL" cert device --out $d --device-id $d --issuer-cert root.pem --issuer-key root.key --days 10
done
q "$HUBCTL" cert device --out dev4 --device-id dev4 --issuer-cert int.pem --issuer-key int.key --issuer-chain root.pem
q "$HUBCTL" cert device --out dev5 --device-id dev5 --issuer-cert root.pem --issuer-key root.key --days 40
q "$HUBCTL" cert root --out root2 --subject "Second Root CA"
expect_ok "upload the CA" "$HUBCTL" ca upload devca root.pem
CODE=$("$HUBCTL" ca code devca)
q "$HUBCTL" cert verification --out pop --code "$CODE" --issuer-cert root.pem --issuer-key root.key
expect_ok "verify the CA" "$HUBCTL" ca verify devca pop.pem
for d in dev1 dev2 dev3 dev4 dev5; do q "$HUBCTL" device create $d --auth ca; done

MQTT="-h 127.0.0.1 -p $HUB_MQTT_PORT --cafile $HUB_CAFILE -V mqttv311"
telemetry() {
    # shellcheck disable=SC2086
    timeout 20 mosquitto_pub $MQTT --cert "$1-chain.pem" --key "$1.key" -i "$1" \
        -u "localhost/$1/?api-version=2021-04-12" -t "devices/$1/messages/events/" -q 1 -m hello
}
refused_log() { expect_log "$1: logged" "event=connect_refused.*device=$2.*reason=$3"; }

expect_ok "dev1 connects" telemetry dev1
expect_ok "dev2 connects before any CRL" telemetry dev2
expect_ok "dev4 (under the intermediate) connects" telemetry dev4

# --- days to expiry -------------------------------------------------------------------
# A 20-day CA: 19 or 20 whole days left, depending on the second it is asked.
expect_exit "ca list: days to expiry, marked under 30" 0 "DAYS.*devca +yes +(19|20) !" sh -c "'$HUBCTL' ca list | tr '\n' ' '"
expect_exit "GET /certificates: daysToExpiry" 0 '"daysToExpiry": ?(19|20)[,}]' "$HUBCTL" --json ca list
expect_exit "ca show: no CRL yet" 0 "crl: +none" "$HUBCTL" ca show devca

# --- the openssl CLI as the CA: a minimal `openssl ca` configuration ----------------------
mkdir -p ca1 ca2
: >ca1/index.txt; : >ca2/index.txt
echo 01 >ca1/crlnumber; echo 01 >ca2/crlnumber
ca_conf() { # DIR CERT KEY
    cat <<EOF
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = $1
database = \$dir/index.txt
crlnumber = \$dir/crlnumber
certificate = $PKI/$2
private_key = $PKI/$3
default_md = sha256
default_crl_days = 7
EOF
}
ca_conf "$PKI/ca1" root.pem root.key >ca1.cnf
ca_conf "$PKI/ca2" root2.pem root2.key >ca2.cnf
revoke() { openssl ca -config ca1.cnf -revoke "$1" -batch >/dev/null 2>&1; }
gencrl() { openssl ca -config ca1.cnf -gencrl -out "$1" -batch >/dev/null 2>&1; }

expect_ok "openssl ca: revoke dev2" revoke dev2.pem
expect_ok "openssl ca: CRL 1" gencrl crl1.pem
# the CRL is refused with a private key in the file, and for the wrong CA
cat crl1.pem root.key >crl-with-key.pem
expect_exit "a CRL file holding a private key is refused locally" 2 "private key" "$HUBCTL" ca crl devca crl-with-key.pem
expect_ok "a second CA" "$HUBCTL" ca upload devca2 root2.pem
expect_exit "another CA's CRL is refused by the hub" 1 "not by the CA|CHAIN_UNTRUSTED" "$HUBCTL" ca crl devca2 crl1.pem

expect_ok "upload CRL 1 (dev2 revoked)" "$HUBCTL" ca crl devca crl1.pem
expect_log "the upload is logged" "event=crl_uploaded.*ca=devca.*revoked=1"
expect_exit "dev2 refused at its next CONNECT (CONNACK 5)" 5 "not authori[sz]ed" telemetry dev2
refused_log "revoked leaf" dev2 CHAIN_REVOKED
expect_ok "dev1 still fine" telemetry dev1
expect_exit "ca show: the CRL" 0 "crl: +1 revoked, issued .*next update" "$HUBCTL" ca show devca

# --- a live connection closed within a second of the CRL that revokes it -----------------
# shellcheck disable=SC2086
timeout 30 mosquitto_sub $MQTT --cert dev3-chain.pem --key dev3.key -i dev3 \
    -u "localhost/dev3/?api-version=2021-04-12" -t "devices/dev3/messages/devicebound/#" -q 1 \
    -C 5 >sub.out 2>&1 &
SUB_PID=$!
i=0; while ! grep -q "event=connected.*device=dev3" "$HUB_DIR/hubd.log" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
expect_log "dev3 connected" "event=connected.*device=dev3"
revoke dev3.pem
gencrl crl2.pem
expect_ok "upload CRL 2 (dev3 revoked)" "$HUBCTL" ca crl devca crl2.pem
# Within a second, plus the subscriber's own exit: 1.5 s.
i=0; while kill -0 $SUB_PID 2>/dev/null && [ $i -lt 15 ]; do sleep 0.1; i=$((i + 1)); done
expect_exit "dev3's connection closed within a second" 1 "" kill -0 $SUB_PID
kill $SUB_PID 2>/dev/null; wait $SUB_PID 2>/dev/null
expect_log "the close is logged with its reason" "event=disconnected.*device=dev3.*reason=CHAIN_REVOKED"
expect_ok "dev1 still fine after CRL 2" telemetry dev1

# --- a revoked intermediate refuses the devices under it ---------------------------------
expect_ok "dev4 fine before its intermediate is revoked" telemetry dev4
revoke int.pem
gencrl crl3.pem
expect_ok "upload CRL 3 (intermediate revoked)" "$HUBCTL" ca crl devca crl3.pem
expect_exit "dev4 refused" 5 "not authori[sz]ed" telemetry dev4
refused_log "revoked intermediate" dev4 CHAIN_REVOKED
expect_exit "ca show: 3 revoked" 0 "crl: +3 revoked" "$HUBCTL" ca show devca
expect_exit "an older CRL is refused (no replay)" 1 "before the stored one" "$HUBCTL" ca crl devca crl1.pem

# --- an expired CRL: still enforced, reported --------------------------------------------
q "$HUBCTL" device create dev6 --auth ca
q "$HUBCTL" cert device --out dev6 --device-id dev6 --issuer-cert root2.pem --issuer-key root2.key
CODE=$("$HUBCTL" ca code devca2)
q "$HUBCTL" cert verification --out pop2 --code "$CODE" --issuer-cert root2.pem --issuer-key root2.key
q "$HUBCTL" ca verify devca2 pop2.pem
openssl ca -config ca2.cnf -revoke dev6.pem -batch >/dev/null 2>&1
NOW=$(date +%s)
LAST=$(date -u -d "@$((NOW - 10 * 86400))" +%Y%m%d%H%M%SZ)
NEXT=$(date -u -d "@$((NOW - 86400))" +%Y%m%d%H%M%SZ)
expect_ok "openssl ca: an expired CRL" openssl ca -config ca2.cnf -gencrl -out expired.pem -batch \
    -crl_lastupdate "$LAST" -crl_nextupdate "$NEXT"
expect_ok "the expired CRL is accepted" "$HUBCTL" ca crl devca2 expired.pem
expect_log "the expired CRL is logged" "event=crl_expired.*ca=devca2"
expect_exit "ca show: EXPIRED" 0 "crl: +1 revoked.*EXPIRED" "$HUBCTL" ca show devca2
expect_exit "GET /certificates/{name}: crlExpired" 0 '"crlExpired": ?true' "$HUBCTL" --json ca show devca2
expect_exit "an expired CRL is still enforced" 5 "not authori[sz]ed" telemetry dev6
refused_log "revoked by an expired CRL" dev6 CHAIN_REVOKED

# A CRL that expires while the hub runs is reported when it does, without
# waiting for a handshake or a CA change (the device endpoint's CRL timer).
devca_expired() { grep -cE "event=crl_expired ca=([^ ]*,)?devca[, ]" "$HUB_DIR/hubd.log"; }
BEFORE=$(devca_expired)
expect_ok "openssl ca: a CRL valid for 3 s" openssl ca -config ca1.cnf -gencrl -out short.pem -batch -crlsec 3
expect_ok "the short-lived CRL is accepted" "$HUBCTL" ca crl devca short.pem
expect_eq "not reported while still valid" "$BEFORE" "$(devca_expired)"
i=0; while [ "$(devca_expired)" -eq "$BEFORE" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_eq "reported once it expired, with no handshake" $((BEFORE + 1)) "$(devca_expired)"

# --- certificate expiry in the device record and the query --------------------------------
expect_exit "the device record has x509CertificateExpiry" 0 '"x509CertificateExpiry": ?"20' \
    "$HUBCTL" --json device show dev1
expect_exit "a device never accepted has none" 0 '"x509CertificateExpiry": ?null' "$HUBCTL" --json device show dev6
# dev5 over the HTTPS device transport (40-day certificate)
expect_eq "dev5 sends telemetry over HTTPS with its certificate" 204 \
    "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$HUB_CAFILE" --resolve "localhost:$HUB_HTTPS_PORT:127.0.0.1" \
        --cert dev5-chain.pem --key dev5.key -X POST -d hi \
        "https://localhost:$HUB_HTTPS_PORT/devices/dev5/messages/events?api-version=2020-03-13")"
expect_exit "HTTPS records it too" 0 '"x509CertificateExpiry": ?"20' "$HUBCTL" --json device show dev5
TOKEN=$(sas_token localhost iothubowner "$(policy_key iothubowner)" $(($(date +%s) + 3600)))
SOON=$(date -u -d "@$(($(date +%s) + 30 * 86400))" +%Y-%m-%dT%H:%M:%SZ)
query() {
    curl -sS --cacert "$HUB_CAFILE" --resolve "localhost:$HUB_PORT:127.0.0.1" -X POST \
        -H "Authorization: $TOKEN" -H "Content-Type: application/json" \
        -d "{\"query\":\"SELECT * FROM devices WHERE x509CertificateExpiry < '$1'\"}" \
        "https://localhost:$HUB_PORT/devices/query?api-version=2021-04-12"
}
OUT=$(query "$SOON")
expect_exit "query: dev1 (10-day certificate) expires within 30 days" 0 '"deviceId": ?"dev1"' printf '%s' "$OUT"
if printf '%s' "$OUT" | grep -qE '"deviceId": ?"dev5"'; then fail "query: dev5 (40 days) not listed" "$OUT"; else pass "query: dev5 (40 days) not listed"; fi
OUT=$(query "9999-12-31T00:00:00Z")
if printf '%s' "$OUT" | grep -qE '"deviceId": ?"dev6"'; then fail "query: never-accepted dev6 not listed" "$OUT"; else pass "query: never-accepted dev6 not listed"; fi
expect_exit "query: any bound lists the devices that connected" 0 '"deviceId": ?"dev5"' printf '%s' "$OUT"

# --- delete cascades ----------------------------------------------------------------------
expect_ok "delete devca2" "$HUBCTL" ca delete devca2
expect_ok "upload it again" "$HUBCTL" ca upload devca2 root2.pem
expect_exit "its CRL went with it" 0 "crl: +none" "$HUBCTL" ca show devca2

stop_hub
summary

#!/bin/sh
# End-to-end: the device HTTPS transport with curl (reference §3). Devices
# authenticate with their X.509 chain in TLS or a device SAS token; telemetry
# (single, chunked, batch) reaches `hubctl monitor` with its iothub-app-*
# properties; C2D is received with a quoted ETag and settled (complete,
# reject, abandon); every refusal has its status and logged reason.
# Usage: device_https.sh BUILD_DIR
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
NOW=$(date +%s)
q() { "$@" >/dev/null 2>&1; }

q "$HUBCTL" cert root --out root --subject "Device Root CA"
q "$HUBCTL" cert intermediate --out int --issuer-cert root.pem --issuer-key root.key --subject "Device Int CA"
for d in dev1 dev2 devoff devx; do
    q "$HUBCTL" cert device --out $d --device-id $d --issuer-cert int.pem --issuer-key int.key --issuer-chain root.pem
done
q "$HUBCTL" ca upload devca root.pem
CODE=$("$HUBCTL" ca code devca)
q "$HUBCTL" cert verification --out pop --code "$CODE" --issuer-cert root.pem --issuer-key root.key
expect_ok "CA verified" "$HUBCTL" ca verify devca pop.pem
for d in dev1 dev2 devoff; do q "$HUBCTL" device create $d --auth ca; done
q "$HUBCTL" device update devoff --status disabled
SAS_KEY=$("$HUBCTL" --json device create devsas --auth sas | sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' | head -1)
expect_ok "sas device created" test -n "$SAS_KEY"

BASE="https://localhost:$HUB_HTTPS_PORT"
API="api-version=2021-04-12"
# hc OUT CURL-ARGS...: runs curl, response headers in OUT.h, body in OUT.b;
# prints the status code.
hc() {
    out=$1; shift
    curl -sS --cacert "$HUB_CAFILE" --resolve "localhost:$HUB_HTTPS_PORT:127.0.0.1" \
        -D "$out.h" -o "$out.b" -w '%{http_code}' "$@" 2>"$out.err" || echo " curl failed: $(cat "$out.err")"
}
x509() { id=$1; shift; hc "$@" --cert "$id-chain.pem" --key "$id.key"; }
header() { # FILE NAME: a response header's value
    tr -d '\r' <"$1.h" | awk -v n="$(printf '%s' "$2" | tr 'A-Z' 'a-z')" \
        'BEGIN{FS=": "} { k=tolower($1); if (k == n) { sub(/^[^:]*: /, ""); print; exit } }'
}
SR="localhost%2Fdevices%2Fdevsas"
dev_token() { # KEY EXPIRY: a device SAS token for devsas, made with the openssl CLI
    hexkey=$(printf '%s' "$1" | base64 -d | od -An -tx1 | tr -d ' \n')
    sig=$(printf '%s\n%s' "$SR" "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64 | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
    printf 'SharedAccessSignature sr=%s&sig=%s&se=%s' "$SR" "$sig" "$2"
}
DEV_TOKEN=$(dev_token "$SAS_KEY" $((NOW + 3600)))
SVC_TOKEN=$(sas_token localhost iothubowner "$(policy_key iothubowner)" $((NOW + 3600)))
refused_log() { expect_log "$1: logged" "event=api_refused.*status=$2.*reason=$3"; }

# --- telemetry ----------------------------------------------------------------------
expect_eq "X.509 telemetry: 204" 204 "$(x509 dev1 t1 -X POST "$BASE/devices/dev1/messages/events?$API" \
    -H 'iothub-to: /devices/dev1/messages/events' -H 'iothub-app-color: blue' \
    -H 'iothub-app-k2: v 2' -H 'IoTHub-MessageId: h-1' -H 'IoTHub-CorrelationId: corr-1' \
    -H 'iothub-contenttype: application/json' -H 'iothub-contentencoding: utf-8' \
    --data-binary '{"temp":21}')"
head -c 70000 /dev/zero | tr '\0' 'c' >chunk.bin
expect_eq "chunked telemetry body: 204" 204 "$(x509 dev1 t2 -X POST "$BASE/devices/dev1/messages/events?$API" \
    -v -H 'Transfer-Encoding: chunked' -H 'iothub-app-kind: chunked' --data-binary @chunk.bin)"
expect_ok "curl sent it chunked, without Content-Length" \
    sh -c "grep -qi '^> transfer-encoding: chunked' t2.err && ! grep -qi '^> content-length' t2.err"
B1=$(printf 'first' | base64); B2=$(printf 'second' | base64)
expect_eq "batch telemetry: 204" 204 "$(x509 dev1 t3 -X POST "$BASE/devices/dev1/messages/events?$API" \
    -H 'Content-Type: application/vnd.microsoft.iothub.json' \
    --data-binary "[{\"body\":\"$B1\",\"properties\":{\"iothub-app-n\":\"1\"}},{\"body\":\"$B2\",\"properties\":{\"iothub-app-n\":\"2\",\"iothub-messageid\":\"b-2\"}}]")"
expect_eq "malformed batch: 400" 400 "$(x509 dev1 t4 -X POST "$BASE/devices/dev1/messages/events?$API" \
    -H 'Content-Type: application/vnd.microsoft.iothub.json' --data-binary '[{"body":"not base64!"}]')"
refused_log "malformed batch" 400 BAD_BATCH
expect_ok "hubctl monitor shows dev1's four messages" "$HUBCTL" --json monitor --device dev1 --count 4 --timeout 10
printf '%s\n' "$LAST_OUT" >dev1.jsonl
M1=$(grep '"h-1"' dev1.jsonl)
expect_exit "body" 0 '"body": ?"\{\\"temp\\":21\}"' printf '%s' "$M1"
expect_exit "iothub-app-* headers are application properties" 0 '"color": ?"blue".*"k2": ?"v 2"' printf '%s' "$M1"
expect_exit "system properties from the IoTHub-* headers" 0 '"correlationId": ?"corr-1"' printf '%s' "$M1"
expect_exit "content type" 0 '"contentType": ?"application/json"' printf '%s' "$M1"
expect_exit "connectionDeviceId added by the hub" 0 '"connectionDeviceId": ?"dev1"' printf '%s' "$M1"
expect_exit "connectionAuthMethod says x509Certificate" 0 'x509Certificate' printf '%s' "$M1"
expect_exit "the chunked body arrived whole" 0 "\"kind\": ?\"chunked\"" grep "$(head -c 100 chunk.bin)" dev1.jsonl
expect_exit "chunked body length" 0 "^70000$" sh -c "grep '\"chunked\"' dev1.jsonl | sed 's/.*\"body\": *\"\\(c*\\)\".*/\\1/' | tr -d '\n' | wc -c | tr -d ' '"
expect_exit "batch message 1" 0 '"body": ?"first".*"n": ?"1"' grep '"first"' dev1.jsonl
expect_exit "batch message 2 with its message id" 0 '"b-2"' grep '"second"' dev1.jsonl
expect_exit "registry shows lastActivityTime for an HTTPS device" 0 '"lastActivityTime": ?"2' "$HUBCTL" --json device show dev1

expect_eq "SAS telemetry: 204" 204 "$(hc t5 -X POST "$BASE/devices/devsas/messages/events?$API" \
    -H "Authorization: $DEV_TOKEN" -H 'iothub-app-via: sas' --data-binary 'from sas')"
expect_ok "monitor shows the SAS device's message" "$HUBCTL" --json monitor --device devsas --count 1 --timeout 10
expect_exit "with its property and auth method" 0 '"via": ?"sas".*sas' printf '%s' "$LAST_OUT"

# A client that resumes its TLS session (Node's https.Agent does) sends no
# certificates on resumption, and the session does not keep the chain: the
# hub must not offer resumption on HTTPS, or the second connection of a
# CA-signed device fails with CHAIN_UNTRUSTED.
tls_post() { # TLS-VERSION SESSION-FILE: telemetry over openssl s_client; prints the status line
    sess="-sess_out $2"
    [ -s "$2" ] && sess="-sess_in $2"
    # shellcheck disable=SC2086
    (printf 'POST /devices/dev1/messages/events?%s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi' "$API"; sleep 1) |
        timeout 10 openssl s_client "$1" -quiet -connect "127.0.0.1:$HUB_HTTPS_PORT" -CAfile "$HUB_CAFILE" \
            -cert dev1.pem -cert_chain dev1-chain.pem -key dev1.key $sess 2>/dev/null | head -1 | tr -d '\r'
}
for v in tls1_3 tls1_2; do
    rm -f "sess-$v"
    expect_eq "$v: first connection authenticates" "HTTP/1.1 204 No Content" "$(tls_post "-$v" "sess-$v")"
    expect_eq "$v: the next connection (offering its session) authenticates too" "HTTP/1.1 204 No Content" "$(tls_post "-$v" "sess-$v")"
done

head -c $((256 * 1024 + 1)) /dev/zero >big.bin
expect_eq "a body over 256 KiB: 413" 413 "$(x509 dev1 t6 -X POST "$BASE/devices/dev1/messages/events?$API" --data-binary @big.bin)"

# --- C2D ----------------------------------------------------------------------------
DB="$BASE/devices/dev1/messages/devicebound"
expect_eq "empty queue: 204" 204 "$(x509 dev1 c0 "$DB?$API")"
q "$HUBCTL" c2d send dev1 "hello over https" --prop color=red --message-id c2d-1 --correlation-id cc-1
expect_eq "GET with a message queued: 200" 200 "$(x509 dev1 c1 "$DB?$API")"
ETAG=$(header c1 ETag)
LOCK=$(printf '%s' "$ETAG" | tr -d '"')
expect_exit "ETag is quoted" 0 '^"[^"]+"$' printf '%s' "$ETAG"
expect_eq "body" "hello over https" "$(cat c1.b)"
expect_eq "iothub-messageid" c2d-1 "$(header c1 iothub-messageid)"
expect_eq "iothub-correlationid" cc-1 "$(header c1 iothub-correlationid)"
expect_eq "iothub-app-color" red "$(header c1 iothub-app-color)"
expect_eq "iothub-deliverycount" 1 "$(header c1 iothub-deliverycount)"
expect_exit "iothub-sequencenumber" 0 '^[0-9]+$' header c1 iothub-sequencenumber
expect_exit "iothub-enqueuedtime" 0 '^20[0-9-]+T[0-9:.]+Z$' header c1 iothub-enqueuedtime
expect_exit "iothub-expiry" 0 '^20[0-9-]+T[0-9:.]+Z$' header c1 iothub-expiry
expect_exit "iothub-to" 0 '^/devices/dev1/messages/deviceBound$' header c1 iothub-to
expect_eq "locked: the next GET finds nothing" 204 "$(x509 dev1 c2 "$DB?$API")"
expect_eq "complete (DELETE with If-Match): 204" 204 "$(x509 dev1 c3 -X DELETE -H "If-Match: $LOCK" "$DB/$LOCK?$API")"
expect_eq "completing again: 412" 412 "$(x509 dev1 c4 -X DELETE "$DB/$LOCK?$API")"
expect_eq "  with DeviceMessageLockLost" DeviceMessageLockLost "$(header c4 iothub-errorcode)"
refused_log "lock lost" 412 LOCK_LOST
expect_eq "unknown lock token: 412" 412 "$(x509 dev1 c5 -X DELETE "$DB/0123456789abcdef?$API")"
expect_eq "  with DeviceMessageLockLost" DeviceMessageLockLost "$(header c5 iothub-errorcode)"
expect_exit "queue empty after complete" 0 '"cloudToDeviceMessageCount": ?0' "$HUBCTL" --json device show dev1

q "$HUBCTL" c2d send dev1 "reject me" --ack full --message-id c2d-rej
expect_eq "GET the message to reject" 200 "$(x509 dev1 r1 "$DB?$API")"
LOCK=$(header r1 ETag | tr -d '"')
expect_eq "reject (DELETE ?reject): 204" 204 "$(x509 dev1 r2 -X DELETE "$DB/$LOCK?$API&reject")"
expect_eq "rejected: gone" 204 "$(x509 dev1 r3 "$DB?$API")"
expect_exit "feedback says Rejected" 0 "c2d-rej.*Rejected|Rejected.*c2d-rej" sh -c "'$HUBCTL' --json c2d feedback | tr -d '\n '"

q "$HUBCTL" c2d send dev1 "abandon me" --message-id c2d-ab
expect_eq "GET the message to abandon" 200 "$(x509 dev1 a1 "$DB?$API")"
LOCK=$(header a1 ETag | tr -d '"')
expect_eq "abandon (POST .../abandon): 204" 204 "$(x509 dev1 a2 -X POST -H 'Content-Length: 0' "$DB/$LOCK/abandon?$API")"
expect_eq "abandoned: delivered again" 200 "$(x509 dev1 a3 "$DB?$API")"
expect_eq "  the same message" c2d-ab "$(header a3 iothub-messageid)"
expect_eq "  delivery count 2" 2 "$(header a3 iothub-deliverycount)"
expect_eq "  with a new lock" 1 "$(test "$(header a3 ETag)" != "$(header a1 ETag)" && echo 1)"
expect_eq "abandoning with the old lock: 412" 412 "$(x509 dev1 a4 -X POST "$DB/$LOCK/abandon?$API")"
LOCK=$(header a3 ETag | tr -d '"')
expect_eq "complete it" 204 "$(x509 dev1 a5 -X DELETE "$DB/$LOCK?$API")"

q "$HUBCTL" c2d send devsas "to sas" --message-id c2d-sas
expect_eq "SAS device receives C2D" 200 "$(hc s1 -H "Authorization: $DEV_TOKEN" "$BASE/devices/devsas/messages/deviceBound?$API")"
LOCK=$(header s1 ETag | tr -d '"')
expect_eq "SAS device completes it" 204 "$(hc s2 -X DELETE -H "Authorization: $DEV_TOKEN" "$BASE/devices/devsas/messages/deviceBound/$LOCK?$API")"

# --- refusals -----------------------------------------------------------------------
EV="messages/events?$API"
expect_eq "service token on a device path: 401" 401 "$(hc f1 -X POST -H "Authorization: $SVC_TOKEN" "$BASE/devices/dev1/$EV" -d x)"
refused_log "service token" 401 SERVICE_CREDENTIAL
expect_exit "  the client is told why" 0 "service credentials cannot be used on the device API" cat f1.b
expect_eq "device token on the service API: 401" 401 "$(hc f2 -H "Authorization: $DEV_TOKEN" "$BASE/devices/devsas?$API")"
expect_eq "device cert on the service's C2D send: 401" 401 "$(x509 dev1 f3 -X POST "$BASE/devices/dev1/messages/deviceBound?$API" -d x)"
expect_eq "dev1's certificate on dev2's path: 401" 401 "$(x509 dev1 f4 -X POST "$BASE/devices/dev2/$EV" -d x)"
refused_log "CN mismatch" 401 CN_MISMATCH
expect_eq "  and on dev2's C2D queue" 401 "$(x509 dev1 f5 "$BASE/devices/dev2/messages/devicebound?$API")"
expect_eq "no credential: 401" 401 "$(hc f6 -X POST "$BASE/devices/dev1/$EV" -d x)"
refused_log "no credential" 401 NO_CREDENTIAL
expect_eq "  with IotHubUnauthorizedAccess" IotHubUnauthorizedAccess "$(header f6 iothub-errorcode)"
expect_eq "unregistered device: 401" 401 "$(x509 devx f7 -X POST "$BASE/devices/devx/$EV" -d x)"
refused_log "unregistered device" 401 DEVICE_UNKNOWN
expect_eq "disabled device: 401" 401 "$(x509 devoff f8 -X POST "$BASE/devices/devoff/$EV" -d x)"
refused_log "disabled device" 401 DEVICE_DISABLED
expect_eq "leaf without its intermediate: 401" 401 "$(hc f9 --cert dev1.pem --key dev1.key -X POST "$BASE/devices/dev1/$EV" -d x)"
refused_log "missing intermediate" 401 CHAIN_UNTRUSTED
expect_eq "devsas's token on dev1's path: 401" 401 "$(hc f10 -H "Authorization: $DEV_TOKEN" -X POST "$BASE/devices/dev1/$EV" -d x)"
expect_eq "SAS token with a bad signature: 401" 401 "$(hc f11 -H "Authorization: $(dev_token "$(printf 'wrongwrongwrongwrongwrongwrongwr' | base64)" $((NOW + 3600)))" -X POST "$BASE/devices/devsas/$EV" -d x)"
refused_log "bad signature" 401 SAS_BAD_SIGNATURE
expect_eq "expired SAS token: 401" 401 "$(hc f12 -H "Authorization: $(dev_token "$SAS_KEY" $((NOW - 60)))" -X POST "$BASE/devices/devsas/$EV" -d x)"
refused_log "expired token" 401 SAS_EXPIRED
expect_eq "SAS device presenting only a certificate: 401" 401 "$(x509 dev1 f13 -X POST "$BASE/devices/devsas/$EV" -d x)"
expect_eq "invalid device id in the path: 400" 400 "$(x509 dev1 f14 -X POST "$BASE/devices/a+b/$EV" -d x)"
expect_exit "no refused message reached the log" 1 "" "$HUBCTL" --json monitor --device dev2 --count 1 --timeout 2

stop_hub
summary

#!/bin/sh
# End-to-end under valgrind (issue 6 §4): hubd runs in memcheck through a
# representative slice of the other e2e flows (service API CRUD and proof of
# possession, a device connecting over MQTT and HTTPS, telemetry, C2D, twin
# reads and patches from both sides, a direct method that times out, the
# refusal paths) and SIGTERM; valgrind must exit 0: no invalid access, no
# use of uninitialised memory, no definitely lost block.
# tests/e2e/valgrind.supp holds suppressions for known third-party noise only.
# Usage: valgrind.sh BUILD_DIR   (needs a build without -DHUB_SANITIZE=ON)
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
NAME=$(basename "$0" .sh)
SUPP=$(cd "$(dirname "$0")" && pwd)/valgrind.supp

if ! command -v valgrind >/dev/null 2>&1; then
    echo "$NAME: FAIL: valgrind is not installed (scripts/install-deps installs it)"
    exit 1
fi
if { nm "$HUBD"; nm -D "$HUBD"; } 2>/dev/null | grep -q __asan_init; then
    echo "$NAME: FAIL: $HUBD is built with AddressSanitizer; valgrind needs a plain build"
    exit 1
fi
HUB_E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hubd-e2e.XXXXXX")
VGLOG=$HUB_E2E_DIR/valgrind.log
HUBD_WRAPPER="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
  --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=40
  --suppressions=$SUPP --log-file=$VGLOG"
HUB_READY_TIMEOUT_S=120
DONE=""
# A hub that died under valgrind (or never started) left its reason in the
# valgrind log, which lib.sh does not know about.
on_exit() {
    if [ -z "$DONE" ] && [ -s "$VGLOG" ]; then
        echo "--- $VGLOG"
        tail -40 "$VGLOG"
        grep -q "unhandled dwarf2" "$VGLOG" &&
            echo "hint: this valgrind cannot read the binary's DWARF 5; build with gcc or -gdwarf-4"
    fi
    cleanup_hub
}
trap on_exit EXIT INT TERM

start_hub
PKI=$HUB_DIR/pki
mkdir -p "$PKI"
cd "$PKI" || exit 1
q() { "$@" >/dev/null 2>&1; }
NOW=$(date +%s)

# --- service API: CA lifecycle with proof of possession, device CRUD -----------------
q "$HUBCTL" cert root --out root --subject "VG Root CA"
q "$HUBCTL" cert intermediate --out int --issuer-cert root.pem --issuer-key root.key --subject "VG Int CA"
q "$HUBCTL" cert device --out dev1 --device-id dev1 --issuer-cert int.pem --issuer-key int.key --issuer-chain root.pem
q "$HUBCTL" cert root --out stranger --subject "VG Stranger"
q "$HUBCTL" cert device --out strange --device-id dev1 --issuer-cert stranger.pem --issuer-key stranger.key
expect_ok "upload a CA" "$HUBCTL" ca upload vgca root.pem
expect_exit "a leaf is refused as a CA" 1 "CA" "$HUBCTL" ca upload leafca dev1.pem
CODE=$("$HUBCTL" ca code vgca)
q "$HUBCTL" cert verification --out wrong --code 0123456789ABCDEF --issuer-cert root.pem --issuer-key root.key
expect_exit "a verification cert with the wrong CN is refused" 1 "CN" "$HUBCTL" ca verify vgca wrong.pem
q "$HUBCTL" cert verification --out pop --code "$CODE" --issuer-cert root.pem --issuer-key root.key
expect_ok "proof of possession" "$HUBCTL" ca verify vgca pop.pem
expect_exit "CA list" 0 "vgca" "$HUBCTL" ca list
expect_ok "create dev1" "$HUBCTL" device create dev1 --auth ca
expect_ok "create dev2" "$HUBCTL" device create dev2 --auth ca
SAS_KEY=$("$HUBCTL" --json device create devsas --auth sas | sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' | head -1)
expect_ok "create a SAS device" test -n "$SAS_KEY"
expect_exit "a duplicate create is refused" 1 "exists" "$HUBCTL" device create dev2 --auth ca
expect_ok "update dev2" "$HUBCTL" device update dev2 --status disabled
expect_exit "list" 0 "dev2 +disabled" "$HUBCTL" device list
expect_ok "delete dev2" "$HUBCTL" device delete dev2
expect_exit "show a deleted device: not found" 1 "not found|NotFound" "$HUBCTL" device show dev2
BASE="https://localhost:$HUB_PORT"
API="api-version=2021-04-12"
TOKEN=$(sas_token localhost iothubowner "$(policy_key iothubowner)" $((NOW + 3600)))
api() { # METHOD PATH [curl args...]: prints the status
    m=$1 p=$2
    shift 2
    curl -sS --cacert "$HUB_CAFILE" --resolve "localhost:$HUB_PORT:127.0.0.1" -o /dev/null \
        -w '%{http_code}' -X "$m" "$@" "$BASE$p?$API"
}
expect_eq "query" 200 "$(api POST /devices/query -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/json' -d '{"query":"SELECT * FROM devices WHERE status = '"'"'enabled'"'"'"}')"
expect_eq "invalid JSON: 400" 400 "$(api PUT /devices/bad -H "Authorization: $TOKEN" -d '{"deviceId":')"
expect_eq "no token: 401" 401 "$(api GET /devices/dev1)"

# --- twin from the service -------------------------------------------------------------
expect_ok "twin tags and desired patch" "$HUBCTL" twin update dev1 --tags '{"site":"vg"}' --desired '{"rate":5}'
expect_exit "twin show" 0 '"rate": ?5' "$HUBCTL" --json twin show dev1

# --- a device over MQTT: telemetry, reported properties, refusals ---------------------------
MQTT="-h 127.0.0.1 -p $HUB_MQTT_PORT --cafile $HUB_CAFILE -V mqttv311"
dev() { # mosquitto tool, then its arguments: as dev1 with its chain
    tool=$1
    shift
    # shellcheck disable=SC2086
    timeout 60 "$tool" $MQTT --cert dev1-chain.pem --key dev1.key -i dev1 \
        -u "localhost/dev1/?api-version=2021-04-12" "$@"
}
expect_ok "QoS 1 telemetry with properties" \
    dev mosquitto_pub -t 'devices/dev1/messages/events/%24.ct=application%2Fjson&k=v' -q 1 -m '{"t":1}'
expect_ok "QoS 0 telemetry" dev mosquitto_pub -t devices/dev1/messages/events/ -q 0 -m q0
expect_ok "reported properties patch" \
    dev mosquitto_pub -t '$iothub/twin/PATCH/properties/reported/?$rid=1' -q 1 -m '{"fw":"1.0"}'
expect_ok "monitor reads the telemetry" "$HUBCTL" --json monitor --device dev1 --count 2 --timeout 30
expect_exit "a chain from an unknown CA: refused" 5 "not authori[sz]ed" \
    timeout 60 mosquitto_pub $MQTT --cert strange.pem --key strange.key -i dev1 \
    -u "localhost/dev1/?api-version=2021-04-12" -t devices/dev1/messages/events/ -q 1 -m x
expect_exit "another device's topic closes the connection" 7 "connection was lost" \
    dev mosquitto_pub -t devices/devsas/messages/events/ -q 1 -m x

# --- C2D, a desired-property notification and a method request to a subscriber -------------
# It takes four messages: C2D, the desired patch, the method request (left
# unanswered: mosquitto_sub cannot answer on its own connection) and C2D.
connected() { grep -c "event=connected.*device=dev1" "$HUB_DIR/hubd.log"; }
BEFORE=$(connected)
dev mosquitto_sub -t 'devices/dev1/messages/devicebound/#' -t '$iothub/twin/PATCH/properties/desired/#' \
    -t '$iothub/methods/POST/#' -q 1 -v -C 4 >sub.out 2>&1 &
SUB=$!
i=0
while [ "$(connected)" -le "$BEFORE" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 2 # its SUBSCRIBE follows the CONNECT; the hub logs no line for it
expect_ok "send a C2D message" "$HUBCTL" c2d send dev1 "hello device" --prop color=blue --ack full
expect_ok "patch desired while dev1 listens" "$HUBCTL" twin update dev1 --desired '{"rate":7}'
expect_exit "a method nobody answers times out (504)" 1 "504|timed? ?out|Timeout" \
    "$HUBCTL" method invoke dev1 reboot '{"delay":1}' --timeout 5
expect_ok "a second C2D message (the subscriber's last)" "$HUBCTL" c2d send dev1 "bye"
wait $SUB
expect_exit "the subscriber got the C2D message" 0 "devicebound/.*color=blue.* hello device" cat sub.out
expect_exit "the subscriber got the desired patch" 0 'desired/\?\$version=[0-9]+ .*"rate":7' cat sub.out
expect_exit "the subscriber got the method request" 0 'methods/POST/reboot/\?\$rid=' cat sub.out
expect_exit "a method on an offline device: 404" 1 "404|offline|not connected|NotFound" \
    "$HUBCTL" method invoke dev1 reboot --timeout 5 --connect-timeout 0
expect_exit "feedback for the delivered message" 0 "Success" "$HUBCTL" c2d feedback

# --- the device over HTTPS ----------------------------------------------------------------------
SR="localhost%2Fdevices%2Fdevsas"
hexkey=$(printf '%s' "$SAS_KEY" | base64 -d | od -An -tx1 | tr -d ' \n')
sig=$(printf '%s\n%s' "$SR" $((NOW + 3600)) | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary |
    base64 | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
DEV_TOKEN="SharedAccessSignature sr=$SR&sig=$sig&se=$((NOW + 3600))"
expect_eq "HTTPS telemetry: 204" 204 "$(api POST /devices/devsas/messages/events \
    -H "Authorization: $DEV_TOKEN" -H 'iothub-app-color: red' -d '{"t":2}')"
expect_eq "HTTPS batch telemetry: 204" 204 "$(api POST /devices/devsas/messages/events \
    -H "Authorization: $DEV_TOKEN" -H 'Content-Type: application/vnd.microsoft.iothub.json' \
    -d '[{"body":"YQ==","properties":{"k":"v"}},{"body":"Yg=="}]')"
q "$HUBCTL" c2d send devsas "over https"
expect_eq "HTTPS C2D receive: 200" 200 "$(api GET /devices/devsas/messages/deviceBound -H "Authorization: $DEV_TOKEN")"
expect_eq "a bad device token: 401" 401 "$(api POST /devices/devsas/messages/events \
    -H "Authorization: SharedAccessSignature sr=$SR&sig=AAAA&se=$((NOW + 3600))" -d x)"

# --- the provisioning service: enrollments, registrations over HTTPS, refusals ------------------
q "$HUBCTL" cert device --out dev3 --device-id dev3 --issuer-cert int.pem --issuer-key int.key --issuer-chain root.pem
expect_ok "an X.509 enrollment group on the verified CA" \
    "$HUBCTL" dps group create vg --ca vgca --tags '{"line":"vg"}'
expect_ok "a symmetric-key group" "$HUBCTL" dps group create vgsym --symmetric-key
expect_exit "dev3 registers with its chain" 0 "assignedHub=" \
    "$HUBCTL" dps register dev3 --cert dev3-chain.pem --key dev3.key --timeout 60
expect_exit "a chain from an unknown CA cannot register" 1 "401|refused" \
    "$HUBCTL" dps register dev1 --cert strange.pem --key strange.key --timeout 60
GROUP_KEY=$("$HUBCTL" --json dps group show vgsym | sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' | head -1)
DEV_KEY=$("$HUBCTL" dps key derive --group-key "$GROUP_KEY" dev4)
expect_exit "dev4 registers with its derived key" 0 "deviceId=dev4" \
    "$HUBCTL" dps register dev4 --key-sas "$DEV_KEY" --timeout 60
expect_exit "a wrong key cannot register" 1 "401|refused" \
    "$HUBCTL" dps register dev5 --key-sas "$DEV_KEY" --timeout 60
expect_exit "the registration record" 0 "assigned" "$HUBCTL" dps registration show dev3
expect_ok "delete a registration record" "$HUBCTL" dps registration delete dev4
expect_ok "delete a group" "$HUBCTL" dps group delete vgsym

# --- shutdown: valgrind's verdict is hubd's exit status -----------------------------------------
expect_ok "purge a queue" "$HUBCTL" c2d purge devsas
stop_hub
if grep -q "ERROR SUMMARY: 0 errors" "$VGLOG"; then
    pass "valgrind: no errors"
else
    fail "valgrind: no errors" "see below"
    cat "$VGLOG"
fi
if grep -qE "definitely lost: 0 bytes|no leaks are possible" "$VGLOG"; then
    pass "valgrind: no definitely lost block"
else
    fail "valgrind: no definitely lost block" "$(grep 'definitely lost:' "$VGLOG")"
fi
DONE=1
summary

#!/bin/sh
# End-to-end: devices connect over MQTT/TLS with mosquitto_pub/sub. The seed
# walkthrough to its last step (a device signed through an intermediate CA
# connects and its message reaches `hubd monitor`), C2D, every refusal with its
# CONNACK and logged reason, live disconnects, and durability across kill -9.
# Usage: device_mqtt.sh BUILD_DIR
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

# --- the seed walkthrough: CA, proof of possession, devices --------------------
q "$HUBCTL" cert root --out root --subject "Device Root CA"
q "$HUBCTL" cert intermediate --out int --issuer-cert root.pem --issuer-key root.key --subject "Device Int CA"
for d in dev1 dev2 devx devoff devdel; do
    q "$HUBCTL" cert device --out $d --device-id $d --issuer-cert int.pem --issuer-key int.key --issuer-chain root.pem
done
q "$HUBCTL" cert device --out expired --device-id devold --issuer-cert int.pem --issuer-key int.key \
    --not-before $((NOW - 864000)) --days 1
q "$HUBCTL" cert device --out future --device-id devnew --issuer-cert int.pem --issuer-key int.key \
    --not-before $((NOW + 86400)) --days 30
cat expired.pem int.pem >expired-chain.pem
cat future.pem int.pem >future-chain.pem
q "$HUBCTL" cert root --out stranger --subject "Stranger Root CA"
q "$HUBCTL" cert device --out strange --device-id dev1 --issuer-cert stranger.pem --issuer-key stranger.key
q "$HUBCTL" cert root --out self --subject devself   # any cert works for selfSigned: the thumbprint binds
q "$HUBCTL" cert root --out self2 --subject devself
expect_ok "upload the CA" "$HUBCTL" ca upload devca root.pem
for d in dev1 dev2 devoff devdel devold devnew; do q "$HUBCTL" device create $d --auth ca; done
q "$HUBCTL" device create devself --auth selfsigned --thumbprint "$("$HUBCTL" cert thumbprint --sha256 self.pem)"
SAS_KEY=$("$HUBCTL" --json device create devsas --auth sas | sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' | head -1)

# mosquitto_pub's exit status is the CONNACK code when the hub refuses (5 not
# authorised, 3 unavailable) and 7 when the hub closes the connection.
MQTT="-h 127.0.0.1 -p $HUB_MQTT_PORT --cafile $HUB_CAFILE -V mqttv311"
# x509_pub ID CHAIN KEY [mosquitto_pub args...]
x509_pub() {
    id=$1; chain=$2; key=$3; shift 3
    # shellcheck disable=SC2086
    timeout 20 mosquitto_pub $MQTT --cert "$chain" --key "$key" -i "$id" \
        -u "localhost/$id/?api-version=2021-04-12" "$@"
}
telemetry() { x509_pub "$1" "$1-chain.pem" "$1.key" -t "devices/$1/messages/events/" -q 1 -m "${2:-hello}"; }
refused_log() { expect_log "$1: logged" "event=connect_refused.*device=$2.*reason=$3"; }

expect_exit "CA uploaded but not verified: refused (CONNACK 5)" 5 "not authori[sz]ed" telemetry dev1
refused_log "unverified CA" dev1 CHAIN_UNTRUSTED
CODE=$("$HUBCTL" ca code devca)
q "$HUBCTL" cert verification --out pop --code "$CODE" --issuer-cert root.pem --issuer-key root.key
expect_ok "proof of possession" "$HUBCTL" ca verify devca pop.pem

# --- step 5: dev1 connects with leaf + intermediate; the message reaches monitor -
BAG='%24.ct=application%2Fjson&%24.ce=utf-8&%24.mid=m-1&alert=yes%26no&k%202=v%2F2'
expect_ok "dev1 publishes QoS 1 telemetry with properties" \
    x509_pub dev1 dev1-chain.pem dev1.key -t "devices/dev1/messages/events/$BAG" -q 1 -m '{"temp":21}'
expect_log "dev1 connected with its X.509 chain" "event=connected.*device=dev1"
expect_ok "hubctl monitor shows it" "$HUBCTL" --json monitor --device dev1 --count 1 --timeout 10
MSG=$LAST_OUT
expect_exit "body" 0 '"body": ?"\{\\"temp\\":21\}"' printf '%s' "$MSG"
expect_exit "application properties decoded" 0 '"alert": ?"yes&no".*"k 2": ?"v/2"' printf '%s' "$MSG"
expect_exit "system properties" 0 '"contentType": ?"application/json"' printf '%s' "$MSG"
expect_exit "connection device id added by the hub" 0 '"connectionDeviceId": ?"dev1"' printf '%s' "$MSG"
expect_exit "message id kept" 0 '"messageId": ?"m-1"' printf '%s' "$MSG"
expect_exit "registry shows lastActivityTime" 0 '"lastActivityTime": ?"2' "$HUBCTL" --json device show dev1
expect_ok "QoS 0 telemetry" x509_pub dev1 dev1-chain.pem dev1.key -t devices/dev1/messages/events/ -q 0 -m q0

# --- refusals -------------------------------------------------------------------
expect_exit "unregistered device: CONNACK 5" 5 "not authori[sz]ed" telemetry devx
refused_log "unregistered device" devx DEVICE_UNKNOWN
expect_exit "CN differs from the client id: refused" 5 "not authori[sz]ed" \
    x509_pub dev2 dev1-chain.pem dev1.key -t devices/dev2/messages/events/ -q 1 -m x
refused_log "CN mismatch" dev2 CN_MISMATCH
expect_exit "expired leaf: refused" 5 "not authori[sz]ed" \
    x509_pub devold expired-chain.pem expired.key -t devices/devold/messages/events/ -q 1 -m x
refused_log "expired leaf" devold CERT_EXPIRED
expect_exit "not-yet-valid leaf: refused" 5 "not authori[sz]ed" \
    x509_pub devnew future-chain.pem future.key -t devices/devnew/messages/events/ -q 1 -m x
refused_log "not-yet-valid leaf" devnew CERT_NOT_YET_VALID
expect_exit "missing intermediate: refused" 5 "not authori[sz]ed" \
    x509_pub dev1 dev1.pem dev1.key -t devices/dev1/messages/events/ -q 1 -m x
refused_log "missing intermediate" dev1 CHAIN_UNTRUSTED
expect_exit "chain from an unknown CA: refused" 5 "not authori[sz]ed" \
    x509_pub dev1 strange.pem strange.key -t devices/dev1/messages/events/ -q 1 -m x
expect_exit "another device's key with dev1's certificate: no connection" 1 "." \
    x509_pub dev1 dev1-chain.pem dev2.key -t devices/dev1/messages/events/ -q 1 -m x
expect_ok "disable devoff" "$HUBCTL" device update devoff --status disabled
expect_exit "disabled device: CONNACK 3" 3 "unavailable" telemetry devoff
refused_log "disabled device" devoff DEVICE_DISABLED
expect_ok "selfSigned device with its registered thumbprint connects" \
    x509_pub devself self.pem self.key -t devices/devself/messages/events/ -q 1 -m s
expect_exit "selfSigned thumbprint mismatch: refused" 5 "not authori[sz]ed" \
    x509_pub devself self2.pem self2.key -t devices/devself/messages/events/ -q 1 -m s
refused_log "thumbprint mismatch" devself THUMBPRINT_MISMATCH

SR="localhost%2Fdevices%2Fdevsas"
dev_token() { # KEY EXPIRY: a device SAS token made with the openssl CLI
    hexkey=$(printf '%s' "$1" | base64 -d | od -An -tx1 | tr -d ' \n')
    sig=$(printf '%s\n%s' "$SR" "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64 | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
    printf 'SharedAccessSignature sr=%s&sig=%s&se=%s' "$SR" "$sig" "$2"
}
sas_pub() {
    # shellcheck disable=SC2086
    timeout 20 mosquitto_pub $MQTT -i devsas -u "localhost/devsas/?api-version=2021-04-12" -P "$1" \
        -t devices/devsas/messages/events/ -q 1 -m sas
}
expect_ok "sas device with a valid token connects" sas_pub "$(dev_token "$SAS_KEY" $((NOW + 3600)))"
expect_exit "sas token with a bad signature: refused" 5 "not authori[sz]ed" \
    sas_pub "$(dev_token "$(printf 'wrongwrongwrongwrongwrongwrongwr' | base64)" $((NOW + 3600)))"
refused_log "bad signature" devsas SAS_BAD_SIGNATURE
expect_exit "expired sas token: refused" 5 "not authori[sz]ed" sas_pub "$(dev_token "$SAS_KEY" $((NOW - 60)))"
refused_log "expired token" devsas SAS_EXPIRED
expect_exit "publishing to another device's topic closes the connection" 7 "connection was lost" \
    x509_pub dev1 dev1-chain.pem dev1.key -t devices/dev2/messages/events/ -q 1 -m x
expect_log "the forbidden topic is logged" "event=disconnected.*device=dev1.*reason=TOPIC_FORBIDDEN"

# --- C2D --------------------------------------------------------------------------
sub_c2d() { # ID OUTFILE [count]: a subscriber for the device's C2D messages, in the background
    # shellcheck disable=SC2086
    timeout 30 mosquitto_sub $MQTT --cert "$1-chain.pem" --key "$1.key" -i "$1" \
        -u "localhost/$1/?api-version=2021-04-12" -t "devices/$1/messages/devicebound/#" -q 1 \
        -v -C "${3:-1}" >"$2" 2>&1 &
    SUB_PID=$!
}
sub_c2d dev1 c2d.out
sleep 1
expect_ok "send a C2D message" "$HUBCTL" c2d send dev1 "hello device" --prop color=blue --message-id c2d-1
wait $SUB_PID
expect_exit "dev1 received it with its properties" 0 "devices/dev1/messages/devicebound/.*color=blue.* hello device" cat c2d.out
expect_exit "the queue is empty after the PUBACK" 0 '"cloudToDeviceMessageCount": ?0' "$HUBCTL" --json device show dev1
expect_ok "queue a C2D message while dev1 is offline" "$HUBCTL" c2d send dev1 "while you were away" --ack full --message-id c2d-fb
sub_c2d dev1 c2d2.out
wait $SUB_PID
expect_exit "delivered on the next connection" 0 "while you were away" cat c2d2.out
expect_exit "delivery feedback says Success for the acknowledged message" 0 "c2d-fb.*Success|Success.*c2d-fb" \
    sh -c "'$HUBCTL' --json c2d feedback | tr -d '\n '"
expect_exit "the feedback batch was completed" 0 "^$|no feedback|0 record" "$HUBCTL" c2d feedback

# --- live disconnects ---------------------------------------------------------------
sub_c2d devdel live.out 5
sleep 1
expect_ok "disable devdel while connected" "$HUBCTL" device update devdel --status disabled
# Within a second, plus the subscriber's own exit: 1.5 s.
i=0; while kill -0 $SUB_PID 2>/dev/null && [ $i -lt 15 ]; do sleep 0.1; i=$((i + 1)); done
expect_exit "devdel's connection closed within a second of disabling" 1 "" kill -0 $SUB_PID
kill $SUB_PID 2>/dev/null; wait $SUB_PID 2>/dev/null
expect_log "the disable is logged" "event=disconnected.*device=devdel.*reason=DEVICE_DISABLED"
q "$HUBCTL" device update devdel --status enabled
sub_c2d devdel live2.out 5
sleep 1
# A certificate that expires while its connection is up: the hub ends the
# connection at notAfter (+1 s: notAfter is inclusive), as at a SAS token's se.
T=$(date +%s)
q "$HUBCTL" cert device --out devshort --device-id devshort --issuer-cert int.pem --issuer-key int.key \
    --issuer-chain root.pem --not-before $((T - 86400 + 4)) --days 1
q "$HUBCTL" device create devshort --auth ca
sub_c2d devshort short.out 5
i=0; while kill -0 $SUB_PID 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_exit "devshort's connection closed when its certificate expired" 1 "" kill -0 $SUB_PID
kill $SUB_PID 2>/dev/null; wait $SUB_PID 2>/dev/null
expect_log "devshort connected before its expiry" "event=connected.*device=devshort"
expect_log "the expiry closes the connection" "event=disconnected.*device=devshort.*reason=CERT_EXPIRED"
expect_ok "delete the CA devdel's chain anchors on" "$HUBCTL" ca delete devca
i=0; while kill -0 $SUB_PID 2>/dev/null && [ $i -lt 15 ]; do sleep 0.1; i=$((i + 1)); done
expect_exit "devdel's connection closed within a second of its CA being deleted" 1 "" kill -0 $SUB_PID
kill $SUB_PID 2>/dev/null; wait $SUB_PID 2>/dev/null
expect_log "the CA removal is logged" "event=disconnected.*device=devdel.*reason=CA_REVOKED"
expect_exit "CA deleted: devices refused" 5 "not authori[sz]ed" telemetry dev1
refused_log "deleted CA" dev1 CHAIN_UNTRUSTED

# --- durability: kill -9 while devices publish QoS 1 -------------------------------------
q "$HUBCTL" ca upload devca2 root.pem
CODE=$("$HUBCTL" ca code devca2)
q "$HUBCTL" cert verification --out pop2 --code "$CODE" --issuer-cert root.pem --issuer-key root.key --force
q "$HUBCTL" ca verify devca2 pop2.pem
for i in 1 2 3; do q "$HUBCTL" c2d send dev2 "queued $i"; done
: >acked
( i=0; while [ $i -lt 400 ]; do
      i=$((i + 1))
      if x509_pub dev1 dev1-chain.pem dev1.key -t devices/dev1/messages/events/ -q 1 -m "durable-$i" >/dev/null 2>&1; then
          echo "durable-$i" >>acked
      fi
  done ) &
LOAD=$!
sleep 2
restart_hub --kill
kill $LOAD 2>/dev/null; wait $LOAD 2>/dev/null
N=$(wc -l <acked)
expect_ok "some QoS 1 messages were acknowledged before the kill ($N)" test "$N" -gt 0
"$HUBCTL" --json monitor --device dev1 --count 100000 --timeout 3 >all.jsonl 2>/dev/null
missing=0
while read -r m; do grep -q "\"$m\"" all.jsonl || missing=$((missing + 1)); done <acked
expect_eq "every acknowledged message survived kill -9" 0 "$missing"
expect_exit "queued C2D messages survived kill -9" 0 '"cloudToDeviceMessageCount": ?3' "$HUBCTL" --json device show dev2

stop_hub
summary

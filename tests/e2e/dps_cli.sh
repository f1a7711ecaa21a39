#!/bin/sh
# End-to-end: `hubctl dps ...` against hubd's Device Provisioning Service.
# The operator makes a PKI, uploads and verifies its root (hubctl ca), creates
# enrollment groups and enrollments (hubctl dps group/enrollment), and devices
# that were never created by hand register themselves (hubctl dps register,
# the device side over HTTPS), land in the hub as certificateAuthority (group),
# selfSigned (individual enrollment: pinned to its certificate) or sas
# devices and send telemetry over MQTT. Then every refusal (unknown CA, CN !=
# registration id, group disabled, an individual enrollment disabled under an
# enabled group, a wrong derived key), individual enrollments that pin a
# certificate no hub CA vouches for (self-signed, or under an unknown CA: the
# device becomes selfSigned and publishes with it; unfit, unenrolled or
# disabled ones refused) and the list/show/delete round trips.
# Usage: dps_cli.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
trap cleanup_hub EXIT INT TERM

# --- offline: key derivation and argument errors (no hub yet) ---------------
GROUP_KEY=$(head -c 32 /dev/urandom | base64)
# The same derivation with the openssl CLI: an implementation independent of hubd's.
HEXKEY=$(printf '%s' "$GROUP_KEY" | base64 -d | od -An -v -tx1 | tr -d ' \n')
WANT=$(printf '%s' "dsym1" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$HEXKEY" -binary | base64)
expect_ok "key derive runs offline" env -u HUB_DPS_CONNECTION_STRING "$HUBCTL" dps key derive --group-key "$GROUP_KEY" dsym1
expect_eq "key derive = base64(HMAC-SHA256(b64dec(groupKey), regId))" "$WANT" "$LAST_OUT"
OTHER=$("$HUBCTL" dps key derive --group-key "$GROUP_KEY" dsym2)
if [ "$OTHER" != "$LAST_OUT" ]; then pass "another registration id derives another key"; else fail "another registration id derives another key"; fi
expect_exit "key derive needs --group-key" 2 "group-key" "$HUBCTL" dps key derive dsym1
expect_exit "key derive refuses a key that is not base64" 2 "base64" "$HUBCTL" dps key derive --group-key '!!!' dsym1
expect_exit "group create needs an attestation" 2 "exactly one of --ca, --cert, --symmetric-key" "$HUBCTL" dps group create g1
expect_exit "group create takes one attestation only" 2 "exactly one" "$HUBCTL" dps group create g1 --ca a --symmetric-key
expect_exit "enrollment create does not take --ca" 2 "does not take --ca" "$HUBCTL" dps enrollment create e1 --ca a
expect_exit "--secondary-ca goes with --ca" 2 "secondary-ca" "$HUBCTL" dps group create g1 --symmetric-key --secondary-ca b
expect_exit "--reprovision takes reset|migrate|never" 2 "reset, migrate or never" "$HUBCTL" dps group create g1 --symmetric-key --reprovision sometimes
expect_exit "keys go in pairs" 2 "both" "$HUBCTL" dps group create g1 --symmetric-key --primary-key "$GROUP_KEY"
expect_exit "--tags must be a JSON object" 2 "tags" "$HUBCTL" dps group create g1 --symmetric-key --tags '[1]'
expect_exit "a bad thumbprint is refused" 2 "thumbprint|hex" "$HUBCTL" dps enrollment create e1 --thumbprint 12ZZ
expect_exit "register needs a credential" 2 "--cert CHAIN.pem --key KEY.pem, or --key-sas" "$HUBCTL" dps register r1 --id-scope 0ne00000001
expect_exit "register: --cert without --key" 2 "--key" "$HUBCTL" dps register r1 --id-scope 0ne00000001 --cert x.pem
expect_exit "register: bad --timeout" 2 "timeout" "$HUBCTL" dps register r1 --id-scope 0ne00000001 --key-sas "$GROUP_KEY" --timeout 0
expect_exit "registration list needs --group" 2 "--group" "$HUBCTL" dps registration list
expect_exit "no DPS connection string" 2 "HUB_DPS_CONNECTION_STRING" env -u HUB_DPS_CONNECTION_STRING "$HUBCTL" dps group list
expect_exit "unknown dps command" 2 "unknown dps command" "$HUBCTL" dps frobnicate
expect_exit "dps --help lists the commands" 0 "registration list --group ID" "$HUBCTL" dps --help

# Every hubctl call is a new TLS connection and the paging test makes ~250:
# no per-address connection rate limit here.
start_hub --connection-rate-per-ip 0
PKI=$HUB_DIR/pki
mkdir -p "$PKI"
cd "$PKI" || exit 1
q() { "$@" >/dev/null 2>&1 || { echo "setup failed: $*"; exit 1; }; }
MQTT="-h 127.0.0.1 -p $HUB_MQTT_PORT --cafile $HUB_CAFILE -V mqttv311"
# register ID [hubctl dps register args...]: the device side, X.509 by default.
register() { id=$1; shift; "$HUBCTL" dps register "$id" --id-scope "$HUB_DPS_ID_SCOPE" --timeout 20 "$@"; }
register_x509() { register "$1" --cert "${2:-$1}-chain.pem" --key "${2:-$1}.key"; }

# --- the PKI: a verified root, an intermediate, devices ------------------------
expect_exit "hubd printed the DPS connection string" 0 "SharedAccessKeyName=provisioningserviceowner" printf '%s' "$HUB_DPS_CONNECTION_STRING"
expect_exit "hubd printed the ID scope" 0 "^0ne[0-9A-F]{8}$" printf '%s' "$HUB_DPS_ID_SCOPE"
q "$HUBCTL" cert root --out root --subject "DPS E2E Root CA"
q "$HUBCTL" cert intermediate --out int --issuer-cert root.pem --issuer-key root.key --subject "DPS E2E Intermediate"
for d in dps1 dps4 dps5 dps6 dps7; do
    q "$HUBCTL" cert device --out $d --device-id $d --issuer-cert int.pem --issuer-key int.key --issuer-chain root.pem
done
q "$HUBCTL" cert device --out cnx --device-id someone-else --issuer-cert int.pem --issuer-key int.key --issuer-chain root.pem
q "$HUBCTL" cert root --out stranger --subject "Stranger Root CA"
q "$HUBCTL" cert device --out dps2 --device-id dps2 --issuer-cert stranger.pem --issuer-key stranger.key
expect_ok "upload the root" "$HUBCTL" ca upload dpsroot root.pem
CODE=$("$HUBCTL" ca code dpsroot)
q "$HUBCTL" cert verification --out pop --code "$CODE" --issuer-cert root.pem --issuer-key root.key
expect_ok "prove possession of the root" "$HUBCTL" ca verify dpsroot pop.pem

# --- an X.509 group by CA reference -------------------------------------------
expect_ok "group create --ca" "$HUBCTL" dps group create grpx --ca dpsroot --tags '{"site":"e2e"}' --desired '{"interval":5}'
expect_exit "it prints the group" 0 "enrollmentGroupId: +grpx" printf '%s' "$LAST_OUT"
GROUP_OUT=$LAST_OUT
expect_exit "human output: the attestation" 0 "attestation: +x509 caReferences dpsroot" printf '%s' "$GROUP_OUT"
expect_exit "human output: the status" 0 "status: +enabled" printf '%s' "$GROUP_OUT"
expect_exit "creating it again is refused" 1 "exists" "$HUBCTL" dps group create grpx --ca dpsroot
expect_ok "--replace replaces it (If-Match: its etag)" "$HUBCTL" dps group create grpx --ca dpsroot --tags '{"site":"e2e"}' --desired '{"interval":5}' --replace
expect_exit "group show --json" 0 '"caReferences": ?\{' "$HUBCTL" --json dps group show grpx
expect_exit "the initial twin is stored" 0 '"site": ?"e2e"' printf '%s' "$LAST_OUT"
expect_exit "group list has it" 0 "grpx +enabled +x509 caReferences dpsroot" "$HUBCTL" dps group list
expect_exit "dps1 is not in the hub yet" 1 "404|not found|NotFound" "$HUBCTL" device show dps1

# --- a device registers itself and connects -----------------------------------
expect_ok "dps register (X.509, chain through the intermediate)" register_x509 dps1
expect_exit "it prints assignedHub" 0 "^assignedHub=localhost$" printf '%s\n' "$LAST_OUT"
expect_exit "it prints deviceId" 0 "^deviceId=dps1$" printf '%s\n' "$LAST_OUT"
expect_log "the registration is logged" "event=dps_register .*registration=dps1.*outcome=assigned"
expect_exit "the hub has dps1 as a CA device" 0 '"type": ?"certificateAuthority"' "$HUBCTL" --json device show dps1
expect_exit "registration show: assigned" 0 "status: +assigned" "$HUBCTL" dps registration show dps1
expect_exit "registration show --json names the group" 0 '"enrollmentGroupId": ?"grpx"' "$HUBCTL" --json dps registration show dps1
expect_exit "registration list --group has dps1" 0 "dps1 +assigned +dps1 +localhost" "$HUBCTL" dps registration list --group grpx
expect_exit "the twin got the group's tags" 0 '"site": ?"e2e"' "$HUBCTL" --json twin show dps1
# shellcheck disable=SC2086
expect_ok "dps1 publishes over MQTT with its chain" timeout 20 mosquitto_pub $MQTT --cert dps1-chain.pem --key dps1.key \
    -i dps1 -u "localhost/dps1/?api-version=2021-04-12" -t "devices/dps1/messages/events/" -q 1 -m '{"provisioned":true}'
expect_exit "hubctl monitor shows its message" 0 'provisioned' "$HUBCTL" --json monitor --device dps1 --count 1 --timeout 10
expect_exit "registering again is a re-registration (--json: the state)" 0 '"substatus": ?"deviceDataMigrated"' \
    register dps1 --cert dps1-chain.pem --key dps1.key --json

# --- refusals -------------------------------------------------------------------
expect_exit "a device under an unregistered CA is refused" 1 "401" register_x509 dps2
expect_log "... as CHAIN_INVALID" "event=dps_register .*registration=dps2.*reason=CHAIN_INVALID"
expect_exit "... and was not created" 1 "404|not found|NotFound" "$HUBCTL" device show dps2
expect_exit "CN != registration id is refused" 1 "CN" register dps3 --cert cnx-chain.pem --key cnx.key
expect_log "... as CN_MISMATCH" "event=dps_register .*registration=dps3.*reason=CN_MISMATCH"
expect_ok "group disable" "$HUBCTL" dps group disable grpx
expect_exit "group show says disabled" 0 "status: +disabled" "$HUBCTL" dps group show grpx
expect_exit "a device of a disabled group is refused" 1 "disabled" register_x509 dps5
expect_log "... as DISABLED" "event=dps_register .*registration=dps5.*reason=DISABLED"
expect_ok "group enable" "$HUBCTL" dps group enable grpx
expect_exit "then it registers" 0 "^deviceId=dps5$" register_x509 dps5
expect_ok "an individual enrollment, disabled" "$HUBCTL" dps enrollment create dps4 --cert dps4.pem --disabled
expect_exit "it shows the certificate's subject" 0 "clientCertificate.*dps4" printf '%s' "$LAST_OUT"
expect_exit "creating it again is refused" 1 "exists" "$HUBCTL" dps enrollment create dps4 --cert dps4.pem
expect_exit "its disabled enrollment refuses dps4 though the group is enabled" 1 "disabled" register_x509 dps4
expect_ok "enrollment enable" "$HUBCTL" dps enrollment enable dps4
expect_exit "then dps4 registers through its own enrollment" 0 "^deviceId=dps4$" register_x509 dps4
expect_exit "registration show dps4" 0 '"registrationId": ?"dps4"' "$HUBCTL" --json dps registration show dps4
expect_exit "an individual enrollment pins dps4 to its certificate (selfSigned)" 0 '"type": ?"selfSigned"' \
    "$HUBCTL" --json device show dps4
expect_eq "... not through the group (no enrollmentGroupId)" 0 "$(printf '%s' "$LAST_OUT" | grep -c enrollmentGroupId)"
expect_ok "an enrollment by thumbprint with another device id" "$HUBCTL" dps enrollment create dps6 \
    --thumbprint "$("$HUBCTL" cert thumbprint --sha256 dps6.pem)" --device-id dps6-device
expect_exit "dps6 becomes device dps6-device" 0 "^deviceId=dps6-device$" register_x509 dps6
expect_ok "dps6-device is in the hub" "$HUBCTL" device show dps6-device

# --- pinned certificates: an individual enrollment needs no CA -------------------
# A self-signed device certificate (openssl, as Azure's docs make one)
# registers through its own individual enrollment and becomes a selfSigned
# device pinned to that certificate.
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout dpspin.key -out dpspin.pem -subj /CN=dpspin \
    -addext keyUsage=critical,digitalSignature -addext extendedKeyUsage=clientAuth
expect_exit "a self-signed device without an individual enrollment is refused" 1 "401" \
    register dpspin --cert dpspin.pem --key dpspin.key
expect_log "... as CHAIN_INVALID" "event=dps_register .*registration=dpspin.*reason=CHAIN_INVALID"
expect_exit "... and was not created" 1 "404|not found|NotFound" "$HUBCTL" device show dpspin
expect_ok "an individual enrollment of the self-signed certificate" "$HUBCTL" dps enrollment create dpspin --cert dpspin.pem
expect_exit "then it registers" 0 "^deviceId=dpspin$" register dpspin --cert dpspin.pem --key dpspin.key
expect_exit "the hub has dpspin as a selfSigned device" 0 '"type": ?"selfSigned"' "$HUBCTL" --json device show dpspin
PIN256=$("$HUBCTL" cert thumbprint --sha256 dpspin.pem)
expect_exit "... pinned to the certificate's SHA-256 thumbprint" 0 "\"primaryThumbprint\": ?\"$PIN256\"" printf '%s' "$LAST_OUT"
expect_exit "registration show: assigned, no group" 0 '"status": ?"assigned"' "$HUBCTL" --json dps registration show dpspin
expect_eq "... no enrollmentGroupId" 0 "$(printf '%s' "$LAST_OUT" | grep -c enrollmentGroupId)"
# shellcheck disable=SC2086
expect_ok "dpspin publishes over MQTT with its self-signed certificate" timeout 20 mosquitto_pub $MQTT --cert dpspin.pem --key dpspin.key \
    -i dpspin -u "localhost/dpspin/?api-version=2021-04-12" -t "devices/dpspin/messages/events/" -q 1 -m '{"pinned":true}'
expect_exit "hubctl monitor shows its message" 0 'pinned' "$HUBCTL" --json monitor --device dpspin --count 1 --timeout 10
expect_exit "re-registering keeps it selfSigned" 0 '"substatus": ?"deviceDataMigrated"' \
    register dpspin --cert dpspin.pem --key dpspin.key --json
expect_exit "... still selfSigned" 0 '"type": ?"selfSigned"' "$HUBCTL" --json device show dpspin
# Another key with the same CN is not the enrolled certificate.
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout dpspinx.key -out dpspinx.pem -subj /CN=dpspin \
    -addext keyUsage=critical,digitalSignature -addext extendedKeyUsage=clientAuth
expect_exit "another self-signed certificate with the same CN is refused" 1 "401" \
    register dpspin --cert dpspinx.pem --key dpspinx.key
# What `hubctl cert root --subject ID` makes (keyCertSign only) serves as a
# selfSigned device in the hub, so an individual enrollment may pin it too.
q "$HUBCTL" cert root --out dpspinca --subject dpspinca
expect_ok "an individual enrollment of a hubctl root certificate" "$HUBCTL" dps enrollment create dpspinca --cert dpspinca.pem
expect_exit "it registers" 0 "^deviceId=dpspinca$" register dpspinca --cert dpspinca.pem --key dpspinca.key
expect_exit "... as a selfSigned device" 0 '"type": ?"selfSigned"' "$HUBCTL" --json device show dpspinca
# A device under a CA the hub does not know, enrolled by SHA-1 thumbprint.
expect_ok "an individual enrollment of dps2 (unregistered CA) by thumbprint" "$HUBCTL" dps enrollment create dps2 \
    --thumbprint "$("$HUBCTL" cert thumbprint dps2.pem)"
expect_exit "dps2 now registers with its chain" 0 "^deviceId=dps2$" register_x509 dps2
expect_exit "the hub has dps2 as a selfSigned device" 0 '"type": ?"selfSigned"' "$HUBCTL" --json device show dps2
expect_ok "a disabled pinned enrollment" "$HUBCTL" dps enrollment disable dps2
expect_exit "refuses dps2" 1 "disabled" register_x509 dps2

# --- a symmetric-key group ------------------------------------------------------
expect_ok "group create --symmetric-key with given keys" "$HUBCTL" --json dps group create symg --symmetric-key \
    --primary-key "$GROUP_KEY" --secondary-key "$(head -c 32 /dev/urandom | base64)"
expect_eq "the group has the given primary key" "$GROUP_KEY" \
    "$(printf '%s\n' "$LAST_OUT" | sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p')"
expect_ok "group create --symmetric-key, keys generated" "$HUBCTL" dps group create symgen --symmetric-key --disabled
expect_exit "human output shows the generated primary key" 0 "primaryKey: +[A-Za-z0-9+/]{43}=" printf '%s' "$LAST_OUT"
DKEY=$("$HUBCTL" dps key derive --group-key "$GROUP_KEY" dsym1)
expect_exit "dps register --key-sas with the derived key" 0 "^deviceId=dsym1$" register dsym1 --key-sas "$DKEY"
expect_exit "the hub has dsym1 as a sas device" 0 '"type": ?"sas"' "$HUBCTL" --json device show dsym1
expect_exit "registration show names the symmetric-key group" 0 '"enrollmentGroupId": ?"symg"' "$HUBCTL" --json dps registration show dsym1
expect_exit "another id's derived key is refused" 1 "401" register dsym2 --key-sas "$DKEY"
expect_log "... as SAS_INVALID" "event=dps_register .*registration=dsym2.*reason=SAS_INVALID"
# A device made by hand is not the group's to take: the group key must not
# rewrite its credentials.
expect_ok "a hand-made sas device dsym3" "$HUBCTL" device create dsym3 --auth sas
HANDKEY=$("$HUBCTL" --json device show dsym3 | sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' | head -1)
expect_exit "registering dsym3 through the group fails" 1 "other credentials|409" \
    register dsym3 --key-sas "$("$HUBCTL" dps key derive --group-key "$GROUP_KEY" dsym3)"
expect_log "... logged as DEVICE_CONFLICT" "event=dps_register .*registration=dsym3.*outcome=failed.*reason=DEVICE_CONFLICT"
expect_eq "dsym3 keeps its own key" "$HANDKEY" \
    "$("$HUBCTL" --json device show dsym3 | sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' | head -1)"

# --- an inline signing certificate beats the root's group ----------------------
expect_exit "a certificate file holding a private key is refused locally" 2 "private key" \
    sh -c "cat int.pem int.key >with-key.pem && '$HUBCTL' dps group create grpk --cert with-key.pem"
expect_ok "group create --cert (the intermediate)" "$HUBCTL" dps group create grpint --cert int.pem
expect_exit "it shows the signing certificate" 0 "signingCertificate.*DPS E2E Intermediate" printf '%s' "$LAST_OUT"
expect_ok "dps7 registers" register_x509 dps7
expect_exit "... through the nearest group (the intermediate's)" 0 '"enrollmentGroupId": ?"grpint"' "$HUBCTL" --json dps registration show dps7

# --- list / show / delete round trips ---------------------------------------------
expect_exit "group list --json has the four groups, by id" 0 "grpint.*grpx.*symg.*symgen" sh -c "'$HUBCTL' --json dps group list | tr -d '\n '"
expect_eq "exactly four groups" 4 "$("$HUBCTL" --json dps group list | grep -c '"enrollmentGroupId"')"
expect_exit "enrollment list has dps4 and dps6" 0 "dps4.*dps6" sh -c "'$HUBCTL' dps enrollment list | tr '\n' ' '"
expect_exit "enrollment show --json" 0 '"registrationId": ?"dps6"' "$HUBCTL" --json dps enrollment show dps6
expect_exit "... with its device id" 0 '"deviceId": ?"dps6-device"' printf '%s' "$LAST_OUT"
expect_ok "enrollment delete" "$HUBCTL" dps enrollment delete dps4
expect_exit "it is gone" 1 "404" "$HUBCTL" dps enrollment show dps4
expect_exit "deleting it again: 404" 1 "404" "$HUBCTL" dps enrollment delete dps4
expect_exit "dps4's registration record stays" 0 "status: +assigned" "$HUBCTL" dps registration show dps4
expect_ok "registration delete" "$HUBCTL" dps registration delete dps1
expect_exit "the record is gone" 1 "404" "$HUBCTL" dps registration show dps1
expect_ok "... but not the device" "$HUBCTL" device show dps1
expect_ok "group delete" "$HUBCTL" dps group delete symgen
expect_exit "it is gone" 1 "404" "$HUBCTL" dps group show symgen
expect_ok "group list" "$HUBCTL" dps group list
expect_eq "group list no longer has it" 0 "$(printf '%s\n' "$LAST_OUT" | grep -c symgen)"
# Paging: more enrollments than the service's page (100) make list follow
# x-ms-continuation; every one must come back exactly once.
i=0
while [ $i -lt 120 ]; do
    "$HUBCTL" dps enrollment create "bulk-$i" --symmetric-key >/dev/null 2>&1 || break
    i=$((i + 1))
done
expect_eq "120 more enrollments created" 120 "$i"
expect_ok "enrollment list over several pages" "$HUBCTL" --json dps enrollment list
expect_eq "it has all 124 enrollments" 124 "$(printf '%s\n' "$LAST_OUT" | grep -c '"registrationId"')"
expect_eq "... each once" 124 "$(printf '%s\n' "$LAST_OUT" | grep '"registrationId"' | sort -u | wc -l | tr -d ' ')"
expect_exit "the hub's connection string does not open the DPS API" 1 "401|403" \
    "$HUBCTL" --dps-connection-string "$HUB_CONNECTION_STRING" dps group list

# The registrations above are counted in GET /metrics, by outcome and reason.
SVC=$(sas_token localhost serviceConnect "$(policy_key serviceConnect)" $(($(date +%s) + 3600)))
curl -sS --max-time 10 --cacert "$HUB_CAFILE" --resolve "localhost:$HUB_PORT:127.0.0.1" \
    -H "Authorization: $SVC" "https://localhost:$HUB_PORT/metrics" >metrics.txt
metric() { awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' metrics.txt; }
expect_exit "metrics: assigned registrations counted" 0 '^[1-9]' \
    metric 'hubd_dps_registrations_total{outcome="assigned",reason="OK"}'
expect_exit "metrics: chain refusals counted" 0 '^[1-9]' \
    metric 'hubd_dps_registrations_total{outcome="refused",reason="CHAIN_INVALID"}'
expect_exit "metrics: disabled refusals counted" 0 '^[1-9]' \
    metric 'hubd_dps_registrations_total{outcome="refused",reason="DISABLED"}'

cd / || exit 1
stop_hub
summary

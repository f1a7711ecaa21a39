#!/bin/sh
# End-to-end: hubd's service API driven by hubctl and curl. The seed's steps
# 1-4 (create a CA, upload it, prove possession, create a device) and every
# refusal on the way. Usage: service_api.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
trap cleanup_hub EXIT INT TERM

start_hub --max-ca-certificates 3 --verification-code-ttl-s 2
PKI=$HUB_DIR/pki
mkdir -p "$PKI"
cd "$PKI" || exit 1
BASE="https://localhost:$HUB_PORT"
API="api-version=2021-04-12"
HOST=localhost
OWNER_KEY=$(policy_key iothubowner)
TOKEN=$(sas_token "$HOST" iothubowner "$OWNER_KEY" $(($(date +%s) + 3600)))
curl_api() { curl -sS --cacert "$HUB_CAFILE" --resolve "localhost:$HUB_PORT:127.0.0.1" "$@"; }

# --- the hub itself ---------------------------------------------------------
expect_ok "hub CA file is a certificate" openssl x509 -in "$HUB_CAFILE" -noout
expect_eq "policies file is 0600" 600 "$(stat -c %a "$HUB_DIR/data/policies")"
expect_eq "hub CA key is 0600" 600 "$(stat -c %a "$HUB_DIR/data/tls/hub-ca.key")"
expect_eq "the database (device keys) is 0600" 600 "$(stat -c %a "$HUB_DIR/data/hubd.db")"
expect_eq "the data dir is 0700" 700 "$(stat -c %a "$HUB_DIR/data")"
expect_exit "second hubd on the same data dir refuses" 1 "in use by another hubd" \
    "$HUBD" --data-dir "$HUB_DIR/data" --listen 127.0.0.1 --https-port $((HUB_PORT + 2)) --mqtt-port $((HUB_PORT + 3)) --dps-mqtt-port $((HUB_PORT + 4))

# --- step 1: a CA, an intermediate and a device certificate -----------------
expect_ok "make root CA" "$HUBCTL" cert root --out root --subject "E2E Root CA"
expect_ok "make intermediate" "$HUBCTL" cert intermediate --out int --issuer-cert root.pem --issuer-key root.key
expect_ok "make device cert dev1" "$HUBCTL" cert device --out dev1 --device-id dev1 --issuer-cert int.pem --issuer-key int.key --issuer-chain root.pem
expect_ok "make a leaf for the not-a-CA test" "$HUBCTL" cert device --out leaf --device-id leaf --issuer-cert root.pem --issuer-key root.key
expect_ok "make another root (wrong signer)" "$HUBCTL" cert root --out other --subject "E2E Root CA"

# --- step 2: upload -----------------------------------------------------------
expect_exit "upload a leaf (not a CA) is refused" 1 "CA" "$HUBCTL" ca upload leafca leaf.pem
cat root.pem root.key >with-key.pem
expect_exit "hubctl refuses to send a file with a private key" 2 "private key" "$HUBCTL" ca upload keyca with-key.pem
KEYBODY=$(awk 'BEGIN { printf "{\"properties\":{\"certificate\":\"" } { printf "%s\\n", $0 } END { printf "\"}}" }' with-key.pem)
expect_exit "the hub refuses an upload with a private key" 0 'PRIVATE_KEY|private key.*400' sh -c \
    "curl -sS --cacert '$HUB_CAFILE' --resolve 'localhost:$HUB_PORT:127.0.0.1' -w ' %{http_code}' -X PUT -H 'Authorization: $TOKEN' -d '$KEYBODY' '$BASE/certificates/keyca?$API'"
expect_log "the key upload refusal is logged" "event=api_refused .*reason=PRIVATE_KEY"
expect_ok "upload root CA" "$HUBCTL" ca upload myca root.pem
expect_exit "CA is unverified after upload" 0 "isVerified\": false|unverified|Unverified" "$HUBCTL" --json ca show myca
expect_exit "upload under an existing name without If-Match is refused" 1 "exists" "$HUBCTL" ca upload myca root.pem
expect_exit "isVerified on upload is refused without --allow-verify-on-upload" 1 "allow-verify-on-upload" \
    "$HUBCTL" ca upload autoca other.pem --verified
expect_exit "curl: the CA list has the CA" 0 '"name":"myca"' curl_api -H "Authorization: $TOKEN" "$BASE/certificates?$API"

# --- step 3: proof of possession and its failures ----------------------------
CODE1=$("$HUBCTL" ca code myca)
expect_exit "verification code is 48 hex digits" 0 '^[0-9A-F]{48}$' printf '%s' "$CODE1"
expect_ok "verification cert with the wrong CN" "$HUBCTL" cert verification --out wrongcn --code 0123456789ABCDEF --issuer-cert root.pem --issuer-key root.key
expect_exit "verify with the wrong CN is refused" 1 "CN" "$HUBCTL" ca verify myca wrongcn.pem
expect_ok "verification cert signed by another key" "$HUBCTL" cert verification --out otherkey --code "$CODE1" --issuer-cert other.pem --issuer-key other.key
expect_exit "verify signed by another key is refused" 1 "signature" "$HUBCTL" ca verify myca otherkey.pem
expect_ok "verification cert for the first code" "$HUBCTL" cert verification --out stale --code "$CODE1" --issuer-cert root.pem --issuer-key root.key
CODE2=$("$HUBCTL" ca code myca)
expect_exit "verify with a stale code (after a new one) is refused" 1 "CN" "$HUBCTL" ca verify myca stale.pem
expect_ok "verification cert for the new code" "$HUBCTL" cert verification --out fresh --code "$CODE2" --issuer-cert root.pem --issuer-key root.key
sleep 3
expect_exit "verify with an expired code is refused" 1 "expired" "$HUBCTL" ca verify myca fresh.pem
CODE3=$("$HUBCTL" ca code myca)
expect_ok "verification cert for a live code" "$HUBCTL" cert verification --out good --code "$CODE3" --issuer-cert root.pem --issuer-key root.key
expect_ok "verify with the right certificate" "$HUBCTL" ca verify myca good.pem
expect_exit "CA is verified" 0 '"isVerified": ?true' "$HUBCTL" --json ca show myca
expect_exit "the code is consumed" 1 "code" "$HUBCTL" ca verify myca good.pem
expect_log "verification is logged with who" "event=ca_verified who=iothubowner"

# --- step 4: devices ----------------------------------------------------------
expect_ok "create device dev1 (certificateAuthority)" "$HUBCTL" device create dev1 --auth ca
expect_exit "dev1 is a CA device" 0 '"type": ?"certificateAuthority"' "$HUBCTL" --json device show dev1
expect_exit "creating dev1 again is a conflict" 1 "409|exists|Exists" "$HUBCTL" device create dev1 --auth ca
THUMB=$("$HUBCTL" cert thumbprint dev1.pem)
expect_ok "create a selfSigned device" "$HUBCTL" device create dev2 --auth selfsigned --thumbprint "$THUMB"
expect_exit "create a sas device gets generated keys" 0 '"primaryKey": ?"[A-Za-z0-9+/]{43}="' "$HUBCTL" --json device create dev3 --auth sas
expect_ok "disable dev3" "$HUBCTL" device update dev3 --status disabled --reason "e2e test"
expect_exit "dev3 is disabled" 0 '"status": ?"disabled"' "$HUBCTL" --json device show dev3
expect_exit "device list shows dev3 disabled" 0 "dev3 +disabled +sas" "$HUBCTL" device list
expect_exit "query by status" 0 '"deviceId":"dev3"' curl_api -X POST -H "Authorization: $TOKEN" \
    -H "Content-Type: application/json" -d "{\"query\":\"SELECT * FROM devices WHERE status = 'disabled'\"}" "$BASE/devices/query?$API"
expect_exit "a malformed query names the column" 0 '400.*column 8|column 8' sh -c \
    "curl -sS --cacert '$HUB_CAFILE' --resolve 'localhost:$HUB_PORT:127.0.0.1' -w ' %{http_code}' -X POST -H 'Authorization: $TOKEN' -d '{\"query\":\"SELECT % FROM devices\"}' '$BASE/devices/query?$API'"
expect_exit "paging: continuation header when more remain" 0 "x-ms-continuation" curl_api -i -X POST \
    -H "Authorization: $TOKEN" -H "x-ms-max-item-count: 2" -d '{"query":"SELECT * FROM devices"}' "$BASE/devices/query?$API"
expect_ok "delete dev2" "$HUBCTL" device delete dev2
expect_exit "dev2 is gone" 1 "DeviceNotFound|not found" "$HUBCTL" device show dev2
expect_exit "stale etag is refused with 412" 0 "412" curl_api -o /dev/null -w '%{http_code}' -X PUT \
    -H "Authorization: $TOKEN" -H 'If-Match: "bogus"' -d '{"deviceId":"dev1","authentication":{"type":"certificateAuthority"}}' "$BASE/devices/dev1?$API"

# --- tokens and policies -------------------------------------------------------
code_of() { curl_api -o /dev/null -w '%{http_code}' "$@"; }
expect_eq "no token: 401" 401 "$(code_of "$BASE/devices?$API")"
BAD=$(sas_token "$HOST" iothubowner "$(policy_key registryRead)" $(($(date +%s) + 3600)))
expect_eq "token signed with the wrong key: 401" 401 "$(code_of -H "Authorization: $BAD" "$BASE/devices?$API")"
OLD=$(sas_token "$HOST" iothubowner "$OWNER_KEY" $(($(date +%s) - 10)))
expect_eq "expired token: 401" 401 "$(code_of -H "Authorization: $OLD" "$BASE/devices?$API")"
expect_eq "garbage token: 401" 401 "$(code_of -H "Authorization: SharedAccessSignature nonsense" "$BASE/devices?$API")"
READER=$(sas_token "$HOST" registryRead "$(policy_key registryRead)" $(($(date +%s) + 3600)))
expect_eq "registryRead may list: 200" 200 "$(code_of -H "Authorization: $READER" "$BASE/devices?$API")"
expect_eq "registryRead may not create: 403" 403 "$(code_of -X PUT -H "Authorization: $READER" -d '{"deviceId":"x"}' "$BASE/devices/x?$API")"
expect_eq "no api-version: 400" 400 "$(code_of -H "Authorization: $TOKEN" "$BASE/devices")"
expect_eq "malformed JSON: 400" 400 "$(code_of -X PUT -H "Authorization: $TOKEN" -d '{"deviceId":' "$BASE/devices/x?$API")"
head -c 300000 /dev/zero | tr '\0' 'a' >big.json
# Expect: 100-continue lets the hub refuse before the body is sent, so the
# answer cannot be lost to a reset while curl is still writing.
expect_eq "body over the limit: 413" 413 "$(code_of -X PUT -H "Authorization: $TOKEN" -H "Expect: 100-continue" --data-binary @big.json "$BASE/devices/x?$API")"
expect_log "refusals are logged with a reason" "event=api_refused .*reason=SAS_"
expect_log "a 403 names the policy" "event=api_refused who=registryRead .*status=403"

# --- CA limit and delete -------------------------------------------------------
"$HUBCTL" cert root --out r2 >/dev/null && "$HUBCTL" cert root --out r3 >/dev/null && "$HUBCTL" cert root --out r4 >/dev/null
"$HUBCTL" ca upload ca2 r2.pem >/dev/null; "$HUBCTL" ca upload ca3 r3.pem >/dev/null
expect_exit "more CAs than the limit are refused" 1 "limit|Quota|quota" "$HUBCTL" ca upload ca4 r4.pem
expect_ok "delete a CA" "$HUBCTL" ca delete ca3
expect_exit "deleted CA is gone" 1 "not found|NotFound" "$HUBCTL" ca show ca3

# --- restart keeps everything ---------------------------------------------------
OLD_CS=$HUB_CONNECTION_STRING
restart_hub
LATEST=$(ls -t "$HUB_DIR"/hubd.*.out | head -1)
expect_eq "restart prints the same connection string" "$OLD_CS" "$(sed -n 's/^  connection string: *//p' "$LATEST")"
expect_exit "the verified CA survived a restart" 0 '"isVerified": ?true' "$HUBCTL" --json ca show myca
expect_exit "dev1 survived a restart" 0 '"deviceId": ?"dev1"' "$HUBCTL" --json device show dev1
stop_hub

summary

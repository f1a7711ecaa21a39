#!/bin/sh
# End-to-end: the provisioning service API (issue 8 §1) driven by curl with
# SAS tokens signed here by the openssl CLI (lib.sh sas_token), against the
# DPS policy set. Enrollment groups (inline signing certificate,
# caReferences, symmetric key), an individual enrollment by thumbprint, etags
# and If-Match, queries with paging, the attestation mechanism, one real
# registration over the device HTTPS route and its record, rights and the
# separation of the hub's and the DPS's policy sets, and the refusals with
# their DPS-shaped bodies and log lines; the bulk operation (each mode,
# failures reported per registrationId, its bound and rights).
# Usage: dps_api.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
trap cleanup_hub EXIT INT TERM

start_hub
WORK=$HUB_DIR/work
mkdir -p "$WORK"
cd "$WORK" || exit 1
BASE="https://localhost:$HUB_PORT"
API="api-version=2021-10-01"
HOST=localhost
EXP=$(($(date +%s) + 3600))

# dps_policy_key NAME: a DPS policy's primary key (same file format as the hub's).
dps_policy_key() {
    awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$HUB_DIR/data/dps-policies"
}
OWNER_KEY=$(printf '%s' "$HUB_DPS_CONNECTION_STRING" | sed -n 's/.*SharedAccessKey=\([^;]*\).*/\1/p')
expect_eq "the printed DPS connection string names provisioningserviceowner" \
    provisioningserviceowner "$(printf '%s' "$HUB_DPS_CONNECTION_STRING" | sed -n 's/.*SharedAccessKeyName=\([^;]*\).*/\1/p')"
expect_eq "its key is the dps-policies file's" "$(dps_policy_key provisioningserviceowner)" "$OWNER_KEY"
DPS=$(sas_token "$HOST" provisioningserviceowner "$OWNER_KEY" $EXP)
READER=$(sas_token "$HOST" enrollmentRead "$(dps_policy_key enrollmentRead)" $EXP)
# Two narrower policies than the defaults, one per side of the API, so each
# right is seen to gate its own routes: added to the file, read on restart.
K1=$(openssl rand -base64 32)
K2=$(openssl rand -base64 32)
printf 'enrollmentsOnly\t%s\t%s\tEnrollmentRead, EnrollmentWrite\n' "$K1" "$K2" >>"$HUB_DIR/data/dps-policies"
printf 'registrationsOnly\t%s\t%s\tRegistrationStatusRead\n' "$K2" "$K1" >>"$HUB_DIR/data/dps-policies"
restart_hub
ENROLLONLY=$(sas_token "$HOST" enrollmentsOnly "$K1" $EXP)
REGONLY=$(sas_token "$HOST" registrationsOnly "$K2" $EXP)
HUBOWNER=$(sas_token "$HOST" iothubowner "$(policy_key iothubowner)" $EXP)

curl_api() { curl -sS --cacert "$HUB_CAFILE" --resolve "localhost:$HUB_PORT:127.0.0.1" "$@"; }
# call TOKEN METHOD PATH [curl args...]: sets STATUS, BODY and HEADERS (file).
HEADERS=$WORK/headers
call() {
    tok=$1; m=$2; p=$3; shift 3
    out=$(curl_api -D "$HEADERS" -w '\n%{http_code}' -X "$m" -H "Authorization: $tok" "$@" "$BASE$p?$API")
    STATUS=$(printf '%s' "$out" | tail -n 1)
    BODY=$(printf '%s' "$out" | sed '$d')
}
# header NAME: a response header of the last call (value, CR stripped).
header() {
    awk -v n="$1" '{ split($0, a, ":"); if (tolower(a[1]) == tolower(n)) { sub(/^[^:]*: */, ""); sub(/\r$/, ""); print } }' "$HEADERS"
}
# field KEY: the first "KEY":"value" string in BODY.
field() { printf '%s' "$BODY" | sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }
# expect_call NAME STATUS PATTERN: the last call answered STATUS with a body matching PATTERN.
expect_call() {
    if [ "$STATUS" != "$2" ]; then
        fail "$1" "status $STATUS, wanted $2: $BODY"
    elif ! printf '%s' "$BODY" | grep -qE -- "$3"; then
        fail "$1" "body does not match /$3/: $BODY"
    else
        pass "$1"
    fi
}
# json_pem FILE: the file as a JSON string body (newlines escaped).
json_pem() { awk '{ printf "%s\\n", $0 }' "$1"; }

# --- certificates -------------------------------------------------------------
expect_ok "make a root CA" "$HUBCTL" cert root --out root --subject "DPS E2E Root"
expect_ok "make a device certificate" "$HUBCTL" cert device --out dev1 --device-id dev1 \
    --issuer-cert root.pem --issuer-key root.key
THUMB=$("$HUBCTL" cert thumbprint dev1.pem)
expect_exit "the device thumbprint is hex" 0 '^[0-9A-Fa-f]{40}([0-9A-Fa-f]{24})?$' printf '%s' "$THUMB"

# --- api-version and the policy sets -----------------------------------------
out=$(curl_api -w ' %{http_code}' -H "Authorization: $DPS" "$BASE/enrollmentGroups/g-x509")
expect_exit "missing api-version is 400" 0 'api-version.* 400$' printf '%s' "$out"
call "$HUBOWNER" GET /enrollmentGroups/g-x509
expect_call "an iothubowner token is refused on /enrollmentGroups (401)" 401 'IotHubUnauthorizedAccess'
call "$HUBOWNER" POST /enrollments/query -d '{"query":"*"}'
expect_call "an iothubowner token is refused on the enrollment query (401)" 401 '.'
call "$DPS" GET /devices
expect_call "a provisioningserviceowner token is refused on /devices (401)" 401 'IotHubUnauthorizedAccess'
call "$HUBOWNER" GET /devices
expect_call "the iothubowner token itself opens /devices (200)" 200 '^\['
call "$DPS" GET /enrollmentGroups/none
expect_call "a missing group is 404 in the DPS error shape" 404 '"errorCode":404001.*"trackingId":"[0-9A-Fa-f]{32}"'
expect_exit "the 404 body has timestampUtc and a message" 0 '"timestampUtc":"20[0-9-]+T.*"message":"|"message":".*"timestampUtc":"20' printf '%s' "$BODY"
expect_log "the 404 refusal is logged with its reason" "event=api_refused who=provisioningserviceowner .*status=404 reason=NOT_FOUND"

# --- an x509 group with an inline signing certificate -------------------------
GX='{"enrollmentGroupId":"g-x509","attestation":{"type":"x509","x509":{"signingCertificates":{"primary":{"certificate":"'$(json_pem root.pem)'"}}}},"provisioningStatus":"enabled"}'
call "$DPS" PUT /enrollmentGroups/g-x509 -H 'Content-Type: application/json' -d "$GX"
expect_call "PUT an x509 group with an inline signing certificate answers 200" 200 '"enrollmentGroupId":"g-x509"'
ETAG_X=$(field etag)
expect_eq "the ETag header is the record's etag" "\"$ETAG_X\"" "$(header ETag)"
expect_log "the creation is logged" "event=dps_enrollment_created who=provisioningserviceowner .*kind=group id=g-x509"
call "$DPS" GET /enrollmentGroups/g-x509
expect_call "GET the x509 group shows the signing certificate's info" 200 '"signingCertificates":\{"primary":\{.*DPS E2E Root'
expect_eq "GET answers the same etag" "$ETAG_X" "$(field etag)"

# --- a caReferences group ----------------------------------------------------------
call "$DPS" PUT /enrollmentGroups/g-ca -d '{"attestation":{"type":"x509","x509":{"caReferences":{"primary":"myca"}}}}'
expect_call "PUT a caReferences group answers 200" 200 '"caReferences":\{"primary":"myca"'
ETAG_CA=$(field etag)

# --- a symmetric-key group, keys generated ----------------------------------------
call "$DPS" PUT /enrollmentGroups/g-sym -d '{"enrollmentGroupId":"g-sym","attestation":{"type":"symmetricKey"}}'
expect_call "PUT a symmetricKey group generates both keys" 200 '"primaryKey":"[A-Za-z0-9+/]{43}=".*"secondaryKey":"[A-Za-z0-9+/]{43}="'
GKEY=$(field primaryKey)
call "$DPS" POST /enrollmentgroups/g-sym/attestationmechanism
expect_call "POST .../attestationmechanism (the SDK's lower-case path) answers the attestation" 200 '^\{"type":"symmetricKey"'
expect_eq "the attestation mechanism carries the group's primary key" "$GKEY" "$(field primaryKey)"

# --- an individual enrollment by thumbprint -------------------------------------
call "$DPS" PUT /enrollments/dev1 -d '{"registrationId":"dev1","deviceId":"dev1","attestation":{"type":"x509","x509":{"clientCertificates":{"primary":{"info":{"sha1Thumbprint":"'"$THUMB"'"}}}}}}'
expect_call "PUT an individual enrollment by thumbprint answers 200" 200 '"registrationId":"dev1"'
call "$DPS" GET /enrollments/dev1
THUMB_UP=$(printf '%s' "$THUMB" | tr 'a-f' 'A-F')
expect_call "GET the individual enrollment shows the thumbprint" 200 "$THUMB_UP"
call "$DPS" POST /enrollments/dev1/attestationmechanism
expect_call "the individual attestation mechanism is x509" 200 '^\{"type":"x509"'

# --- etags and If-Match ---------------------------------------------------------------
call "$DPS" PUT /enrollmentGroups/g-ca -H "If-Match: \"$ETAG_CA\"" -d '{"attestation":{"type":"x509","x509":{"caReferences":{"primary":"myca"}}},"provisioningStatus":"disabled"}'
expect_call "an update with the current If-Match answers 200" 200 '"provisioningStatus":"disabled"'
ETAG_CA2=$(field etag)
if [ -n "$ETAG_CA2" ] && [ "$ETAG_CA2" != "$ETAG_CA" ]; then pass "the update changed the etag"; else fail "the update changed the etag" "$ETAG_CA -> $ETAG_CA2"; fi
expect_log "the update is logged" "event=dps_enrollment_updated .*id=g-ca"
call "$DPS" PUT /enrollmentGroups/g-ca -H "If-Match: \"$ETAG_CA\"" -d '{"attestation":{"type":"x509","x509":{"caReferences":{"primary":"myca"}}}}'
expect_call "an update with a stale If-Match is 412" 412 '"errorCode":412001'
call "$DPS" GET /enrollmentGroups/g-ca
expect_call "the refused update changed nothing" 200 '"provisioningStatus":"disabled"'
call "$DPS" DELETE /enrollmentGroups/g-ca -H "If-Match: \"$ETAG_CA\""
expect_call "a DELETE with a stale If-Match is 412" 412 'etag'
expect_log "the 412 is logged" "event=api_refused .*status=412 reason=ETAG_MISMATCH"
call "$DPS" PUT /enrollmentGroups/g-new -H 'If-Match: "abc"' -d '{"attestation":{"type":"symmetricKey"}}'
expect_call "If-Match on a record that does not exist is 412" 412 '.'

# --- queries --------------------------------------------------------------------------
call "$DPS" POST /enrollmentGroups/query -d '{"query":"SELECT * FROM enrollmentGroups"}'
expect_call "the group query lists the three groups in id order" 200 '^\[\{"enrollmentGroupId":"g-ca".*"enrollmentGroupId":"g-sym".*"enrollmentGroupId":"g-x509"'
expect_eq "the group query has x-ms-item-type enrollmentGroup" enrollmentGroup "$(header x-ms-item-type)"
expect_eq "a complete answer has no continuation" "" "$(header x-ms-continuation)"
call "$DPS" POST /enrollmentGroups/query -H 'x-ms-max-item-count: 2' -d '{"query":"*"}'
expect_call "page 1 of 2 holds two groups" 200 '^\[\{"enrollmentGroupId":"g-ca".*"enrollmentGroupId":"g-sym"'
CONT=$(header x-ms-continuation)
expect_eq "page 1 says where page 2 starts" g-sym "$CONT"
call "$DPS" POST /enrollmentGroups/query -H 'x-ms-max-item-count: 2' -H "x-ms-continuation: $CONT" -d '{"query":"*"}'
expect_call "page 2 holds the last group only" 200 '^\[\{"enrollmentGroupId":"g-x509"[^]]*\]$'
expect_eq "the last page has no continuation" "" "$(header x-ms-continuation)"
call "$DPS" POST /enrollments/query -d '{"query":"SELECT * FROM enrollments"}'
expect_call "the enrollment query lists dev1" 200 '^\[\{"registrationId":"dev1"'
expect_eq "the enrollment query has x-ms-item-type enrollment" enrollment "$(header x-ms-item-type)"
call "$DPS" POST /enrollments/query -d '{"query":"SELECT * FROM enrollments WHERE registrationId = '"'dev1'"'"}'
expect_call "a query with a filter is refused, not answered unfiltered (400)" 400 'only'
call "$DPS" POST /enrollments/query -H 'x-ms-max-item-count: 0' -d '{"query":"*"}'
expect_call "x-ms-max-item-count 0 is 400" 400 'x-ms-max-item-count'
call "$DPS" POST /enrollments/query -H 'x-ms-continuation: NOT/AN ID' -d '{"query":"*"}'
expect_call "a malformed continuation is 400" 400 'continuation'

# --- rights ---------------------------------------------------------------------------
call "$READER" GET /enrollmentGroups/g-x509
expect_call "enrollmentRead can GET a group" 200 '"enrollmentGroupId":"g-x509"'
call "$READER" POST /enrollmentGroups/query -d '{"query":"*"}'
expect_call "enrollmentRead can query" 200 '^\['
call "$READER" PUT /enrollmentGroups/g-x509 -d "$GX"
expect_call "enrollmentRead cannot PUT (403)" 403 '.'
call "$READER" DELETE /enrollments/dev1
expect_call "enrollmentRead cannot DELETE (403)" 403 '.'
call "$READER" DELETE /registrations/whoever
expect_call "enrollmentRead cannot delete registration records (403)" 403 '.'
call "$ENROLLONLY" GET /registrations/whoever
expect_call "a policy without RegistrationStatusRead cannot read records (403)" 403 '.'
call "$ENROLLONLY" PUT /enrollmentGroups/g-x509 -d "$GX"
expect_call "... but its EnrollmentWrite can PUT a group" 200 '"enrollmentGroupId":"g-x509"'
call "$REGONLY" GET /enrollmentGroups/g-x509
expect_call "a policy with only RegistrationStatusRead cannot read enrollments (403)" 403 '.'
call "$REGONLY" GET /registrations/whoever
expect_call "... but can look up a record (404 for none)" 404 '"errorCode":404001'
expect_log "the 403 is logged with the policy" "event=api_refused who=enrollmentRead .*status=403"

# --- bad bodies -----------------------------------------------------------------------
cat root.pem root.key >with-key.pem
call "$DPS" PUT /enrollmentGroups/g-key -d '{"attestation":{"type":"x509","x509":{"signingCertificates":{"primary":{"certificate":"'"$(json_pem with-key.pem)"'"}}}}}'
expect_call "a signing certificate with a private key is 400 with a message" 400 '"message":"[^"]*private key'
expect_log "the private-key refusal is logged" "event=api_refused .*status=400 reason=PRIVATE_KEY"
call "$DPS" PUT /enrollmentGroups/g-tpm -d '{"attestation":{"type":"tpm","tpm":{"endorsementKey":"AA=="}}}'
expect_call "an unsupported attestation type is 400 naming the field" 400 'attestation.type'
call "$DPS" PUT /enrollments/dev2 -d '{"attestation":{"type":"x509","x509":{}}}'
expect_call "an x509 enrollment without a certificate is 400" 400 'clientCertificates'
call "$DPS" PUT /enrollmentGroups/g-bad -d '{"attestation":'
expect_call "malformed JSON is 400" 400 'not JSON'
call "$DPS" PUT /enrollmentGroups/g-one -d '{"enrollmentGroupId":"g-two","attestation":{"type":"symmetricKey"}}'
expect_call "a body id that differs from the URL's is 400" 400 'differs'
call "$DPS" PUT /enrollmentGroups/Upper -d '{"attestation":{"type":"symmetricKey"}}'
expect_call "an id with upper case is 400" 400 '"errorCode":400001'
call "$DPS" GET /enrollmentGroups/g-bad
expect_call "no refused PUT created a record" 404 '.'
call "$DPS" PATCH /enrollmentGroups/g-x509 -d '{}'
expect_call "PATCH is 405" 405 'not allowed'

# --- a registration over the device HTTPS route, and its record ---------------------
DKEY=$(printf '%s' sdev1 | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(printf '%s' "$GKEY" | base64 -d | od -An -tx1 | tr -d ' \n')" -binary | base64)
DEVTOK=$(sas_token "$HUB_DPS_ID_SCOPE/registrations/sdev1" registration "$DKEY" $EXP)
out=$(curl_api -X PUT -H "Authorization: $DEVTOK" -H 'Content-Type: application/json' \
    -d '{"registrationId":"sdev1"}' "$BASE/$HUB_DPS_ID_SCOPE/registrations/sdev1/register?api-version=2021-06-01")
OP=$(printf '%s' "$out" | sed -n 's/.*"operationId":"\([^"]*\)".*/\1/p')
if [ -n "$OP" ]; then pass "a device of g-sym registers over HTTPS"; else fail "a device of g-sym registers over HTTPS" "$out"; fi
i=0
while [ $i -lt 50 ]; do
    out=$(curl_api -H "Authorization: $DEVTOK" "$BASE/$HUB_DPS_ID_SCOPE/registrations/sdev1/operations/$OP?api-version=2021-06-01")
    printf '%s' "$out" | grep -q '"status":"assigning"' || break
    i=$((i + 1)); sleep 0.2
done
expect_exit "the registration is assigned" 0 '"status":"assigned"' printf '%s' "$out"
call "$DPS" GET /registrations/sdev1
expect_call "GET /registrations/sdev1 answers the record" 200 '"registrationId":"sdev1".*"status":"assigned"'
REG_ETAG=$(field etag)
expect_eq "the record's ETag header is its etag" "\"$REG_ETAG\"" "$(header ETag)"
call "$DPS" POST /registrations/g-sym/query -d '{"query":"*"}'
expect_call "the group's registration query lists sdev1" 200 '^\[\{"registrationId":"sdev1".*"enrollmentGroupId":"g-sym"'
expect_eq "the registration query has x-ms-item-type deviceRegistration" deviceRegistration "$(header x-ms-item-type)"
call "$DPS" POST /registrations/g-x509/query -d '{"query":"*"}'
expect_call "another group's registration query is empty" 200 '^\[\]$'
call "$REGONLY" POST /registrations/g-sym/query -d '{"query":"*"}'
expect_call "RegistrationStatusRead alone can query a group's records" 200 '"registrationId":"sdev1"'
call "$ENROLLONLY" POST /registrations/g-sym/query -d '{"query":"*"}'
expect_call "a policy without RegistrationStatusRead cannot query records (403)" 403 '.'
call "$REGONLY" DELETE /registrations/sdev1
expect_call "RegistrationStatusRead alone cannot delete a record (403)" 403 '.'
call "$DPS" DELETE /registrations/sdev1 -H 'If-Match: "stale"'
expect_call "DELETE of the record with a stale If-Match is 412" 412 '.'
call "$DPS" DELETE /registrations/sdev1 -H "If-Match: \"$REG_ETAG\""
expect_eq "DELETE of the record answers 204" 204 "$STATUS"
call "$DPS" GET /registrations/sdev1
expect_call "the deleted record is 404" 404 '"errorCode":404001'
call "$HUBOWNER" GET /devices/sdev1
expect_call "deleting the record leaves the hub's device alone" 200 '"deviceId":"sdev1"'

# --- deletes -------------------------------------------------------------------------
call "$DPS" DELETE /enrollmentGroups/g-ca -H "If-Match: \"$ETAG_CA2\""
expect_eq "DELETE with the current If-Match answers 204" 204 "$STATUS"
call "$DPS" GET /enrollmentGroups/g-ca
expect_call "the deleted group is 404" 404 '.'
call "$DPS" DELETE /enrollments/dev1
expect_eq "DELETE without If-Match answers 204" 204 "$STATUS"
call "$DPS" GET /enrollments/dev1
expect_call "the deleted enrollment is 404" 404 '.'
call "$DPS" DELETE /enrollments/dev1
expect_call "deleting it again is 404" 404 '.'
expect_log "the deletes are logged" "event=dps_enrollment_deleted who=provisioningserviceowner .*kind=individual id=dev1"
call "$DPS" POST /enrollments/query -d '{"query":"*"}'
expect_call "the enrollment query is empty after the delete" 200 '^\[\]$'

# --- the bulk operation (POST /enrollments) --------------------------------------------
# bulk MODE ELEMENTS...: the body of a bulk operation on those JSON elements.
bulk() {
    m=$1; shift
    printf '{"mode":"%s","enrollments":[' "$m"
    sep=
    for e in "$@"; do printf '%s%s' "$sep" "$e"; sep=,; done
    printf ']}'
}
# sym ID [STATUS]: a symmetric-key individual enrollment.
sym() { printf '{"registrationId":"%s","attestation":{"type":"symmetricKey"},"provisioningStatus":"%s"}' "$1" "${2:-enabled}"; }
# errors_of: the registrationIds in the last answer's errors, space-separated,
# in order ("-" for an empty one).
errors_of() { printf '%s' "$BODY" | grep -o '"registrationId":"[^"]*"' | sed 's/.*:"\(.*\)"/\1/; s/^$/-/' | tr '\n' ' ' | sed 's/ $//'; }
# error_for ID: the {registrationId, errorCode, errorStatus} entry of ID in BODY.
error_for() { printf '%s' "$BODY" | grep -o "{\"registrationId\":\"$1\"[^}]*}"; }

call "$READER" POST /enrollments -d "$(bulk create "$(sym b1)")"
expect_call "enrollmentRead cannot run a bulk operation (403)" 403 'EnrollmentWrite'
call "$REGONLY" POST /enrollments -d "$(bulk create "$(sym b1)")"
expect_call "RegistrationStatusRead alone cannot run a bulk operation (403)" 403 '.'
call "$HUBOWNER" POST /enrollments -d "$(bulk create "$(sym b1)")"
expect_call "an iothubowner token is refused on the bulk operation (401)" 401 '.'
call "$DPS" GET /enrollments/b1
expect_call "no refused bulk operation created anything" 404 '.'

call "$ENROLLONLY" POST /enrollments -d "$(bulk create "$(sym b1)" "$(sym b2)")"
expect_call "bulk create of two new enrollments succeeds (EnrollmentWrite)" 200 '^\{"isSuccessful":true,"errors":\[\]\}$'
call "$DPS" GET /enrollments/b2
expect_call "the bulk-created b2 exists with generated keys" 200 '"registrationId":"b2".*"primaryKey":"[A-Za-z0-9+/]{43}="'
expect_log "each bulk creation is logged" "event=dps_enrollment_created who=enrollmentsOnly .*kind=individual id=b2"
expect_log "the bulk operation is logged with its counts" "event=dps_bulk_done who=enrollmentsOnly .*mode=create count=2 failed=0"

call "$DPS" POST /enrollments/ -d "$(bulk create "$(sym b2)" "$(sym b3)" '{"registrationId":"Bad-Upper","attestation":{"type":"symmetricKey"}}' '{"registrationId":"b9","attestation":{"type":"tpm"}}' '"b10"')"
expect_call "bulk create with failures answers 200 isSuccessful false" 200 '^\{"isSuccessful":false,"errors":\['
expect_eq "the errors name each failed registrationId in order" "b2 Bad-Upper b9 -" "$(errors_of)"
expect_exit "an existing enrollment is 409 in create mode" 0 '"errorCode":409001,"errorStatus":"[^"]*already exists' error_for b2
expect_exit "an invalid id is 400 with the reason" 0 '"errorCode":400001' error_for Bad-Upper
expect_exit "an unsupported attestation is 400 naming the field" 0 '"errorCode":400001,"errorStatus":"[^"]*attestation.type' error_for b9
expect_exit "an element that is not an object is reported by index" 0 '"registrationId":"","errorCode":400001,"errorStatus":"enrollments\[4\]' printf '%s' "$BODY"
call "$DPS" GET /enrollments/b3
expect_call "the element after a failed one was still created" 200 '"registrationId":"b3"'
ETAG_B3=$(field etag)
expect_log "each failed element is logged" "event=dps_bulk_item_refused who=provisioningserviceowner .*id=b2 status=409 reason=EXISTS"
expect_log "the partial failure is counted" "event=dps_bulk_done .*mode=create count=5 failed=4"

# "a" and 200 two-byte characters: the 256-byte cut falls inside the 128th.
LONGID=a$(i=0; while [ $i -lt 200 ]; do printf 'é'; i=$((i + 1)); done)
call "$DPS" POST /enrollments -d "$(bulk create "$(sym "$LONGID")")"
expect_call "a 401-byte non-ASCII id is echoed cut to 255 bytes, on a character boundary" 200 "\"registrationId\":\"$(printf '%s' "$LONGID" | head -c 255)\",\"errorCode\":400001"
call "$DPS" GET /enrollments/b1
ETAG_B1=$(field etag)
call "$DPS" POST /enrollments -d "$(bulk update "$(sym b1 disabled)" "$(sym b4)")"
expect_call "bulk update replaces b1 and creates b4" 200 '^\{"isSuccessful":true,"errors":\[\]\}$'
call "$DPS" GET /enrollments/b1
expect_call "b1 was replaced (now disabled)" 200 '"provisioningStatus":"disabled"'
ETAG_B1_2=$(field etag)
if [ -n "$ETAG_B1_2" ] && [ "$ETAG_B1_2" != "$ETAG_B1" ]; then pass "the bulk update changed b1's etag"; else fail "the bulk update changed b1's etag" "$ETAG_B1 -> $ETAG_B1_2"; fi
call "$DPS" GET /enrollments/b4
expect_call "update mode created the missing b4" 200 '"registrationId":"b4"'
expect_log "the bulk update is logged as an update" "event=dps_enrollment_updated who=provisioningserviceowner .*id=b1"

# with_etag ELEMENT ETAG: the element with "etag" added (etags hold '/').
with_etag() { printf '{"etag":"%s",%s' "$2" "${1#\{}"; }
call "$DPS" POST /enrollments -d "$(bulk updateIfMatchETag "$(with_etag "$(sym b1)" "$ETAG_B1_2")" "$(with_etag "$(sym b3 disabled)" "$ETAG_B1")" "$(sym b4 disabled)" "$(with_etag "$(sym b5)" "$ETAG_B1_2")")"
expect_call "updateIfMatchETag with stale, missing and unknown etags answers 200 isSuccessful false" 200 '"isSuccessful":false'
expect_eq "updateIfMatchETag refuses b3, b4 and b5 only" "b3 b4 b5" "$(errors_of)"
expect_exit "a stale etag is 412" 0 '"errorCode":412001' error_for b3
expect_exit "a missing etag is 400" 0 '"errorCode":400001,"errorStatus":"[^"]*etag' error_for b4
expect_exit "an etag for a missing enrollment is 412" 0 '"errorCode":412001' error_for b5
call "$DPS" GET /enrollments/b1
expect_call "the matching etag replaced b1 (enabled again)" 200 '"provisioningStatus":"enabled"'
ETAG_B1_3=$(field etag)
call "$DPS" GET /enrollments/b3
expect_call "the stale etag left b3 unchanged" 200 '"provisioningStatus":"enabled"'
call "$DPS" GET /enrollments/b5
expect_call "updateIfMatchETag did not create b5" 404 '.'
call "$DPS" POST /enrollments -d "$(bulk updateIfMatchEtag "{\"etag\":\"\\\"$ETAG_B3\\\"\",\"registrationId\":\"b3\",\"attestation\":{\"type\":\"symmetricKey\"}}")"
expect_call "the mode matches case-insensitively (Node's updateIfMatchEtag) and a quoted etag matches" 200 '"isSuccessful":true'

call "$DPS" POST /enrollments -d "$(bulk delete "$(with_etag '{"registrationId":"b1"}' "$ETAG_B1")" '{"registrationId":"b2"}' '{"registrationId":"b404"}')"
expect_call "bulk delete with a stale etag and a missing id answers 200 isSuccessful false" 200 '"isSuccessful":false'
expect_eq "delete refuses b1 (stale etag) and b404" "b1 b404" "$(errors_of)"
expect_exit "the stale etag on delete is 412" 0 '"errorCode":412001' error_for b1
expect_exit "deleting a missing enrollment is 404" 0 '"errorCode":404001' error_for b404
call "$DPS" GET /enrollments/b2
expect_call "b2 (no etag: unconditional) was deleted" 404 '.'
call "$DPS" GET /enrollments/b1
expect_call "b1 (stale etag) was kept" 200 '"registrationId":"b1"'
call "$DPS" POST /enrollments -d "$(bulk delete "$(with_etag '{"registrationId":"b1"}' "$ETAG_B1_3")" '{"registrationId":"b3"}' '{"registrationId":"b4"}')"
expect_call "bulk delete with the current etag deletes the rest" 200 '^\{"isSuccessful":true,"errors":\[\]\}$'
expect_log "each bulk delete is logged" "event=dps_enrollment_deleted who=provisioningserviceowner .*kind=individual id=b4"

many=$(i=0; while [ $i -lt 101 ]; do sym "m$i"; i=$((i + 1)); [ $i -lt 101 ] && printf ','; done)
call "$DPS" POST /enrollments -d "{\"mode\":\"create\",\"enrollments\":[$many]}"
expect_call "101 enrollments in one request are refused whole (400)" 400 '"errorCode":400001.*1 to 100'
call "$DPS" GET /enrollments/m0
expect_call "the refused oversized request created nothing" 404 '.'
call "$DPS" POST /enrollments -d "$(bulk merge "$(sym b1)")"
expect_call "an unknown mode is 400" 400 'mode must be'
call "$DPS" POST /enrollments -d '{"mode":"create","enrollments":[]}'
expect_call "an empty enrollments list is 400" 400 'enrollments must be'
call "$DPS" POST /enrollments -d '{"mode":"create"}'
expect_call "a missing enrollments list is 400" 400 'enrollments must be'
call "$DPS" POST /enrollments -d '{"mode":'
expect_call "a body that is not JSON is 400" 400 'JSON object'
expect_log "a malformed bulk request is logged" "event=api_refused .*status=400 reason=BAD_BULK_MODE"
call "$DPS" GET /enrollments
expect_call "GET on the collection is 405" 405 'not supported'
call "$DPS" POST /enrollmentGroups -d '{"mode":"create","enrollmentGroups":[]}'
expect_call "the groups' bulk operation is not served (405)" 405 'not supported'
call "$DPS" POST /enrollments/query -d '{"query":"*"}'
expect_call "no enrollment is left after the bulk deletes" 200 '^\[\]$'

stop_hub
summary

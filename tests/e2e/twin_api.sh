#!/bin/sh
# End-to-end: device twins over the service API (GET, PATCH, PUT /twins/{id}
# with If-Match), the device query over twins (tags, desired, paging), hubctl
# twin show/update and hubctl method invoke on an offline device, driven by
# curl and hubctl. No device connects here, so reported properties stay empty
# (tests/e2e/device_mqtt.sh covers the device side). Usage: twin_api.sh BUILD_DIR
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
API="api-version=2021-04-12"
HOST=localhost
EXP=$(($(date +%s) + 3600))
TOKEN=$(sas_token "$HOST" iothubowner "$(policy_key iothubowner)" $EXP)
READER=$(sas_token "$HOST" registryRead "$(policy_key registryRead)" $EXP)
SERVICE=$(sas_token "$HOST" serviceConnect "$(policy_key serviceConnect)" $EXP)
curl_api() { curl -sS --cacert "$HUB_CAFILE" --resolve "localhost:$HUB_PORT:127.0.0.1" "$@"; }

# api METHOD PATH [curl args...]: the body, a space and the status code.
api() {
    m=$1; p=$2; shift 2
    curl_api -w ' %{http_code}' -X "$m" -H "Authorization: $TOKEN" "$@" "$BASE$p?$API"
}
# expect_absent NAME PATTERN CMD...: CMD must exit 0 and print nothing matching PATTERN.
expect_absent() {
    name=$1; pattern=$2; shift 2
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name" "exit $rc: $out"
    elif printf '%s' "$out" | grep -qE -- "$pattern"; then
        fail "$name" "output matches /$pattern/: $out"
    else
        pass "$name"
    fi
}
# etag_of ID: the twin's ETag header, quotes included.
etag_of() {
    curl_api -o /dev/null -D - -H "Authorization: $TOKEN" "$BASE/twins/$1?$API" |
        sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' | tr -d '\r'
}
# query TEXT [curl args...]: POST /devices/query with headers shown (-i).
query() {
    q=$1; shift
    curl_api -i -X POST -H "Authorization: $TOKEN" -H "Content-Type: application/json" "$@" \
        -d "{\"query\":\"$q\"}" "$BASE/devices/query?$API"
}

for d in t1 t2 t3; do
    expect_ok "create device $d" "$HUBCTL" device create $d --auth ca
done

# --- GET: a new device's twin ------------------------------------------------
expect_exit "GET twin of a new device: 200 with its id" 0 '"deviceId":"t1".* 200$' api GET /twins/t1
expect_exit "a new twin has empty tags" 0 '"tags":\{\}' api GET /twins/t1
expect_exit "a new twin is version 1" 0 '"version":1[,}]' api GET /twins/t1
expect_exit "new desired and reported sections are \$version 1" 0 \
    '"desired":\{.*"\$version":1.*"reported":\{.*"\$version":1' api GET /twins/t1
expect_exit "the twin names its authentication type" 0 '"authenticationType":"certificateAuthority"' \
    api GET /twins/t1
expect_exit "GET answers a quoted ETag header" 0 '^[Ee][Tt][Aa][Gg]: "[^"]+"' \
    curl_api -i -H "Authorization: $TOKEN" "$BASE/twins/t1?$API"
expect_exit "GET twin of an unknown device: 404 DeviceNotFound" 0 'DeviceNotFound.* 404$' \
    api GET /twins/nosuch

# --- PATCH: merge, If-Match ---------------------------------------------------
E1=$(etag_of t1)
# Compared as text: base64 etags hold '+' and '/', which a regex would misread.
BODY_ETAG=$(api GET /twins/t1 | sed -n 's/^{"deviceId":"[^"]*","etag":\("[^"]*"\).*/\1/p')
expect_eq "the ETag header equals the body's etag" "$E1" "$BODY_ETAG"
PATCH1='{"tags":{"site":"lab","floor":3},"properties":{"desired":{"fw":"1.0","cfg":{"rate":5,"mode":"fast"}}}}'
expect_exit "PATCH tags + desired with the current etag: 200" 0 '"site":"lab".* 200$' \
    api PATCH /twins/t1 -H "If-Match: $E1" -d "$PATCH1"
expect_exit "the answer is the whole twin, desired at \$version 2" 0 \
    '"desired":\{.*"fw":"1.0".*"\$version":2' api GET /twins/t1
expect_exit "the twin is version 2" 0 '"version":2[,}]' api GET /twins/t1
expect_exit "desired metadata records the change" 0 '"\$metadata":\{.*"\$lastUpdated":"[0-9]{4}-' \
    api GET /twins/t1
E2=$(etag_of t1)
[ "$E1" != "$E2" ] && pass "a patch changes the etag" || fail "a patch changes the etag" "$E1 = $E2"
expect_exit "PATCH with a stale etag: 412 PreconditionFailed" 0 'PreconditionFailed.* 412$' \
    api PATCH /twins/t1 -H "If-Match: $E1" -d '{"tags":{"site":"stale"}}'
expect_exit "the refused patch changed nothing" 0 '"site":"lab"' api GET /twins/t1
expect_exit "PATCH with If-Match \"*\": unconditional" 0 '"owner":"ops".* 200$' \
    api PATCH /twins/t1 -H 'If-Match: "*"' -d '{"tags":{"owner":"ops"}}'
expect_exit "PATCH without If-Match: unconditional (documented)" 0 '"owner":"qa".* 200$' \
    api PATCH /twins/t1 -d '{"tags":{"owner":"qa"}}'
expect_exit "null deletes a desired property, siblings stay" 0 '"cfg":\{"rate":5\}.* 200$' \
    api PATCH /twins/t1 -d '{"properties":{"desired":{"cfg":{"mode":null}}}}'
expect_exit "null deletes a tag" 0 '"tags":\{"site":"lab","floor":3\}' \
    api PATCH /twins/t1 -d '{"tags":{"owner":null}}'

# --- PATCH refusals ------------------------------------------------------------
expect_exit "reported properties in a service patch: 400" 0 'reported.* 400$' \
    api PATCH /twins/t1 -d '{"properties":{"reported":{"temp":20}}}'
expect_exit "a GET's twin sent back as a patch is accepted (read-only fields ignored)" 0 ' 200$' \
    sh -c "curl -sS --cacert '$HUB_CAFILE' --resolve 'localhost:$HUB_PORT:127.0.0.1' -H 'Authorization: $TOKEN' '$BASE/twins/t2?$API' >t2.json &&
           curl -sS --cacert '$HUB_CAFILE' --resolve 'localhost:$HUB_PORT:127.0.0.1' -w ' %{http_code}' -X PATCH -H 'Authorization: $TOKEN' --data-binary @t2.json '$BASE/twins/t2?$API'"
expect_exit "malformed JSON: 400" 0 'ArgumentInvalid.* 400$' api PATCH /twins/t1 -d '{"tags":'
expect_exit "empty body: 400" 0 ' 400$' api PATCH /twins/t1
expect_exit "a key with '.': 400 naming it" 0 'a\.b.* 400$' api PATCH /twins/t1 -d '{"tags":{"a.b":1}}'
expect_exit "tags nested deeper than 5 levels: 400" 0 ' 400$' \
    api PATCH /twins/t1 -d '{"tags":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}'
S4000=$(head -c 4000 /dev/zero | tr '\0' 'x')
printf '{"tags":{"a":"%s","b":"%s","c":"%s"}}' "$S4000" "$S4000" "$S4000" >bigtags.json
expect_exit "tags over 8 KiB: 413 with the limit in the message" 0 '8192.* 413$' \
    api PATCH /twins/t1 --data-binary @bigtags.json
expect_exit "PATCH on an unknown device: 404" 0 'DeviceNotFound.* 404$' \
    api PATCH /twins/nosuch -d '{"tags":{"a":1}}'
expect_exit "DELETE /twins/{id}: 405" 0 ' 405$' api DELETE /twins/t1
expect_exit "the refused patches left the twin as it was" 0 '"tags":\{"site":"lab","floor":3\}' \
    api GET /twins/t1

# --- PUT: replace -----------------------------------------------------------------
E3=$(etag_of t1)
expect_exit "PUT replaces tags and desired: 200" 0 '"tags":\{"site":"plant"\}.* 200$' \
    api PUT /twins/t1 -H "If-Match: $E3" -d '{"tags":{"site":"plant"},"properties":{"desired":{"fw":"2.0"}}}'
expect_exit "replaced desired has only the new property" 0 '"desired":\{"fw":"2.0",' api GET /twins/t1
expect_exit "PUT with the etag before the replace: 412" 0 'PreconditionFailed.* 412$' \
    api PUT /twins/t1 -H "If-Match: $E3" -d '{"tags":{}}'

# --- permissions ----------------------------------------------------------------------
code_of() { curl_api -o /dev/null -w '%{http_code}' "$@"; }
expect_eq "registryRead may GET a twin" 200 "$(code_of -H "Authorization: $READER" "$BASE/twins/t1?$API")"
expect_eq "registryRead may not PATCH a twin: 403" 403 \
    "$(code_of -X PATCH -H "Authorization: $READER" -d '{"tags":{"x":1}}' "$BASE/twins/t1?$API")"
expect_eq "serviceConnect may GET a twin" 200 "$(code_of -H "Authorization: $SERVICE" "$BASE/twins/t1?$API")"
expect_eq "serviceConnect may PATCH a twin" 200 \
    "$(code_of -X PATCH -H "Authorization: $SERVICE" -d '{"tags":{"svc":1}}' "$BASE/twins/t1?$API")"
expect_eq "no token: 401" 401 "$(code_of "$BASE/twins/t1?$API")"

# --- query -----------------------------------------------------------------------------------
api PATCH /twins/t2 -d '{"tags":{"site":"lab","group":"g"}}' >/dev/null
api PATCH /twins/t3 -d '{"tags":{"group":"g"},"properties":{"desired":{"fw":"1.0"}}}' >/dev/null
api PATCH /twins/t1 -d '{"tags":{"group":"g"}}' >/dev/null
expect_exit "query by tags" 0 '"deviceId":"t2"' query "SELECT * FROM devices WHERE tags.site = 'lab'"
expect_absent "the tags query finds nothing else" '"deviceId":"t[13]"' \
    query "SELECT * FROM devices WHERE tags.site = 'lab'"
expect_exit "query by properties.desired" 0 '"deviceId":"t1"' \
    query "SELECT * FROM devices WHERE properties.desired.fw = '2.0'"
expect_absent "the desired query finds nothing else" '"deviceId":"t[23]"' \
    query "SELECT * FROM devices WHERE properties.desired.fw = '2.0'"
expect_exit "query items are twins" 0 '"tags":\{"site":"lab","group":"g"\}' \
    query "SELECT * FROM devices WHERE tags.site = 'lab'"
expect_exit "query answers x-ms-item-type: Twin" 0 '^x-ms-item-type: Twin' \
    query "SELECT * FROM devices WHERE tags.site = 'lab'"
Q3="SELECT * FROM devices WHERE tags.group IN ['g'] AND NOT IS_DEFINED(tags.site) AND (properties.desired.fw = '1.0' OR tags.x = 1)"
expect_exit "IN, OR, NOT and IS_DEFINED work" 0 '"deviceId":"t3"' query "$Q3"
expect_absent "... and find only t3" '"deviceId":"t[12]"' query "$Q3"
expect_exit "registry fields still query (status)" 0 '"deviceId":"t1"' \
    query "SELECT * FROM devices WHERE status = 'enabled' AND authenticationType = 'certificateAuthority'"
expect_exit "a malformed query: 400 naming the column" 0 'query error at column 8' \
    query "SELECT % FROM devices"
expect_exit "a bad WHERE: 400 naming the column" 0 'query error at column [0-9]+' \
    query "SELECT * FROM devices WHERE tags.site = = 'x'"
P1=$(query "SELECT * FROM devices WHERE tags.group = 'g'" -H "x-ms-max-item-count: 2")
expect_exit "filtered paging: page 1 holds 2" 0 '"deviceId":"t1".*"deviceId":"t2"' printf '%s' "$P1"
TOKEN2=$(printf '%s' "$P1" | sed -n 's/^x-ms-continuation: *//p' | tr -d '\r')
[ -n "$TOKEN2" ] && pass "filtered paging: page 1 has a continuation" ||
    fail "filtered paging: page 1 has a continuation" "$P1"
P2=$(query "SELECT * FROM devices WHERE tags.group = 'g'" -H "x-ms-max-item-count: 2" -H "x-ms-continuation: $TOKEN2")
expect_exit "filtered paging: page 2 holds t3" 0 '"deviceId":"t3"' printf '%s' "$P2"
expect_absent "filtered paging: page 2 has no t1" '"deviceId":"t1"' printf '%s' "$P2"
expect_absent "filtered paging: the last page has no continuation" 'x-ms-continuation' printf '%s' "$P2"
expect_exit "a forged continuation: 400" 0 'HTTP/1.1 400' \
    query "SELECT * FROM devices" -H "x-ms-continuation: nothex"

# --- hubctl twin ---------------------------------------------------------------------------
expect_exit "hubctl twin show: tags and desired with versions" 0 'desired \(\$version [0-9]+\):' \
    "$HUBCTL" twin show t1
expect_exit "hubctl twin show: reported with its version" 0 'reported \(\$version 1\):' \
    "$HUBCTL" twin show t1
expect_exit "hubctl twin show --json: the API's twin" 0 '"deviceId": "t1"' "$HUBCTL" twin show t1 --json
expect_exit "hubctl twin update --desired merges" 0 '"fw": "2.0"' \
    "$HUBCTL" --json twin update t1 --desired '{"mode":"eco"}'
expect_exit "hubctl twin update --desired kept fw" 0 '"mode": "eco"' "$HUBCTL" --json twin show t1
expect_exit "hubctl twin update --tags, human output" 0 '"room": "b1"' \
    "$HUBCTL" twin update t1 --tags '{"room":"b1"}'
expect_ok "hubctl twin update --replace --desired" "$HUBCTL" twin update t1 --replace --desired '{"only":true}'
expect_absent "--replace replaced desired" '"mode"' "$HUBCTL" --json twin show t1
expect_exit "--replace kept the tags it was not given" 0 '"room": "b1"' "$HUBCTL" --json twin show t1
expect_exit "hubctl twin update of an unknown device: exit 1" 1 'DeviceNotFound' \
    "$HUBCTL" twin update nosuch --tags '{"a":1}'
expect_exit "hubctl twin update with bad JSON: exit 2" 2 'not JSON' \
    "$HUBCTL" twin update t1 --desired '{nope'
expect_exit "hubctl twin update without a change: exit 2" 2 'needs --desired' "$HUBCTL" twin update t1
expect_exit "hubctl twin update over the limit: exit 1 with the reason" 1 '413' \
    "$HUBCTL" twin update t1 --tags "$(cat bigtags.json | sed 's/^{"tags"://; s/}$//')"
expect_exit "hubctl twin --help" 0 'twin COMMAND' "$HUBCTL" twin --help

# --- hubctl method -----------------------------------------------------------------
expect_exit "method invoke on an offline device: 404 DeviceNotOnline, exit 1" 1 'DeviceNotOnline' \
    "$HUBCTL" method invoke t1 reboot '{"delay":1}' --timeout 5
expect_exit "method invoke on an unknown device: exit 1" 1 '404' \
    "$HUBCTL" method invoke nosuch reboot
expect_exit "method invoke with a bad payload: exit 2" 2 'not JSON' \
    "$HUBCTL" method invoke t1 reboot '{nope'
expect_exit "method invoke --help" 0 'invoke ID NAME' "$HUBCTL" method invoke --help

# --- a re-created device does not match its old etag ----------------------------------
E4=$(etag_of t3)
"$HUBCTL" device delete t3 >/dev/null && "$HUBCTL" device create t3 --auth ca >/dev/null
expect_exit "the re-created device's twin is new" 0 '"tags":\{\}' api GET /twins/t3
expect_exit "the old device's twin etag: 412" 0 ' 412$' api PATCH /twins/t3 -H "If-Match: $E4" -d '{"tags":{"a":1}}'

stop_hub
summary

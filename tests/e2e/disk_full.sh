#!/bin/sh
# End-to-end: the data dir fills up (issue 6 §4). The hub's data dir is a
# small tmpfs; once a filler file has taken every free block, writes must fail
# cleanly (a QoS 1 publish gets no PUBACK, the service API answers 503
# ServiceUnavailable and logs it), reads keep working (200), nothing
# acknowledged before is lost, and deleting the filler lets the same hub
# accept writes again without a restart. Then the read-only variant: a hub
# started on a read-only data dir refuses with a clear message, and starts
# once the mount is writable again, everything still there.
#
# Why not make the dir read-only under a running hub: Linux refuses a
# read-only remount (EBUSY) while a process holds files on it open for
# writing, which the hub always does with its database.
# Needs root (mount); without it the test is skipped. Usage: disk_full.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
NAME=$(basename "$0" .sh)

if [ "$(id -u)" -ne 0 ]; then
    echo "$NAME: skipped: needs root to mount a tmpfs for the data dir"
    exit 0
fi
HUB_E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hubd-e2e.XXXXXX")
MNT=$HUB_E2E_DIR/data
mkdir -m 0700 "$MNT"
if ! mount -t tmpfs -o size=8m,mode=0700 tmpfs "$MNT"; then
    echo "$NAME: skipped: cannot mount a tmpfs here (no CAP_SYS_ADMIN?)"
    rm -rf "$HUB_E2E_DIR"
    exit 0
fi
cleanup() {
    if [ -n "$HUB_PID" ]; then kill -KILL "$HUB_PID" 2>/dev/null; wait "$HUB_PID" 2>/dev/null; fi
    HUB_PID=""
    # The mount must go before cleanup_hub removes the directory under it.
    umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    cleanup_hub
}
trap cleanup EXIT INT TERM

start_hub
DB=$MNT/hubd.db
PKI=$HUB_DIR/pki # not on the tmpfs: the test's own files must not take its space
mkdir -p "$PKI"
cd "$PKI" || exit 1
q() { "$@" >/dev/null 2>&1; }
BASE="https://localhost:$HUB_PORT"
API="api-version=2021-04-12"
TOKEN=$(sas_token localhost iothubowner "$(policy_key iothubowner)" $(($(date +%s) + 3600)))
# code METHOD PATH [curl args...]: the HTTP status, the body in last.body.
code() {
    m=$1 p=$2
    shift 2
    curl -sS --cacert "$HUB_CAFILE" --resolve "localhost:$HUB_PORT:127.0.0.1" -o last.body \
        -D last.headers -w '%{http_code}' -X "$m" -H "Authorization: $TOKEN" "$@" "$BASE$p?$API"
}
create_body() { printf '{"deviceId":"%s","authentication":{"type":"certificateAuthority"}}' "$1"; }

q "$HUBCTL" cert root --out root --subject "Disk Root CA"
q "$HUBCTL" cert device --out t1 --device-id t1 --issuer-cert root.pem --issuer-key root.key
q "$HUBCTL" ca upload diskca root.pem
CODE=$("$HUBCTL" ca code diskca)
q "$HUBCTL" cert verification --out pop --code "$CODE" --issuer-cert root.pem --issuer-key root.key
expect_ok "CA verified" "$HUBCTL" ca verify diskca pop.pem
expect_ok "device t1 created" "$HUBCTL" device create t1 --auth ca
expect_ok "device c2dq created" "$HUBCTL" device create c2dq --auth ca

MQTT="-h 127.0.0.1 -p $HUB_MQTT_PORT --cafile $HUB_CAFILE -V mqttv311"
publish() { # PAYLOAD: exits 0 only once the hub sent the PUBACK
    # shellcheck disable=SC2086
    timeout 15 mosquitto_pub $MQTT --cert t1-chain.pem --key t1.key -i t1 \
        -u "localhost/t1/?api-version=2021-04-12" -t devices/t1/messages/events/ -q 1 -m "$1"
}
stored_bodies() { # every telemetry body in the store, one a line, sorted
    "$HUBCTL" --json monitor --count 10000000 --timeout 3 2>/dev/null |
        sed -n 's/.*"body": *"\([^"]*\)".*/\1/p' | sort
}
c2d_count() {
    "$HUBCTL" --json device show c2dq | sed -n 's/.*"cloudToDeviceMessageCount": *\([0-9]*\).*/\1/p'
}

# --- acknowledged before the disk fills ----------------------------------------------
: >acked
i=0
while [ $i -lt 10 ]; do
    i=$((i + 1))
    publish "before-$i" >/dev/null 2>&1 && echo "before-$i" >>acked
done
expect_eq "10 messages acknowledged before the disk fills" 10 "$(wc -l <acked | tr -d ' ')"
for d in keep-1 keep-2 keep-3; do q "$HUBCTL" device create $d --auth ca; done
q "$HUBCTL" device update keep-2 --status disabled
for i in 1 2 3; do q "$HUBCTL" c2d send c2dq "queued $i" --message-id "q-$i"; done
# A twin row is written on its first read, so read t1's now: the check below
# is about reading a stored twin while the disk is full.
expect_eq "GET t1's twin before the disk fills" 200 "$(code GET /twins/t1)"
expect_eq "3 C2D messages queued" 3 "$(c2d_count)"

# --- fill the disk ---------------------------------------------------------------------
# A checkpoint that truncates the WAL first: SQLite reuses a WAL file's
# blocks after a checkpoint, so without it the first writes would still fit
# in space the WAL already holds. Retried: the hub may be writing just then.
i=0
until [ "$(sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE)' 2>/dev/null)" = "0|0|0" ] || [ $i -ge 20 ]; do
    sleep 0.2
    i=$((i + 1))
done
expect_eq "the WAL was checkpointed and truncated" 0 "$(stat -c %s "$DB-wal")"
dd if=/dev/zero of="$MNT/filler" bs=4096 >/dev/null 2>&1 # stops at ENOSPC
expect_eq "the data dir is full" 0 "$(df --output=avail "$MNT" | tail -1 | tr -d ' ')"

# --- writes fail cleanly ------------------------------------------------------------------
expect_exit "a QoS 1 publish gets no PUBACK" 7 "connection was lost" publish during-1
expect_log "the failed commit is logged with its reason" \
    "event=disconnected.*device=t1.*reason=COMMIT_FAILED.*no PUBACK"
expect_eq "device create answers 503" 503 "$(code PUT /devices/full-1 -H 'Content-Type: application/json' \
    -d "$(create_body full-1)")"
expect_exit "with Azure's error code header" 0 "iothub-errorcode: ServiceUnavailable" cat last.headers
expect_exit "and Azure's error body" 0 '"Message":"ErrorCode:ServiceUnavailable;.*full' cat last.body
expect_log "the 503 is logged with the store's reason" \
    "level=error event=api_refused.*uri=\"/devices/full-1.*status=503 reason=IO"
expect_exit "hubctl device create reports the 503" 1 "503 ServiceUnavailable" \
    "$HUBCTL" device create full-2 --auth ca
expect_exit "hubctl device update reports the 503" 1 "503 ServiceUnavailable" \
    "$HUBCTL" device update keep-1 --status disabled
expect_exit "C2D send answers 503" 1 "503 ServiceUnavailable" "$HUBCTL" c2d send c2dq "lost"
expect_exit "a second publish gets no PUBACK either" 7 "connection was lost" publish during-2

# --- reads keep working -----------------------------------------------------------------------
expect_eq "GET a device: 200" 200 "$(code GET /devices/keep-2)"
expect_exit "the device is as it was" 0 '"status":"disabled"' cat last.body
expect_eq "GET /certificates: 200" 200 "$(code GET /certificates)"
expect_exit "the CA is listed" 0 '"name":"diskca"' cat last.body
expect_eq "GET a stored twin: 200" 200 "$(code GET /twins/t1)"
expect_eq "the C2D queue still holds 3" 3 "$(c2d_count)"
expect_eq "full-1 was not created" 404 "$(code GET /devices/full-1)"
stored_bodies >stored.full
expect_eq "every acknowledged message is readable while the disk is full" "" \
    "$(sort acked | comm -23 - stored.full)"
expect_eq "the unacknowledged messages were not stored" "" "$(grep during stored.full)"
expect_ok "the hub is still running" kill -0 "$HUB_PID"

# --- space returns: the same hub recovers -----------------------------------------------------
PID_BEFORE=$HUB_PID
rm -f "$MNT/filler"
expect_ok "a publish is acknowledged again" publish after-1
echo after-1 >>acked
expect_eq "device create succeeds again" 200 "$(code PUT /devices/full-1 -H 'Content-Type: application/json' \
    -d "$(create_body full-1)")"
expect_ok "device update succeeds again" "$HUBCTL" device update keep-1 --status disabled
expect_ok "C2D send succeeds again" "$HUBCTL" c2d send c2dq "after" --message-id q-4
expect_eq "without a restart" "$PID_BEFORE" "$HUB_PID"
expect_ok "the hub process is the same one" kill -0 "$PID_BEFORE"
stored_bodies >stored.after
expect_eq "every acknowledged message is stored" "" "$(sort acked | comm -23 - stored.after)"
expect_eq "none twice" "" "$(uniq -d stored.after)"
expect_eq "the C2D queue holds 4" 4 "$(c2d_count)"
expect_exit "keep-2 kept its status" 0 "status: +disabled" "$HUBCTL" device show keep-2
expect_exit "integrity_check ok" 0 '^ok$' sqlite3 "$DB" 'PRAGMA integrity_check'

# --- read-only data dir -------------------------------------------------------------------------
stop_hub
expect_ok "remount the data dir read-only" mount -o remount,ro "$MNT"
expect_exit "hubd on a read-only data dir refuses to start, saying why" 1 "Read-only file system" \
    timeout 30 "$HUBD" $HUB_ARGS
expect_ok "remount it read-write" mount -o remount,rw "$MNT"
n=$(date +%s%N)
# shellcheck disable=SC2086
"$HUBD" $HUB_ARGS >"$HUB_DIR/hubd.$n.out" 2>>"$HUB_DIR/hubd.log" &
HUB_PID=$!
wait_ready "$HUB_DIR/hubd.$n.out"
pass "hubd starts once the data dir is writable"
stored_bodies >stored.ro
expect_eq "every acknowledged message is still stored" "" "$(sort acked | comm -23 - stored.ro)"
expect_eq "the C2D queue still holds 4" 4 "$(c2d_count)"
expect_ok "a publish is acknowledged" publish after-ro
stop_hub
summary

# Shared helpers for the end-to-end tests: start and stop a hubd on a
# temporary data dir (by pid), assertions that count, and a summary line.
# Source it; set HUBD and HUBCTL to the binaries first.

PASSED=0
FAILED=0
HUB_PID=""

pass() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '     %s\n' "$2"; }

# expect_ok NAME CMD...: CMD must exit 0.
expect_ok() {
    name=$1; shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "exit $?: $out"; fi
    LAST_OUT=$out
}

# expect_exit NAME CODE PATTERN CMD...: CMD must exit CODE and print something matching PATTERN.
expect_exit() {
    name=$1; code=$2; pattern=$3; shift 3
    out=$("$@" 2>&1); rc=$?
    LAST_OUT=$out
    if [ "$rc" -ne "$code" ]; then
        fail "$name" "exit $rc, wanted $code: $out"
    elif ! printf '%s' "$out" | grep -qE -- "$pattern"; then
        fail "$name" "output does not match /$pattern/: $out"
    else
        pass "$name"
    fi
}

# expect_eq NAME WANT GOT
expect_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "wanted '$2', got '$3'"; fi
}

# expect_log NAME PATTERN: the hub's log has a line matching PATTERN.
expect_log() {
    if grep -qE -- "$2" "$HUB_DIR/hubd.log"; then pass "$1"; else fail "$1" "no log line /$2/"; fi
}

# Ports: the real ones as root (the Azure SDKs' HTTPS clients only use 443),
# high ones otherwise.
choose_ports() {
    if [ "$(id -u)" -eq 0 ]; then
        HUB_HTTPS_PORT=${HUB_HTTPS_PORT:-443}
        HUB_MQTT_PORT=${HUB_MQTT_PORT:-8883}
        HUB_DPS_MQTT_PORT=${HUB_DPS_MQTT_PORT:-8884}
    else
        HUB_HTTPS_PORT=${HUB_HTTPS_PORT:-$((20000 + $$ % 20000))}
        HUB_MQTT_PORT=${HUB_MQTT_PORT:-$((HUB_HTTPS_PORT + 1))}
        HUB_DPS_MQTT_PORT=${HUB_DPS_MQTT_PORT:-$((HUB_HTTPS_PORT + 2))}
    fi
}

# start_hub [extra hubd args...]: runs hubd on a fresh data dir, waits for
# "hubd: ready", exports HUB_CONNECTION_STRING, HUB_CAFILE, HUB_PORT and, for
# the provisioning service, HUB_DPS_CONNECTION_STRING and HUB_DPS_ID_SCOPE.
# Optional: HUB_E2E_DIR (a directory the test made, removed at cleanup) is
# used instead of a new temporary one, for a test that mounts on its data/
# first; HUBD_WRAPPER is put in front of hubd (valgrind); HUB_READY_TIMEOUT_S
# bounds the wait for "ready" (default 10).
start_hub() {
    choose_ports
    HUB_DIR=${HUB_E2E_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/hubd-e2e.XXXXXX")}
    HUB_ARGS="--data-dir $HUB_DIR/data --listen 127.0.0.1 --https-port $HUB_HTTPS_PORT --mqtt-port $HUB_MQTT_PORT --dps-mqtt-port $HUB_DPS_MQTT_PORT --threads 2 --log-level debug $*"
    # shellcheck disable=SC2086
    ${HUBD_WRAPPER:-} "$HUBD" $HUB_ARGS >"$HUB_DIR/hubd.out" 2>"$HUB_DIR/hubd.log" &
    HUB_PID=$!
    wait_ready "$HUB_DIR/hubd.out"
    HUB_CONNECTION_STRING=$(sed -n 's/^  connection string: *//p' "$HUB_DIR/hubd.out")
    HUB_CAFILE=$(sed -n 's/^  hub CA (trust it): *//p' "$HUB_DIR/hubd.out")
    HUB_DPS_CONNECTION_STRING=$(sed -n 's/^  DPS connection:  *//p' "$HUB_DIR/hubd.out")
    HUB_DPS_ID_SCOPE=$(sed -n 's/^  DPS (MQTT\/TLS): .*idScope=//p' "$HUB_DIR/hubd.out")
    HUB_PORT=$HUB_HTTPS_PORT
    export HUB_CONNECTION_STRING HUB_CAFILE HUB_PORT HUB_DPS_CONNECTION_STRING HUB_DPS_ID_SCOPE HUB_DPS_MQTT_PORT
}

# restart_hub [--kill]: stops the hub (SIGTERM, or SIGKILL with --kill) and
# starts it again on the same data dir and ports.
restart_hub() {
    if [ "${1:-}" = "--kill" ]; then
        kill -KILL "$HUB_PID"; wait "$HUB_PID" 2>/dev/null
    else
        kill -TERM "$HUB_PID"; wait "$HUB_PID"
    fi
    n=$(date +%s%N)
    # shellcheck disable=SC2086
    ${HUBD_WRAPPER:-} "$HUBD" $HUB_ARGS >"$HUB_DIR/hubd.$n.out" 2>>"$HUB_DIR/hubd.log" &
    HUB_PID=$!
    wait_ready "$HUB_DIR/hubd.$n.out"
}

wait_ready() {
    i=0
    while ! grep -q '^hubd: ready' "$1" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt $((${HUB_READY_TIMEOUT_S:-10} * 10)) ] || ! kill -0 "$HUB_PID" 2>/dev/null; then
            echo "hubd did not start:"; cat "$1" "$HUB_DIR/hubd.log"
            exit 1
        fi
        sleep 0.1
    done
}

# stop_hub: SIGTERM by pid; the hub must exit 0.
stop_hub() {
    [ -n "$HUB_PID" ] || return 0
    kill -TERM "$HUB_PID" 2>/dev/null
    wait "$HUB_PID"
    rc=$?
    HUB_PID=""
    expect_eq "hubd exits 0 on SIGTERM" 0 "$rc"
}

cleanup_hub() {
    if [ -n "$HUB_PID" ]; then kill -KILL "$HUB_PID" 2>/dev/null; wait "$HUB_PID" 2>/dev/null; fi
    [ -n "${HUB_DIR:-}" ] && [ -z "${KEEP_HUB_DIR:-}" ] && rm -rf "$HUB_DIR"
}

# policy_key NAME: a policy's primary key from the hub's policies file.
policy_key() {
    awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$HUB_DIR/data/policies"
}

# sas_token HOST KEYNAME KEY EXPIRY: a service SAS token signed with the openssl CLI
# (an implementation independent of hubd's).
sas_token() {
    sr=$1; skn=$2; key=$3; se=$4
    hexkey=$(printf '%s' "$key" | base64 -d | od -An -tx1 | tr -d ' \n')
    sig=$(printf '%s\n%s' "$sr" "$se" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64)
    sig=$(printf '%s' "$sig" | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
    printf 'SharedAccessSignature sr=%s&sig=%s&se=%s&skn=%s' "$sr" "$sig" "$se" "$skn"
}

summary() {
    echo "$(basename "$0" .sh): $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

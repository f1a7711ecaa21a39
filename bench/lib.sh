# Shared by scripts/bench and scripts/bench-smoke: find or build hubbench,
# start and stop hubd and Mosquitto by pid on temporary directories, register
# the benchmark devices, and read hubbench's RESULT lines.
# Source it after setting BUILD (the CMake build dir) and WORK (a temp dir).

HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
HUB_PID=""
MOSQ_PID=""

# hubbench: the tree's target (add_subdirectory(bench)), else bench/ built on its own.
find_hubbench() {
    for b in "${HUBBENCH:-}" "$BUILD/bench/hubbench" "$BUILD/hubbench"; do
        if [ -n "$b" ] && [ -x "$b" ]; then HUBBENCH=$b; return 0; fi
    done
    src=$(cd "$(dirname "$0")/../bench" && pwd)
    echo "hubbench not in $BUILD; building $src on its own into $BUILD/hubbench-build"
    cmake -S "$src" -B "$BUILD/hubbench-build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build "$BUILD/hubbench-build" -j "$(nproc)" >/dev/null || return 1
    HUBBENCH=$BUILD/hubbench-build/hubbench
}

free_port() { # a port nobody listens on, from a pid-derived start
    p=${1:-$((21000 + $$ % 20000))}
    while ss -Htln "sport = :$p" 2>/dev/null | grep -q .; do p=$((p + 1)); done
    echo "$p"
}

# start_hubd THREADS: hubd on $WORK/hub; admission limits off (every
# connection comes from 127.0.0.x, and Mosquitto has no such limits);
# sets HUB_PID, HUB_MQTT_PORT, HUB_HTTPS_PORT,
# HUB_CONNECTION_STRING, HUB_CAFILE, HUB_PORT (hubctl's environment).
start_hubd() {
    HUB_HTTPS_PORT=$(free_port)
    HUB_MQTT_PORT=$(free_port $((HUB_HTTPS_PORT + 1)))
    HUB_DPS_MQTT_PORT=$(free_port $((HUB_MQTT_PORT + 1)))
    mkdir -p "$WORK/hub"
    "$HUBD" --data-dir "$WORK/hub/data" --listen 127.0.0.1 --https-port "$HUB_HTTPS_PORT" \
        --mqtt-port "$HUB_MQTT_PORT" --dps-mqtt-port "$HUB_DPS_MQTT_PORT" --threads "$1" \
        --max-connections 1000000 --max-connections-per-ip 1000000 \
        --connection-rate-per-ip 0 >"$WORK/hub/out" 2>"$WORK/hub/log" &
    HUB_PID=$!
    i=0
    while ! grep -q '^hubd: ready' "$WORK/hub/out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$HUB_PID" 2>/dev/null; then
            echo "hubd did not start:"; cat "$WORK/hub/out" "$WORK/hub/log"
            HUB_PID=""
            return 1
        fi
        sleep 0.1
    done
    HUB_CONNECTION_STRING=$(sed -n 's/^  connection string: *//p' "$WORK/hub/out")
    HUB_CAFILE=$(sed -n 's/^  hub CA (trust it): *//p' "$WORK/hub/out")
    HUB_PORT=$HUB_HTTPS_PORT
    export HUB_CONNECTION_STRING HUB_CAFILE HUB_PORT
}

stop_pid() { # PID: SIGTERM, wait; SIGKILL after 10 s
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

stop_hubd() { stop_pid "$HUB_PID"; HUB_PID=""; }
stop_mosquitto() { stop_pid "$MOSQ_PID"; MOSQ_PID=""; }

# register_devices PKI N: the PKI's root as a verified CA (upload, proof of
# possession with hubctl), then dev-00001..N as certificateAuthority devices,
# PUT in parallel by one curl process with a service SAS token (hubctl once
# per device would cost a process and a TLS handshake each).
register_devices() {
    pki=$1; n=$2
    "$HUBCTL" ca upload benchca "$pki/root.pem" >/dev/null || return 1
    code=$("$HUBCTL" ca code benchca) || return 1
    "$HUBCTL" cert verification --out "$WORK/hub/pop" --code "$code" \
        --issuer-cert "$pki/root.pem" --issuer-key "$pki/root.key" >/dev/null || return 1
    "$HUBCTL" ca verify benchca "$WORK/hub/pop.pem" >/dev/null || return 1
    key=$(printf '%s' "$HUB_CONNECTION_STRING" | sed -n 's/.*;SharedAccessKey=\([^;]*\).*/\1/p')
    keyname=$(printf '%s' "$HUB_CONNECTION_STRING" | sed -n 's/.*SharedAccessKeyName=\([^;]*\).*/\1/p')
    se=$(($(date +%s) + 3600))
    hexkey=$(printf '%s' "$key" | base64 -d | od -An -tx1 | tr -d ' \n')
    sig=$(printf 'localhost\n%s' "$se" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary |
        base64 | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
    token="SharedAccessSignature sr=localhost&sig=$sig&se=$se&skn=$keyname"
    awk -v n="$n" -v port="$HUB_HTTPS_PORT" -v ca="$HUB_CAFILE" -v tok="$token" 'BEGIN {
        for (i = 1; i <= n; i++) {
            id = sprintf("dev-%05d", i)
            if (i > 1) print "next"
            printf "url = \"https://localhost:%s/devices/%s?api-version=2021-04-12\"\n", port, id
            print "request = \"PUT\""
            printf "cacert = \"%s\"\n", ca
            printf "resolve = \"localhost:%s:127.0.0.1\"\n", port
            printf "header = \"Authorization: %s\"\n", tok
            print "header = \"Content-Type: application/json\""
            printf "data = \"{\\\"deviceId\\\":\\\"%s\\\",\\\"status\\\":\\\"enabled\\\",", id
            print "\\\"authentication\\\":{\\\"type\\\":\\\"certificateAuthority\\\"}}\""
            print "output = \"/dev/null\""
            print "write-out = \"%{http_code}\\n\""
            print "silent"
        }
    }' >"$WORK/hub/devices.curl"
    curl -s --no-progress-meter -Z --parallel-max 32 -K "$WORK/hub/devices.curl" >"$WORK/hub/devices.codes"
    ok=$(grep -c '^200$' "$WORK/hub/devices.codes")
    if [ "$ok" -ne "$n" ]; then
        echo "registering devices: $ok of $n created; codes:"; sort "$WORK/hub/devices.codes" | uniq -c
        return 1
    fi
}

# start_mosquitto PKI: Debian's mosquitto on a high port with the same root,
# a server certificate of the same key type as hubd's (EC P-256), and device
# certificates required, their CN as the username. Sets MOSQ_PID, MOSQ_PORT.
start_mosquitto() {
    pki=$1
    MOSQ_PORT=$(free_port $((HUB_MQTT_PORT + 7)))
    mkdir -p "$WORK/mosq"
    cat >"$WORK/mosq/mosquitto.conf" <<EOF
user $(id -un)
per_listener_settings false
persistence false
allow_anonymous false
connection_messages false
max_keepalive 65535
log_dest stderr
log_type error
log_type warning
listener $MOSQ_PORT 127.0.0.1
cafile $pki/ca-chain.pem
certfile $pki/server.pem
keyfile $pki/server.key
require_certificate true
use_identity_as_username true
EOF
    mosquitto -c "$WORK/mosq/mosquitto.conf" >"$WORK/mosq/log" 2>&1 &
    MOSQ_PID=$!
    i=0
    while ! ss -Htln "sport = :$MOSQ_PORT" 2>/dev/null | grep -q .; do
        i=$((i + 1))
        if [ $i -gt 50 ] || ! kill -0 "$MOSQ_PID" 2>/dev/null; then
            echo "mosquitto did not start:"; cat "$WORK/mosq/log"
            MOSQ_PID=""
            return 1
        fi
        sleep 0.1
    done
}

# result FILE KEY: one key=value from the RESULT line hubbench wrote into FILE.
result() {
    sed -n "s/^RESULT .* $2=\([^ ]*\).*/\1/p" "$1" 2>/dev/null | tail -1
}

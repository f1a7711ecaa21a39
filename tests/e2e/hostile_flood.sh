#!/bin/sh
# End-to-end (issue 6 §2 "Connection floods", §5 GET /metrics): a flood of
# TCP connections from 127.0.0.2 against both listeners is cut by the per-IP
# cap and the per-IP rate limit at accept, while an honest device on
# 127.0.0.1 still connects and publishes; every refusal is counted in
# GET /metrics and logged, at most a line per second per address.
# Usage: hostile_flood.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
FLOOD_PID=""
cleanup() {
    [ -n "$FLOOD_PID" ] && kill "$FLOOD_PID" 2>/dev/null
    cleanup_hub
}
trap cleanup EXIT INT TERM

PER_IP=20
start_hub --max-connections-per-ip $PER_IP --connection-rate-per-ip 5 --connection-burst-per-ip 50
HOST=localhost
BASE="https://$HOST:$HUB_PORT"
NOW=$(date +%s)
OWNER=$(sas_token "$HOST" iothubowner "$(policy_key iothubowner)" $((NOW + 3600)))
SVC=$(sas_token "$HOST" serviceConnect "$(policy_key serviceConnect)" $((NOW + 3600)))
READER=$(sas_token "$HOST" registryRead "$(policy_key registryRead)" $((NOW + 3600)))
curl_api() { curl -sS --max-time 10 --cacert "$HUB_CAFILE" --resolve "$HOST:$HUB_PORT:127.0.0.1" "$@"; }
metrics() { curl_api -H "Authorization: $SVC" "$BASE/metrics"; }
# metric NAME_WITH_LABELS: its value (0 when absent)
metric() { metrics | awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }'; }

# --- GET /metrics: permission ServiceConnect, Prometheus text ----------------
expect_exit "metrics without a token: 401" 0 '^401$' \
    curl_api -o /dev/null -w '%{http_code}' "$BASE/metrics"
expect_exit "metrics with registryRead only: 403" 0 '^403$' \
    curl_api -o /dev/null -w '%{http_code}' -H "Authorization: $READER" "$BASE/metrics"
expect_exit "metrics with serviceConnect: 200, Prometheus content type" 0 \
    'text/plain; version=0.0.4' curl_api -o /dev/null -w '%{content_type}' -H "Authorization: $SVC" "$BASE/metrics"
expect_exit "metrics with iothubowner: 200" 0 '^200$' \
    curl_api -o /dev/null -w '%{http_code}' -H "Authorization: $OWNER" "$BASE/metrics"
expect_exit "metrics: POST is refused" 0 '^405$' \
    curl_api -o /dev/null -w '%{http_code}' -X POST -H "Authorization: $SVC" "$BASE/metrics"

# --- an honest SAS device ------------------------------------------------------
SAS_KEY=$("$HUBCTL" --json device create honest --auth sas | sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' | head -1)
SR="localhost%2Fdevices%2Fhonest"
dev_token() {
    hexkey=$(printf '%s' "$1" | base64 -d | od -An -tx1 | tr -d ' \n')
    sig=$(printf '%s\n%s' "$SR" "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64 | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
    printf 'SharedAccessSignature sr=%s&sig=%s&se=%s' "$SR" "$sig" "$2"
}
DEV_TOKEN=$(dev_token "$SAS_KEY" $((NOW + 3600)))
honest_pub() {
    timeout 20 mosquitto_pub -h 127.0.0.1 -p "$HUB_MQTT_PORT" --cafile "$HUB_CAFILE" -V mqttv311 \
        -i honest -u "localhost/honest/?api-version=2021-04-12" -P "$DEV_TOKEN" \
        -t devices/honest/messages/events/ -q 1 -m "$1"
}
expect_ok "honest device publishes before the flood" honest_pub before

# --- the flood: 400 connections per listener from 127.0.0.2, held 4 s -----------
cat >"$HUB_DIR/flood.py" <<'PY'
import socket, sys, time
host, ports, count, hold = sys.argv[1], [int(p) for p in sys.argv[2].split(",")], int(sys.argv[3]), float(sys.argv[4])
socks = {p: [] for p in ports}
for i in range(count):
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.2", 0))
        s.settimeout(2)
        try:
            s.connect((host, p))
            socks[p].append(s)
        except OSError:
            s.close()
time.sleep(1.0)
# A refused connection was reset at accept: it reads EOF or a reset at once,
# without one byte of TLS. An admitted one is still open (the hub waits for
# a ClientHello that never comes).
for p in ports:
    alive = closed = data = 0
    for s in socks[p]:
        s.setblocking(False)
        try:
            b = s.recv(1)
            if b:
                data += 1
            else:
                closed += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            closed += 1
    print("port=%d connected=%d alive=%d closed=%d data=%d" % (p, len(socks[p]), alive, closed, data), flush=True)
# A second wave a second later: the address is still over its rate, and its
# next log line reports the refusals the first second did not log.
for i in range(20):
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.2", 0))
        s.settimeout(2)
        try:
            s.connect((host, p))
        except OSError:
            pass
        s.close()
time.sleep(hold)
for p in ports:
    for s in socks[p]:
        s.close()
PY
python3 "$HUB_DIR/flood.py" 127.0.0.1 "$HUB_MQTT_PORT,$HUB_HTTPS_PORT" 400 3 >"$HUB_DIR/flood.out" 2>&1 &
FLOOD_PID=$!
sleep 1.5 # the flood is open (or being refused) now
expect_ok "honest device publishes during the flood" honest_pub during
expect_exit "the service API answers during the flood" 0 '"deviceId": ?"honest"' \
    "$HUBCTL" --json device show honest
wait "$FLOOD_PID"
FLOOD_PID=""
cat "$HUB_DIR/flood.out"
for port in "$HUB_MQTT_PORT" "$HUB_HTTPS_PORT"; do
    line=$(grep "^port=$port " "$HUB_DIR/flood.out")
    alive=$(printf '%s' "$line" | sed -n 's/.* alive=\([0-9]*\).*/\1/p')
    closed=$(printf '%s' "$line" | sed -n 's/.* closed=\([0-9]*\).*/\1/p')
    data=$(printf '%s' "$line" | sed -n 's/.* data=\([0-9]*\).*/\1/p')
    expect_eq "port $port: at most max_connections_per_ip flood connections stay open" 1 \
        "$([ "${alive:-999}" -le $PER_IP ] && echo 1 || echo 0)"
    expect_eq "port $port: the rest were closed at accept" 1 "$([ "${closed:-0}" -ge 300 ] && echo 1 || echo 0)"
    expect_eq "port $port: refused connections got no TLS byte" 0 "${data:-x}"
done

ALIVE=$(sed -n 's/.* alive=\([0-9]*\).*/\1/p' "$HUB_DIR/flood.out" | awk '{ s += $1 } END { print s + 0 }')
expect_eq "both listeners together hold at most max_connections_per_ip ($ALIVE)" 1 \
    "$([ "$ALIVE" -le $PER_IP ] && echo 1 || echo 0)"

# --- counted and logged ---------------------------------------------------------
# Which transport meets which limit first depends on how the two accept
# loops interleave; each transport and each reason must show up.
refused_sum() { metrics | awk -v p="$1" 'index($1, "hubd_connections_refused_total{") == 1 && $1 ~ p { s += $2 } END { print s + 0 }'; }
for p in 'transport="mqtt"' 'transport="https"' 'reason="CONN_CAP_PER_IP"' 'reason="CONN_RATE_PER_IP"'; do
    v=$(refused_sum "$p")
    expect_eq "metrics count refusals with $p (got $v)" 1 "$([ "$v" -gt 0 ] && echo 1 || echo 0)"
done
expect_log "refusal logged with its reason" \
    'event=conn_refused transport=(mqtt|https) peer=127\.0\.0\.2:[0-9]+ reason=CONN_(CAP|RATE)_PER_IP limit=(20|5)'
expect_log "later lines say how many were not logged" 'event=conn_refused .*suppressed=[0-9]+'
LINES=$(grep -c 'event=conn_refused.*peer=127\.0\.0\.2' "$HUB_DIR/hubd.log")
REFUSED=$(metrics | awk '/^hubd_connections_refused_total/ { s += $2 } END { print s + 0 }')
expect_eq "the log is not flooded ($LINES lines for $REFUSED refusals)" 1 \
    "$([ "$LINES" -le 20 ] && [ "$REFUSED" -ge 600 ] && echo 1 || echo 0)"
expect_log "honest device was never refused" 'event=connected device=honest'
expect_eq "no refusal names 127.0.0.1" 0 "$(grep -c 'event=conn_refused.*peer=127\.0\.0\.1:' "$HUB_DIR/hubd.log")"

# --- the rest of /metrics ---------------------------------------------------------
sleep 1 # flood sockets closed: their slots come back
expect_eq "flood connections released: mqtt gauge back to 0" 0 \
    "$(metric 'hubd_connections{transport="mqtt"}')"
expect_exit "device connects counted" 0 '^[2-9]' metric 'hubd_device_connect_total{result="ok",reason="OK"}'
expect_exit "telemetry committed counted" 0 '^[2-9]' metric hubd_telemetry_messages_total
expect_exit "commit latency histogram" 0 '^[1-9]' metric hubd_telemetry_commit_seconds_count
expect_exit "HTTP requests by class" 0 '^[1-9]' metric 'hubd_http_requests_total{code="4xx"}'
expect_exit "C2D and queue families present" 0 'hubd_c2d_enqueued_total 0' metrics
expect_exit "metrics families are typed" 0 '# TYPE hubd_telemetry_commit_seconds histogram' metrics
expect_ok "honest device publishes after the flood" honest_pub after

stop_hub
summary

#!/bin/sh
# Runs the README's "X.509 CA walkthrough" exactly as printed: every ```sh
# block of that section, in order, against a fresh hubd, so the README can
# never drift from what hubctl and hubd do. Usage: readme_walkthrough.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
README=$(cd "$(dirname "$0")/../.." && pwd)/README.md
. "$(dirname "$0")/lib.sh"
trap cleanup_hub EXIT INT TERM

start_hub
WORK=$HUB_DIR/walkthrough
mkdir -p "$WORK"
awk '/^## The X.509 CA walkthrough/ { on = 1; next }
     on && /^## / { exit }
     on && /^```sh$/ { code = 1; next }
     on && /^```$/ { code = 0; next }
     on && code { print }' "$README" | sed "s/-p 8883/-p $HUB_MQTT_PORT/" >"$WORK/steps.sh"
expect_exit "the walkthrough section has its commands" 0 "hubctl ca verify" cat "$WORK/steps.sh"
expect_ok "the README walkthrough runs as printed" timeout 120 \
    sh -c "cd '$WORK' && PATH='$BUILD':\$PATH && export PATH && set -e && . ./steps.sh"
LAST_OUT_STEPS=$LAST_OUT
printf '%s\n' "$LAST_OUT" | sed 's/^/     | /'
expect_exit "its chain check prints valid" 0 "^valid$" printf '%s\n' "$LAST_OUT"
expect_exit "the hub has contoso verified" 0 '"isVerified": ?true' "$HUBCTL" --json ca show contoso
expect_exit "the hub has dev1 as a CA device" 0 '"certificateAuthority"' "$HUBCTL" --json device show dev1
expect_exit "dev1's telemetry was shown by hubctl monitor" 0 '"temp":21|\{"temp":21\}' printf '%s\n' "$LAST_OUT_STEPS"
expect_exit "dev1 received the C2D message" 0 "devices/dev1/messages/devicebound/.* hello dev1" printf '%s\n' "$LAST_OUT_STEPS"
stop_hub
summary

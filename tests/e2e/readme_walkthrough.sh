#!/bin/sh
# Runs the README's "X.509 CA walkthrough" and then its "Zero-touch
# provisioning" section exactly as printed: every ```sh block of each
# section, in order, against a fresh hubd, in one directory (zero-touch
# reuses the walkthrough's CA), so the README can never drift from what
# hubctl and hubd do. Usage: readme_walkthrough.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
README=$(cd "$(dirname "$0")/../.." && pwd)/README.md
. "$(dirname "$0")/lib.sh"
trap cleanup_hub EXIT INT TERM

# extract_section TITLE OUT: the ```sh blocks of README section TITLE, with
# the MQTT port the README prints (8883) replaced by this hub's.
extract_section() {
    awk -v title="## $1" '$0 == title { on = 1; next }
         on && /^## / { exit }
         on && /^```sh$/ { code = 1; next }
         on && /^```$/ { code = 0; next }
         on && code { print }' "$README" | sed "s/-p 8883/-p $HUB_MQTT_PORT/" >"$2"
}

# run_steps NAME FILE: runs FILE in $WORK as a shell script, stopping at the
# first failing command, with this build's hubd and hubctl first on PATH.
run_steps() {
    expect_ok "$1" timeout 120 \
        sh -c "cd '$WORK' && PATH='$BUILD':\$PATH && export PATH && set -e && . '$2'"
    printf '%s\n' "$LAST_OUT" | sed 's/^/     | /'
}

start_hub
WORK=$HUB_DIR/walkthrough
mkdir -p "$WORK"

extract_section "The X.509 CA walkthrough" "$WORK/steps.sh"
expect_exit "the walkthrough section has its commands" 0 "hubctl ca verify" cat "$WORK/steps.sh"
run_steps "the README walkthrough runs as printed" "$WORK/steps.sh"
LAST_OUT_STEPS=$LAST_OUT
expect_exit "its chain check prints valid" 0 "^valid$" printf '%s\n' "$LAST_OUT_STEPS"
expect_exit "the hub has contoso verified" 0 '"isVerified": ?true' "$HUBCTL" --json ca show contoso
expect_exit "the hub has dev1 as a CA device" 0 '"certificateAuthority"' "$HUBCTL" --json device show dev1
expect_exit "dev1's telemetry was shown by hubctl monitor" 0 '"temp":21|\{"temp":21\}' printf '%s\n' "$LAST_OUT_STEPS"
expect_exit "dev1 received the C2D message" 0 "devices/dev1/messages/devicebound/.* hello dev1" printf '%s\n' "$LAST_OUT_STEPS"

# Zero-touch: dev2 is never created by hand; its registration creates it.
extract_section "Zero-touch provisioning" "$WORK/zero-touch.sh"
expect_exit "the zero-touch section has its commands" 0 "hubctl dps register dev2" cat "$WORK/zero-touch.sh"
expect_exit "dev2 does not exist before it registers" 1 "" "$HUBCTL" device show dev2
run_steps "the README zero-touch section runs as printed" "$WORK/zero-touch.sh"
LAST_OUT_ZT=$LAST_OUT
expect_exit "hubctl dps register printed the assigned hub" 0 "^assignedHub=localhost$" printf '%s\n' "$LAST_OUT_ZT"
expect_exit "hubctl dps register printed the device id" 0 "^deviceId=dev2$" printf '%s\n' "$LAST_OUT_ZT"
expect_exit "the registration created dev2 as a CA device" 0 '"certificateAuthority"' "$HUBCTL" --json device show dev2
expect_exit "dev2 is enabled" 0 '"status": ?"enabled"' "$HUBCTL" --json device show dev2
expect_exit "dev2's registration is assigned" 0 '"status": ?"assigned"' "$HUBCTL" --json dps registration show dev2
expect_exit "dev2's registration went through the group factory" 0 '"enrollmentGroupId": ?"factory"' "$HUBCTL" --json dps registration show dev2
expect_exit "dev2's twin has the group's initial tags" 0 '"site": ?"factory-1"' "$HUBCTL" --json twin show dev2
expect_exit "dev2's telemetry was shown by hubctl monitor" 0 '"temp":19|\{"temp":19\}' printf '%s\n' "$LAST_OUT_ZT"
expect_exit "the hub stored dev2's message" 0 '"deviceId": ?"dev2"' "$HUBCTL" --json monitor --device dev2 --count 1 --timeout 5
expect_log "the hub logged the assignment" 'event=dps_register .*registration=dev2 .*outcome=assigned.*device=dev2'
stop_hub
summary

#!/bin/sh
# The Azure IoT Node SDK's Registry against a running hubd (tests/interop).
# Usage: interop_node.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
INTEROP=$(cd "$(dirname "$0")/../interop" && pwd)
trap cleanup_hub EXIT INT TERM

start_hub
if (cd "$INTEROP" && NODE_EXTRA_CA_CERTS="$HUB_CAFILE" node --test --test-reporter=spec >"$HUB_DIR/node.out" 2>&1); then
    pass "azure-iothub Registry interop (node --test)"
else
    fail "azure-iothub Registry interop (node --test)"
fi
cat "$HUB_DIR/node.out"
stop_hub
summary

#!/bin/sh
# The official Azure IoT Node SDKs against a running hubd (tests/interop):
# azure-iothub's Registry over HTTPS, and azure-iot-device with the MQTT
# transport for X.509 CA, SAS and selfSigned devices.
# Usage: interop_node.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
INTEROP=$(cd "$(dirname "$0")/../interop" && pwd)
trap cleanup_hub EXIT INT TERM

start_hub
INTEROP_PKI=$HUB_DIR/pki
mkdir -p "$INTEROP_PKI"
(
    set -e
    cd "$INTEROP_PKI"
    h() { "$HUBCTL" "$@" >/dev/null; }
    h cert root --out root --subject "Interop Root CA"
    h cert intermediate --out int --issuer-cert root.pem --issuer-key root.key
    h cert device --out node-ca --device-id node-ca --issuer-cert int.pem --issuer-key int.key
    h cert device --out node-nobody --device-id node-nobody --issuer-cert int.pem --issuer-key int.key
    for d in node-twin node-method node-http; do
        h cert device --out $d --device-id $d --issuer-cert int.pem --issuer-key int.key
    done
    h cert root --out node-self --subject node-self
    h ca upload interop root.pem
    h cert verification --out pop --code "$("$HUBCTL" ca code interop)" --issuer-cert root.pem --issuer-key root.key
    h ca verify interop pop.pem
    for d in node-ca node-twin node-method node-http; do h device create $d --auth ca; done
    h device create node-self --auth selfsigned --thumbprint "$("$HUBCTL" cert thumbprint node-self.pem)"
    "$HUBCTL" --json device create node-sas --auth sas | sed -n 's/.*"primaryKey": *"\([^"]*\)".*/\1/p' | head -1 >sas.key
) || { fail "interop PKI and devices"; summary; exit 1; }
INTEROP_SAS_KEY=$(cat "$INTEROP_PKI/sas.key")
export INTEROP_PKI INTEROP_SAS_KEY HUBCTL HUB_MQTT_PORT

for t in registry device twin_methods device_http; do
    if (cd "$INTEROP" && NODE_EXTRA_CA_CERTS="$HUB_CAFILE" node --test --test-reporter=spec "$t.test.js" >"$HUB_DIR/node-$t.out" 2>&1); then
        pass "Azure Node SDK interop: $t.test.js"
    else
        fail "Azure Node SDK interop: $t.test.js"
    fi
    cat "$HUB_DIR/node-$t.out"
done
stop_hub
summary

#!/bin/sh
# The official Azure IoT Node SDKs against a running hubd (tests/interop):
# azure-iothub's Registry over HTTPS, and azure-iot-device with the MQTT
# transport for X.509 CA, SAS and selfSigned devices; the provisioning
# packages (service client, device client over MQTT and HTTPS) against the
# hub's DPS (dps.test.js).
# Usage: interop_node.sh BUILD_DIR
# INTEROP_TESTS="dps device" runs only those tests/interop/*.test.js.
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

    # DPS (dps.test.js): hub CA interop-dps (verified) with two intermediates;
    # devices are NOT created here: provisioning must create them.
    h cert root --out dps-root --subject "Interop DPS Root CA"
    h cert intermediate --out dps-int --subject "Interop DPS Intermediate 1" --issuer-cert dps-root.pem --issuer-key dps-root.key
    h cert intermediate --out dps-int2 --subject "Interop DPS Intermediate 2" --issuer-cert dps-root.pem --issuer-key dps-root.key
    for d in dps-mqtt-1 dps-http-1 dps-cn-real dps-ind-1; do
        h cert device --out $d --device-id $d --issuer-cert dps-int.pem --issuer-key dps-int.key
    done
    for d in dps-int2-a dps-int2-b; do
        h cert device --out $d --device-id $d --issuer-cert dps-int2.pem --issuer-key dps-int2.key
    done
    h cert root --out dps-alien-root --subject "Interop DPS Unknown Root CA"
    h cert intermediate --out dps-alien-int --subject "Interop DPS Unknown Intermediate" --issuer-cert dps-alien-root.pem --issuer-key dps-alien-root.key
    h cert device --out dps-alien --device-id dps-alien --issuer-cert dps-alien-int.pem --issuer-key dps-alien-int.key
    h ca upload interop-dps dps-root.pem
    h cert verification --out pop-dps --code "$("$HUBCTL" ca code interop-dps)" --issuer-cert dps-root.pem --issuer-key dps-root.key
    h ca verify interop-dps pop-dps.pem
) || { fail "interop PKI and devices"; summary; exit 1; }
INTEROP_SAS_KEY=$(cat "$INTEROP_PKI/sas.key")
export INTEROP_PKI INTEROP_SAS_KEY HUBCTL HUB_MQTT_PORT

for t in ${INTEROP_TESTS:-registry device twin_methods device_http dps dps_bulk}; do
    if (cd "$INTEROP" && NODE_EXTRA_CA_CERTS="$HUB_CAFILE" node --test --test-reporter=spec "$t.test.js" >"$HUB_DIR/node-$t.out" 2>&1); then
        pass "Azure Node SDK interop: $t.test.js"
    else
        fail "Azure Node SDK interop: $t.test.js"
    fi
    cat "$HUB_DIR/node-$t.out"
done
stop_hub
summary

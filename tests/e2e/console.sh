#!/bin/sh
# End-to-end: the web console hubd serves at / (issue 9). Checks what hubd
# serves (types, caching, security headers, no api-version needed), then runs
# the browser test (tests/console, playwright-core driving Debian's chromium)
# against the same hub with PKI files made by hubctl and devices played by
# the mosquitto clients, and the provisioning page with a device registered
# by `hubctl dps register` (start_hub exports HUB_DPS_CONNECTION_STRING and
# HUB_DPS_ID_SCOPE to the test). Screenshots go to BUILD_DIR/console-screenshots/.
# Usage: console.sh BUILD_DIR   (tests/console needs `npm ci` first)
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
. "$(dirname "$0")/lib.sh"
CONSOLE_TESTS=$(cd "$(dirname "$0")/../console" && pwd)
SHOTS=$BUILD/console-screenshots
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
trap cleanup_hub EXIT INT TERM

if [ ! -x "$CHROMIUM" ]; then
    fail "chromium is installed" "no $CHROMIUM: run scripts/install-deps"
    summary; exit 1
fi
if [ ! -d "$CONSOLE_TESTS/node_modules/playwright-core" ]; then
    fail "playwright-core is installed" "run: (cd tests/console && npm ci --no-audit --no-fund)"
    summary; exit 1
fi

# A prefix of its own: the browser test runs for a minute and must not share
# a name pattern with directories other runs clean up.
HUB_E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hubd-console.XXXXXX")
start_hub
URL="https://localhost:$HUB_PORT"
CURL="curl -sS --cacert $HUB_CAFILE --resolve localhost:$HUB_PORT:127.0.0.1"

# --- what hubd serves ------------------------------------------------------------
# header NAME FILE: the value of a response header (case-insensitive name).
header() { tr -d '\r' <"$2" | sed -n "s/^$1: //Ip" | head -1; }
H=$HUB_DIR/h
for p in / /console/app.js /console/style.css /console/favicon.svg; do
    code=$($CURL -o "$HUB_DIR/body" -D "$H" -w '%{http_code}' "$URL$p")
    expect_eq "GET $p: 200 without api-version or token" 200 "$code"
    expect_eq "GET $p: Content-Security-Policy" \
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'" \
        "$(header Content-Security-Policy "$H")"
    expect_eq "GET $p: nosniff" nosniff "$(header X-Content-Type-Options "$H")"
    expect_eq "GET $p: X-Frame-Options" DENY "$(header X-Frame-Options "$H")"
    expect_eq "GET $p: Referrer-Policy" no-referrer "$(header Referrer-Policy "$H")"
    expect_eq "GET $p: Cache-Control" no-cache "$(header Cache-Control "$H")"
done
check_type() {
    $CURL -o "$HUB_DIR/body" -D "$H" "$URL$1"
    expect_eq "GET $1: Content-Type" "$2" "$(header Content-Type "$H")"
    expect_ok "GET $1: the bytes of console/$3" cmp "$HUB_DIR/body" "$CONSOLE_TESTS/../../console/$3"
}
check_type / "text/html; charset=utf-8" index.html
check_type /console "text/html; charset=utf-8" index.html
check_type /console/app.js "text/javascript; charset=utf-8" app.js
check_type /console/style.css "text/css; charset=utf-8" style.css
check_type /console/favicon.svg "image/svg+xml" favicon.svg
ETAG=$(header ETag "$H")
expect_eq "If-None-Match with the ETag: 304" 304 \
    "$($CURL -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$URL/console/favicon.svg")"
expect_eq "an unknown console file: 404" 404 "$($CURL -o /dev/null -w '%{http_code}' "$URL/console/nope.js")"
expect_eq "POST /: 405" 405 "$($CURL -o /dev/null -w '%{http_code}' -X POST --data x "$URL/")"
expect_eq "the API still wants api-version" 400 "$($CURL -o /dev/null -w '%{http_code}' "$URL/devices")"

# --- the browser test ------------------------------------------------------------
PKI=$HUB_DIR/pki
mkdir -p "$PKI"
(
    set -e
    cd "$PKI"
    h() { "$HUBCTL" "$@" >/dev/null; }
    h cert root --out root --subject "Console Root CA"
    h cert intermediate --out int --issuer-cert root.pem --issuer-key root.key --subject "Console Int CA"
    h cert device --out console-dev1 --device-id console-dev1 --issuer-cert int.pem --issuer-key int.key
    # registers with the provisioning service (a group on the root the browser verifies)
    h cert device --out console-dps1 --device-id console-dps1 --issuer-cert int.pem --issuer-key int.key
) || { fail "console PKI"; summary; exit 1; }
# Chromium trusts the hub's server key alone, by its SPKI hash: no blanket
# ignoring of certificate errors.
SPKI=$(openssl x509 -in "$HUB_DIR/data/tls/server.pem" -pubkey -noout |
       openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
if (cd "$CONSOLE_TESTS" && CONSOLE_URL="$URL/" CONSOLE_SPKI="$SPKI" CONSOLE_PKI="$PKI" \
        CONSOLE_SCREENSHOTS="$SHOTS" HUBCTL="$HUBCTL" HUB_MQTT_PORT="$HUB_MQTT_PORT" CHROMIUM="$CHROMIUM" \
        node --test --test-reporter=spec console.test.js >"$HUB_DIR/console-test.out" 2>&1); then
    pass "browser test: console.test.js"
else
    fail "browser test: console.test.js"
fi
cat "$HUB_DIR/console-test.out"
for s in 01-signin-wrong-connection-string 02-ca-verification-code 03-ca-verified 04-telemetry \
         05-devices-connected 06-device 07-provisioning; do
    if [ -s "$SHOTS/$s.png" ]; then pass "screenshot $s.png"; else fail "screenshot $s.png"; fi
done
echo "screenshots: $SHOTS"
stop_hub
summary

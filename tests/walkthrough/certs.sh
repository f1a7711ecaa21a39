#!/usr/bin/env bash
# The README walkthrough's certificate steps as a test:
#   root CA -> intermediate CA -> device certificate for dev1 -> verification
#   certificate for a verification code, plus a server certificate,
# each cross-checked with the openssl CLI, thumbprints compared with
# `openssl x509 -fingerprint`, and the device chain run through
# `hubctl cert check`.
#
# usage: tests/walkthrough/certs.sh HUBCTL_PATH
# Prints "walkthrough: N passed, M failed"; exits non-zero on any failure.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 HUBCTL_PATH" >&2
    exit 2
fi
HUBCTL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$HUBCTL" ] || { echo "walkthrough: $1 is not executable" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hubd-walkthrough-certs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# A fixed code, as the hub would hand out (hex, 48 digits).
CODE=5F1E0C4B2A9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D

passed=0
failed=0

# check NAME COMMAND...: runs COMMAND, counts it, shows its output on failure.
check() {
    local name=$1
    shift
    if "$@" >"$WORK/last.out" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        sed 's/^/     | /' "$WORK/last.out"
    fi
}

# exits_with STATUS COMMAND...: COMMAND must exit with STATUS (hubctl: 1 refused,
# 2 usage or I/O error).
exits_with() {
    local want=$1 got=0
    shift
    "$@" || got=$?
    echo "exit status $got, expected $want"
    [ "$got" = "$want" ]
}

subject_is() { # FILE EXPECTED
    [ "$(openssl x509 -in "$1" -noout -subject -nameopt RFC2253)" = "subject=$2" ]
}

key_mode_is_0600() { # FILE
    [ "$(stat -c %a "$1")" = 600 ]
}

count_certs() { # FILE N
    [ "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$1")" = "$2" ]
}

thumbprint_matches() { # FILE sha1|sha256
    local ours theirs flag=
    [ "$2" = sha256 ] && flag=--sha256
    ours=$("$HUBCTL" cert thumbprint "$1" $flag)
    theirs=$(openssl x509 -in "$1" -noout -fingerprint "-$2" | sed 's/.*=//; s/://g')
    echo "hubctl:  $ours"
    echo "openssl: $theirs"
    [ -n "$ours" ] && [ "$ours" = "$theirs" ]
}

output_is() { # EXPECTED COMMAND...
    local want=$1 got
    shift
    got=$("$@")
    echo "$got"
    [ "$got" = "$want" ]
}

echo "== 1. root CA"
check "hubctl cert root" "$HUBCTL" cert root --subject "Contoso Root CA" --out root-ca
check "root subject" subject_is root-ca.pem "CN=Contoso Root CA"
check "root is self-signed and verifies" openssl verify -CAfile root-ca.pem root-ca.pem
check "root key is mode 0600" key_mode_is_0600 root-ca.key
check "root thumbprint (sha1)" thumbprint_matches root-ca.pem sha1
check "refuses to overwrite root-ca.key" exits_with 2 "$HUBCTL" cert root --out root-ca

echo "== 2. intermediate CA"
check "hubctl cert intermediate" "$HUBCTL" cert intermediate --issuer-cert root-ca.pem \
    --issuer-key root-ca.key --subject "Contoso Intermediate CA" --out intermediate-ca
check "intermediate subject" subject_is intermediate-ca.pem "CN=Contoso Intermediate CA"
check "intermediate verifies" openssl verify -CAfile root-ca.pem intermediate-ca.pem

echo "== 3. device certificate for dev1"
cat intermediate-ca.pem root-ca.pem >issuer-chain.pem
check "hubctl cert device" "$HUBCTL" cert device --issuer-cert intermediate-ca.pem \
    --issuer-key intermediate-ca.key --issuer-chain issuer-chain.pem --device-id dev1
check "device subject is CN=dev1" subject_is dev1.pem "CN=dev1"
check "device verifies (sslclient)" openssl verify -purpose sslclient -CAfile root-ca.pem \
    -untrusted intermediate-ca.pem dev1.pem
check "device key is mode 0600" key_mode_is_0600 dev1.key
check "device chain = leaf + intermediate" count_certs dev1-chain.pem 2
check "device thumbprint (sha1)" thumbprint_matches dev1.pem sha1
check "device thumbprint (sha256)" thumbprint_matches dev1.pem sha256
echo "     dev1 thumbprint: $("$HUBCTL" cert thumbprint dev1.pem)"
check "hubctl cert check: device chain is valid" output_is valid \
    "$HUBCTL" cert check --trusted root-ca.pem --device-id dev1 dev1-chain.pem

echo "== 4. verification certificate for code $CODE"
check "hubctl cert verification" "$HUBCTL" cert verification --issuer-cert root-ca.pem \
    --issuer-key root-ca.key --code "$CODE"
check "verification subject is the code" subject_is verification.pem "CN=$CODE"
check "verification cert verifies under the root" openssl verify -CAfile root-ca.pem \
    verification.pem
check "verification thumbprint (sha1)" thumbprint_matches verification.pem sha1

echo "== 5. hub server certificate"
check "hubctl cert server" "$HUBCTL" cert server --issuer-cert root-ca.pem \
    --issuer-key root-ca.key --san DNS:localhost --san IP:127.0.0.1
check "server verifies (sslserver)" openssl verify -purpose sslserver -CAfile root-ca.pem \
    server.pem
check "server SAN covers localhost" openssl verify -purpose sslserver -verify_hostname localhost \
    -CAfile root-ca.pem server.pem

echo "== 6. refusals"
check "thumbprint of a private key file is refused" exits_with 1 "$HUBCTL" cert thumbprint dev1.key
check "a non-CA cannot issue a device" exits_with 1 "$HUBCTL" cert device --issuer-cert dev1.pem \
    --issuer-key dev1.key --device-id dev2
"$HUBCTL" cert root --subject "Another Root" --out other-root >/dev/null
check "device chain is invalid under another root" exits_with 1 "$HUBCTL" cert check \
    --trusted other-root.pem dev1-chain.pem

echo "walkthrough: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

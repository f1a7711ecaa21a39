#!/bin/sh
# End-to-end: TLS session resumption keeps every authentication check
# (issue 7). A resumed connection is accepted only while the device exists,
# is enabled, still authenticates by CA, and its chain still validates
# against the current trust (CA present and verified, no CRL listing it).
# Usage: resumption.sh BUILD_DIR
set -u
BUILD=$(cd "${1:-build}" && pwd)
HUBD=$BUILD/hubd
HUBCTL=$BUILD/hubctl
E2E=$(cd "$(dirname "$0")" && pwd)
. "$E2E/lib.sh"
trap cleanup_hub EXIT INT TERM
CLIENT=$E2E/resumption/resume_client.py

start_hub
PKI=$HUB_DIR/pki
mkdir -p "$PKI"
cd "$PKI" || exit 1
q() { "$@" >/dev/null 2>&1; }
q "$HUBCTL" cert root --out root --subject "Resume Root CA"
q "$HUBCTL" cert intermediate --out int --issuer-cert root.pem --issuer-key root.key --subject "Resume Int CA"
for d in dev1 dev2 dev3 dev4 dev5 dev6; do
    q "$HUBCTL" cert device --out $d --device-id $d --issuer-cert int.pem --issuer-key int.key --issuer-chain root.pem
done
q "$HUBCTL" cert device --out dev7 --device-id dev7 --issuer-cert root.pem --issuer-key root.key
q "$HUBCTL" ca upload rca root.pem
CODE=$("$HUBCTL" ca code rca)
q "$HUBCTL" cert verification --out pop --code "$CODE" --issuer-cert root.pem --issuer-key root.key
q "$HUBCTL" ca verify rca pop.pem
for d in dev1 dev2 dev3 dev4 dev5 dev6 dev7; do q "$HUBCTL" device create $d --auth ca; done

run() { # DEV TLS STEPS...: the client's lines as one string
    d=$1; v=$2; shift 2
    python3 "$CLIENT" "$HUB_MQTT_PORT" "$HUB_CAFILE" "$d-chain.pem" "$d.key" "$d" "$v" "$@" | tr '\n' ' '
}
H="$HUBCTL"
for v in 1.2 1.3; do
    expect_exit "TLS $v: full, then resumed: both accepted" 0 \
        "full reused=0 connack=0 resume reused=1 connack=0 resume reused=1 connack=0" run dev1 $v full resume resume
done
expect_exit "TLS 1.2: device disabled while holding a session: resumed CONNECT refused" 0 \
    "resume reused=1 connack=0 resume reused=1 connack=[35] " \
    run dev2 1.2 full resume "sh:'$H' device update dev2 --status disabled" resume
expect_exit "TLS 1.3: device disabled while holding a session: resumed CONNECT refused" 0 \
    "resume reused=1 connack=0 resume reused=1 connack=[35] " \
    run dev3 1.3 full resume "sh:'$H' device update dev3 --status disabled" resume
expect_exit "device deleted while holding a session: refused" 0 \
    "resume reused=1 connack=0 resume reused=1 connack=[235] " \
    run dev4 1.2 full resume "sh:'$H' device delete dev4" resume
expect_exit "device turned into a SAS device while holding a session: refused" 0 \
    "resume reused=1 connack=0 resume reused=1 connack=[45] " \
    run dev5 1.3 full resume "sh:'$H' device delete dev5 && '$H' device create dev5 --auth sas" resume

# The intermediate revoked by a CRL of the root (openssl ca as the root CA).
mkdir -p ca1/newcerts; : >ca1/index.txt; echo 01 >ca1/crlnumber
cat >ca1.cnf <<CNF
[ ca ]
default_ca = ca1
[ ca1 ]
dir = ca1
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
crlnumber = \$dir/crlnumber
certificate = root.pem
private_key = root.key
default_md = sha256
default_crl_days = 7
policy = p
[ p ]
commonName = supplied
CNF
openssl ca -config ca1.cnf -revoke int.pem -batch >/dev/null 2>&1
openssl ca -config ca1.cnf -gencrl -out crl.pem -batch >/dev/null 2>&1
expect_exit "intermediate revoked by a CRL while holding a session: refused" 0 \
    "resume reused=1 connack=0 resume reused=1 connack=5 " \
    run dev6 1.3 full resume "sh:'$H' ca crl rca crl.pem" resume
expect_log "the resumed refusal names the revocation" "event=connect_refused.*device=dev6.*reason=CHAIN_REVOKED"
# The CA deleted: every session under it is refused.
expect_exit "CA deleted while holding a session: refused" 0 \
    "resume reused=1 connack=0 resume reused=1 connack=5 " \
    run dev7 1.2 full resume "sh:'$H' ca delete rca" resume
summary

/*
 * hubbench: a load tool for hubd and for any MQTT 3.1.1 broker behind mutual
 * TLS (Mosquitto is the comparison). One process, one epoll loop, every
 * socket non-blocking; each run is bounded in connections and in time.
 *
 * Subcommands, each its own file:
 *   connect, hold, publish   hubbench.c (the load loop)
 *   mkpki DIR N              mkpki.c (root, intermediate, server, N devices)
 *   chain                    chain.c (hub_pki_chain_verify vs X509_verify_cert)
 *
 * Output: human lines, then one machine line per run,
 *   RESULT mode=connect key=value ...
 * which scripts/bench parses. Timing never makes hubbench fail: the exit
 * status is 0 when the run happened (even with failed operations), 1 on a
 * tool error (bad options, unreadable certificates), 2 when no operation at
 * all succeeded (what scripts/bench-smoke checks).
 */
#ifndef HUBBENCH_H
#define HUBBENCH_H

#include <openssl/x509.h>

/* mkpki.c: `hubbench mkpki DIR N [--server-cn NAME]`. */
int hubbench_mkpki_main(int argc, char **argv);

/* mkpki.c: root -> intermediate -> leaf (CN dev-00001) in memory, for chain.c;
 * the caller frees all three. Returns 0 or -1. */
int hubbench_chain_make(X509 **root, X509 **inter, X509 **leaf);

/* chain.c: `hubbench chain [--seconds S]`; 1 when built without hub_pki. */
int hubbench_chain_main(int argc, char **argv);

/* Device file names inside a PKI directory: dev-00001.pem (leaf + intermediate
 * chain) and dev-00001.key; the device id (and CN) is the file stem. */
#define HUBBENCH_DEVICE_FMT "dev-%05d"

#endif

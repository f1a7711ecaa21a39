"""Broken and hostile TLS clients against one of hubd's TLS ports.

Usage: tls.py CASE. Environment: HOSTILE_TLS_PORT (the port under test),
HUB_CAFILE, HOSTILE_HANDSHAKE_TIMEOUT_MS (the deadline the port should
enforce), HOSTILE_PKI (certificate files made by the driver: long100.pem,
loop100.pem, big.pem and their keys).
"""

import os
import random
import ssl
import time

import hostile as h

PORT = h.env_int("HOSTILE_TLS_PORT")
CA = os.environ["HUB_CAFILE"]
PKI = os.environ.get("HOSTILE_PKI", "")

# The first bytes of a TLS 1.2 ClientHello: record header (handshake, 3.1,
# length 512), handshake header (ClientHello, length 508), client version.
HELLO_START = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])


def deadline_s():
    return h.env_int("HOSTILE_HANDSHAKE_TIMEOUT_MS") / 1000.0


def silent():
    s = h.tcp(PORT)
    peer = h.peer_of(s)
    lim = deadline_s()
    h.expect_closed_between(s, lim * 0.8, lim + 2.0, "TCP connected, nothing sent")
    print("peer=" + peer)


def partial_hello():
    s = h.tcp(PORT)
    peer = h.peer_of(s)
    s.sendall(HELLO_START)
    lim = deadline_s()
    h.expect_closed_between(s, lim * 0.8, lim + 2.0, "11 bytes of a ClientHello")
    print("peer=" + peer)


def trickle_hello():
    """A ClientHello one byte every 300 ms: the deadline is for the whole
    handshake, not between bytes."""
    s = h.tcp(PORT)
    peer = h.peer_of(s)
    lim = deadline_s()
    body = HELLO_START + bytes(64)
    t0 = time.monotonic()
    closed = None
    for b in body:
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed = time.monotonic() - t0
            break
        took, _ = h.wait_closed(s, 0.3)
        if took is not None:
            closed = time.monotonic() - t0
            break
        if time.monotonic() - t0 > lim + 3.0:
            break
    h.need(closed is not None, "a trickled ClientHello kept the connection for %.1f s (deadline "
           "%.1f s)" % (time.monotonic() - t0, lim))
    h.need(closed >= lim * 0.8, "cut after %.2f s, before the %.1f s deadline" % (closed, lim))
    print("ClientHello one byte per 300 ms: closed after %.2f s" % closed)
    print("peer=" + peer)


def garbage(payload, what):
    def case():
        s = h.tcp(PORT)
        peer = h.peer_of(s)
        s.sendall(payload)
        took, got = h.wait_closed(s, 2.0)
        h.need(took is not None, "%s: still open after 2 s" % what)
        print("%s: closed after %.2f s (%d bytes back: an alert at most)" % (what, took, got))
        h.need(got <= 7, "%s: the hub answered %d bytes" % (what, got))
        print("peer=" + peer)
    return case


def old_version(version):
    def case():
        ctx = h.client_ctx(CA, min_version=version, max_version=version)
        # OpenSSL 3's default security level forbids TLS 1.0/1.1 in the client
        # itself; level 0 lets this client offer them so the hub must refuse.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        raw = h.tcp(PORT)
        peer = h.peer_of(raw)
        try:
            ctx.wrap_socket(raw, server_hostname="localhost")
        except ssl.SSLError as e:
            h.need("PROTOCOL_VERSION" in str(e) or "protocol version" in str(e),
                   "refused, but not with a protocol_version alert: %s" % e)
            print("%s refused: %s" % (version.name, e.reason))
            print("peer=" + peer)
            return
        raise h.CaseFailed("%s handshake succeeded" % version.name)
    return case


def chain(certfile, keyfile, what, mqtt_device=None, limit_s=2.0):
    """Presents a hostile client chain. The hub must refuse within limit_s:
    either at the TLS layer (an alert) or, when the handshake passes, at
    CONNECT with CONNACK 5."""
    def case():
        t0 = time.monotonic()
        ctx = h.client_ctx(CA, os.path.join(PKI, certfile), os.path.join(PKI, keyfile))
        t0 = time.monotonic()  # loading thousands of PEM blocks is the client's time
        raw = h.tcp(PORT)
        peer = h.peer_of(raw)
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            if mqtt_device is None:
                raise h.CaseFailed("%s: handshake accepted" % what)
            s.sendall(h.connect_pkt(mqtt_device, "localhost/%s/?api-version=2021-04-12" % mqtt_device))
            ptype, _, body = h.read_packet(s, limit_s)
            h.need(ptype == 2 and body == b"\x00\x05", "wanted CONNACK 5, got %d %r" % (ptype, body))
            outcome = "CONNACK 5"
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            outcome = "TLS refusal (%s)" % (getattr(e, "reason", None) or e)
        took = time.monotonic() - t0
        h.need(took < limit_s, "%s: refusal took %.2f s" % (what, took))
        print("%s: %s after %.3f s" % (what, outcome, took))
        print("peer=" + peer)
    return case


rnd = random.Random(6)  # fixed seed: the same bytes every run
h.run({
    "silent": silent,
    "partial_hello": partial_hello,
    "trickle_hello": trickle_hello,
    "http_text": garbage(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "HTTP request instead of TLS"),
    "mqtt_plain": garbage(h.connect_pkt("h1", "localhost/h1/?api-version=2021-04-12"),
                          "plaintext MQTT CONNECT"),
    "random_bytes": garbage(bytes(rnd.randrange(256) for _ in range(4096)), "4 KiB of random bytes"),
    "tls10": old_version(ssl.TLSVersion.TLSv1),
    "tls11": old_version(ssl.TLSVersion.TLSv1_1),
    "chain_100": chain("long100.pem", "long.key", "leaf + 99 intermediates", "h2"),
    "chain_loop": chain("loop100.pem", "loopleaf.key", "leaf + 99 self-issued CAs sharing a name "
                        "and key", "h2"),
    "chain_1mib": chain("big.pem", "long.key", "1.5 MiB certificate chain", "h2"),
})

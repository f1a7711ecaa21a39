"""Broken and hostile MQTT clients against hubd's device endpoint.

Usage: mqtt.py CASE. Environment: HUB_MQTT_PORT, HUB_CAFILE, HOSTILE_PKI (a
directory with DEVICE-chain.pem and DEVICE.key for the registered devices h1,
h2, ...), HOSTILE_CONNECT_TIMEOUT_MS and HOSTILE_MAX_PACKET (the values hubd
was started with), HUBD_PID (for the memory bound).
"""

import os
import socket
import struct
import time

import hostile as h

PORT = h.env_int("HUB_MQTT_PORT")
CA = os.environ["HUB_CAFILE"]
PKI = os.environ["HOSTILE_PKI"]
TELEMETRY = "devices/%s/messages/events/"


def session(device, keep_alive=60):
    return h.mqtt_session(PORT, CA, device, PKI, keep_alive)


def tls_only(device):
    ctx = h.client_ctx(CA, os.path.join(PKI, device + "-chain.pem"),
                       os.path.join(PKI, device + ".key"))
    return h.tls(PORT, ctx)


def honest():
    """A well-behaved device: CONNECT, a QoS 1 PUBLISH acknowledged, DISCONNECT."""
    s, peer = session("h1")
    s.sendall(h.publish_pkt(TELEMETRY % "h1", b"honest", qos=1, pid=7))
    ptype, _, body = h.read_packet(s)
    h.need(ptype == 4 and body == b"\x00\x07", "wanted PUBACK 7, got type %d %r" % (ptype, body))
    s.sendall(b"\xe0\x00")
    s.close()
    print("honest device: CONNACK 0, PUBACK")
    print("peer=" + peer)


def no_connect():
    s, peer = tls_only("h2")
    limit = h.env_int("HOSTILE_CONNECT_TIMEOUT_MS") / 1000.0
    h.expect_closed_between(s, limit * 0.8, limit + 2.0, "silent after the handshake")
    print("peer=" + peer)


def second_connect():
    s, peer = session("h2")
    s.sendall(h.connect_pkt("h2", "localhost/h2/?api-version=2021-04-12"))
    took, got = h.wait_closed(s, 2.0)
    h.need(took is not None, "second CONNECT: still open after 2 s")
    h.need(got == 0, "second CONNECT: the hub answered %d bytes (a second CONNACK?)" % got)
    print("second CONNECT: closed after %.2f s" % took)
    print("peer=" + peer)


def huge_remaining_length():
    """A PUBLISH header claiming 268435455 bytes (the largest MQTT length)
    and no body: the hub must close on the header alone."""
    s, peer = session("h2")
    s.sendall(b"\x30\xff\xff\xff\x7f")
    took, _ = h.wait_closed(s, 2.0)
    h.need(took is not None, "still open 2 s after a 256 MiB length header: waiting for the body?")
    print("256 MiB remaining length: closed after %.2f s, body never sent" % took)
    print("peer=" + peer)


def huge_remaining_length_first():
    """The same header as the very first packet, before CONNECT."""
    s, peer = tls_only("h2")
    s.sendall(b"\x10\xff\xff\xff\x7f")
    took, _ = h.wait_closed(s, 2.0)
    h.need(took is not None, "still open 2 s after a 256 MiB CONNECT header")
    print("256 MiB CONNECT header: closed after %.2f s" % took)
    print("peer=" + peer)


def malformed_length():
    """Five continuation bytes: not an MQTT remaining length at all (§2.2.3)."""
    s, peer = session("h2")
    s.sendall(b"\x30\xff\xff\xff\xff\x01")
    took, _ = h.wait_closed(s, 2.0)
    h.need(took is not None, "still open 2 s after a five-byte remaining length")
    print("five-byte remaining length: closed after %.2f s" % took)
    print("peer=" + peer)


def publish_too_large():
    """One byte over mqtt_max_packet_bytes, declared in the header; only the
    first KiB of the body is sent, so a hub that waits for the rest hangs."""
    limit = h.env_int("HOSTILE_MAX_PACKET")
    s, peer = session("h2")
    topic = TELEMETRY % "h2"
    body_len = limit - 1  # with the 2-byte header this is limit + 1 + len(varint) - 1 > limit
    header = b"\x30" + h.varint(body_len)
    h.need(1 + len(h.varint(body_len)) + body_len > limit, "test arithmetic")
    s.sendall(header + h.mstr(topic) + b"x" * 1024)
    took, _ = h.wait_closed(s, 2.0)
    h.need(took is not None, "still open 2 s after an over-limit PUBLISH header")
    print("PUBLISH of %d bytes (limit %d): closed after %.2f s" %
          (1 + len(h.varint(body_len)) + body_len, limit, took))
    print("peer=" + peer)


def publish_at_limit():
    """The largest PUBLISH the limit allows is accepted (the bound is not off by one)."""
    limit = h.env_int("HOSTILE_MAX_PACKET")
    s, peer = session("h2")
    topic = TELEMETRY % "h2"
    fixed = 2 + len(topic) + 2  # topic string, packet id
    body_len = limit - 1 - 2  # a 2-byte remaining length covers limits below 16 KiB
    h.need(body_len < 16384, "HOSTILE_MAX_PACKET must be below 16 KiB for this case")
    s.sendall(h.publish_pkt(topic, b"y" * (body_len - fixed), qos=1, pid=9))
    ptype, _, body = h.read_packet(s)
    h.need(ptype == 4 and body == b"\x00\x09", "wanted PUBACK 9, got type %d %r" % (ptype, body))
    s.close()
    print("PUBLISH of exactly %d bytes: PUBACK" % limit)
    print("peer=" + peer)


def qos2():
    s, peer = session("h2")
    s.sendall(h.publish_pkt(TELEMETRY % "h2", b"two", qos=2, pid=3))
    took, got = h.wait_closed(s, 2.0)
    h.need(took is not None, "QoS 2 PUBLISH: still open after 2 s")
    h.need(got == 0, "QoS 2 PUBLISH: the hub answered (PUBREC?) with %d bytes" % got)
    print("QoS 2 PUBLISH: closed after %.2f s" % took)
    print("peer=" + peer)


def keepalive_silence():
    s, peer = session("h2", keep_alive=2)
    # reference §1: the hub allows 1.5x the keep-alive, so 3 s.
    took = h.expect_closed_between(s, 2.8, 6.0, "keep_alive=2 then silence")
    h.need(took < 5.0, "keep-alive enforced late: %.2f s" % took)
    print("peer=" + peer)


def half_close():
    """CONNECT, then shutdown(SHUT_WR): the hub sees EOF and must close its side."""
    s, peer = session("h2")
    # SSLSocket.shutdown drops the TLS object and shuts the TCP write side:
    # no close_notify, the hub sees a bare EOF (what a NAT or a crashed
    # client's kernel produces). Reading on then sees the raw records.
    s.shutdown(socket.SHUT_WR)
    took, _ = h.wait_closed(s, 3.0)
    h.need(took is not None, "the hub kept a half-closed connection open for 3 s")
    print("half-closed after CONNECT: hub closed after %.2f s" % took)
    print("peer=" + peer)


def qos1_flood():
    """Unacknowledged QoS 1 PUBLISHes, never reading a PUBACK, for a bounded
    time: the hub must push back (stop reading) or close, and its memory must
    stay bounded."""
    pid = h.env_int("HUBD_PID")
    bound_kib = h.env_int("HOSTILE_RSS_GROWTH_KIB")
    rss0 = h.rss_kib(pid)
    s, peer = session("h2")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # PUBACKs pile up at the hub
    payload = b"f" * 900
    topic = TELEMETRY % "h2"
    sent = 0
    blocked = 0
    deadline = time.monotonic() + 6.0
    closed = False
    while time.monotonic() < deadline and sent < 200000:
        pkt = h.publish_pkt(topic, payload, qos=1, pid=(sent % 65535) + 1)
        s.settimeout(0.5)
        try:
            s.sendall(pkt)
            sent += 1
        except socket.timeout:
            blocked += 1  # back-pressure: the hub stopped reading
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
    rss1 = h.rss_kib(pid)
    growth = rss1 - rss0
    print("sent %d QoS 1 PUBLISHes (%d KiB) unacked in 6 s, blocked %d times, closed=%s, "
          "hub RSS %d -> %d KiB" % (sent, sent * len(pkt) // 1024, blocked, closed, rss0, rss1))
    h.need(growth < bound_kib, "hub RSS grew %d KiB, bound %d KiB" % (growth, bound_kib))
    # The connection is still sane: the PUBACKs the hub sent are well-formed
    # and in order, or the hub closed it.
    if not closed:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        acks = 0
        want = 1
        t_end = time.monotonic() + 5.0
        try:
            while acks < sent and time.monotonic() < t_end:
                ptype, _, body = h.read_packet(s, 5.0)
                h.need(ptype == 4, "wanted PUBACK, got type %d" % ptype)
                got = struct.unpack(">H", body)[0]
                h.need(got == want, "PUBACK %d out of order (wanted %d)" % (got, want))
                acks += 1
                want = want % 65535 + 1
        except h.CaseFailed:
            raise
        except (OSError, ValueError):
            pass
        print("then read %d in-order PUBACKs" % acks)
        h.need(acks > 0, "no PUBACK at all for %d QoS 1 PUBLISHes" % sent)
    print("peer=" + peer)


def twin_get_flood():
    """Twin GET requests (small) whose answers (the whole twin) are never read:
    the answers must not pile up in the hub without bound."""
    pid = h.env_int("HUBD_PID")
    bound_kib = h.env_int("HOSTILE_RSS_GROWTH_KIB")
    rss0 = h.rss_kib(pid)
    s, peer = session("h2")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sub = h.mstr("$iothub/twin/res/#") + b"\x00"
    s.sendall(h.packet(0x82, struct.pack(">H", 1) + sub))
    # 400000 answers of about 100 bytes are 40 MB, far more than socket
    # buffers hold: a hub that buffers them all fails the memory bound, one
    # that pushes back blocks this sender (or closes) long before.
    sent = blocked = 0
    closed = False
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20.0 and sent < 400000 and blocked < 4:
        pkt = h.publish_pkt("$iothub/twin/GET/?$rid=%d" % sent, b"", qos=0)
        s.settimeout(0.5)
        try:
            s.sendall(pkt * 50)
            sent += 50
        except socket.timeout:
            blocked += 1
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
    time.sleep(0.5)  # let the hub handle what it already read
    rss1 = h.rss_kib(pid)
    print("sent %d twin GETs unread in %.1f s, blocked %d times, closed=%s, hub RSS %d -> %d KiB"
          % (sent, time.monotonic() - t0, blocked, closed, rss0, rss1))
    h.need(rss1 - rss0 < bound_kib, "hub RSS grew %d KiB, bound %d KiB" % (rss1 - rss0, bound_kib))
    h.need(blocked > 0 or closed, "no back-pressure: %d requests taken without blocking" % sent)
    print("peer=" + peer)


h.run({
    "honest": honest,
    "no_connect": no_connect,
    "second_connect": second_connect,
    "huge_remaining_length": huge_remaining_length,
    "huge_remaining_length_first": huge_remaining_length_first,
    "malformed_length": malformed_length,
    "publish_too_large": publish_too_large,
    "publish_at_limit": publish_at_limit,
    "qos2": qos2,
    "keepalive_silence": keepalive_silence,
    "half_close": half_close,
    "qos1_flood": qos1_flood,
    "twin_get_flood": twin_get_flood,
})

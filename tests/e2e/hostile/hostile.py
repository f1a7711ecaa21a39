"""Shared pieces of the hostile-client helpers: TLS contexts, an MQTT 3.1.1
encoder small enough to get every byte wrong on purpose, and timing of the
hub's reaction.

Every helper talks to 127.0.0.1 only, and every wait is bounded: a helper that
cannot tell within its deadline reports a failure instead of hanging. A case
prints what the client observed and, as its last line, `peer=ADDR:PORT`
(the client's own address) so the driver can find the hub's log line for
exactly that connection.
"""

import os
import socket
import ssl
import struct
import sys
import time

HOST = "127.0.0.1"


class CaseFailed(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise CaseFailed(msg)


def env_int(name):
    return int(os.environ[name])


def tcp(port, timeout=5.0):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def peer_of(sock):
    addr, port = sock.getsockname()[:2]
    return "%s:%d" % (addr, port)


def client_ctx(cafile, cert=None, key=None, min_version=None, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.check_hostname = False  # the hub's certificate names localhost, we dial 127.0.0.1
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def tls(port, ctx, timeout=5.0):
    """A TLS connection with a finished handshake, and the client's peer string."""
    raw = tcp(port, timeout)
    peer = peer_of(raw)
    return ctx.wrap_socket(raw, server_hostname="localhost"), peer


def wait_closed(sock, limit_s):
    """Reads and discards until the hub closes the connection. Returns the
    seconds it took and how many bytes came first, or (None, n) when the
    connection is still open after limit_s. A reset counts as closed."""
    t0 = time.monotonic()
    got = 0
    while True:
        left = limit_s - (time.monotonic() - t0)
        if left <= 0:
            return None, got
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return None, got
        except ssl.SSLError:
            return time.monotonic() - t0, got  # an alert, then the close
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0, got
        if not data:
            return time.monotonic() - t0, got
        got += len(data)


def expect_closed_between(sock, lo, hi, what):
    took, _ = wait_closed(sock, hi)
    need(took is not None, "%s: still open after %.1f s" % (what, hi))
    need(took >= lo, "%s: closed after %.2f s, before the %.1f s deadline" % (what, took, lo))
    print("%s: closed after %.2f s" % (what, took))
    return took


# ---- MQTT 3.1.1 encoding (reference §2.2: fixed header, remaining length) ------


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def packet(first_byte, body):
    return bytes([first_byte]) + varint(len(body)) + body


def connect_pkt(client_id, username, keep_alive=60, clean=True):
    flags = 0x80 | (0x02 if clean else 0)  # username, clean session
    var = mstr("MQTT") + bytes([4, flags]) + struct.pack(">H", keep_alive)
    return packet(0x10, var + mstr(client_id) + mstr(username))


def publish_pkt(topic, payload, qos=0, pid=1):
    body = mstr(topic) + (struct.pack(">H", pid) if qos else b"") + payload
    return packet(0x30 | (qos << 1), body)


def read_exact(sock, n, limit_s):
    buf = b""
    deadline = time.monotonic() + limit_s
    while len(buf) < n:
        left = deadline - time.monotonic()
        need(left > 0, "timed out reading %d bytes" % n)
        sock.settimeout(left)
        data = sock.recv(n - len(buf))
        need(data, "connection closed while reading a packet")
        buf += data
    return buf


def read_packet(sock, limit_s=5.0):
    """(type nibble, flags, body) of the next packet from the hub."""
    first = read_exact(sock, 1, limit_s)[0]
    n, mult = 0, 1
    for _ in range(4):
        b = read_exact(sock, 1, limit_s)[0]
        n += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return first >> 4, first & 0x0F, read_exact(sock, n, limit_s)


def mqtt_session(port, cafile, device, certdir, keep_alive=60):
    """TLS with the device's chain, CONNECT, CONNACK 0. Returns (sock, peer)."""
    ctx = client_ctx(cafile, os.path.join(certdir, device + "-chain.pem"),
                     os.path.join(certdir, device + ".key"))
    s, peer = tls(port, ctx)
    s.sendall(connect_pkt(device, "localhost/%s/?api-version=2021-04-12" % device, keep_alive))
    ptype, _, body = read_packet(s)
    need(ptype == 2 and body[1:2] == b"\x00", "wanted CONNACK 0, got type %d body %r" % (ptype, body))
    return s, peer


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise CaseFailed("no VmRSS for pid %d" % pid)


def run(cases):
    """main(): python3 X.py CASE; runs one case, exit 0 when it held."""
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print("usage: %s CASE (%s)" % (sys.argv[0], "|".join(sorted(cases))), file=sys.stderr)
        sys.exit(2)
    try:
        cases[sys.argv[1]]()
    except CaseFailed as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    except (OSError, ssl.SSLError) as e:
        print("FAIL: unexpected %s: %s" % (type(e).__name__, e))
        sys.exit(1)

"""Broken and hostile HTTP clients against hubd's HTTPS endpoint.

Usage: http.py CASE. Environment: HUB_HTTPS_PORT, HUB_CAFILE, HOSTILE_SVC_TOKEN
(a service SAS token), HOSTILE_MAX_HEADER, HOSTILE_MAX_BODY and
HOSTILE_REQUEST_TIMEOUT_MS (the values hubd was started with).

Each case prints `status=N` when the hub answered, what else it saw, and
`peer=ADDR:PORT`.
"""

import json
import os
import time

import hostile as h

PORT = h.env_int("HUB_HTTPS_PORT")
CA = os.environ["HUB_CAFILE"]
TOKEN = os.environ["HOSTILE_SVC_TOKEN"]
API = "api-version=2021-04-12"


def connect():
    return h.tls(PORT, h.client_ctx(CA))


def head(method, target, extra=b"", body_len=None):
    lines = "%s %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: %s\r\n" % (method, target, TOKEN)
    if body_len is not None:
        lines += "Content-Type: application/json\r\nContent-Length: %d\r\n" % body_len
    return lines.encode() + extra + b"\r\n"


def read_response(s, limit_s=5.0):
    """(status, headers dict lowercased, body bytes) of one response."""
    buf = b""
    deadline = time.monotonic() + limit_s
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        h.need(left > 0, "no response head within %.1f s" % limit_s)
        s.settimeout(left)
        data = s.recv(65536)
        h.need(data, "connection closed without a response (got %r)" % buf[:200])
        buf += data
    head_b, _, rest = buf.partition(b"\r\n\r\n")
    lines = head_b.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        left = deadline - time.monotonic()
        h.need(left > 0, "response body incomplete")
        s.settimeout(left)
        data = s.recv(65536)
        h.need(data, "connection closed inside the response body")
        rest += data
    return status, hdrs, rest[:n]


def azure_error(hdrs, body, code):
    """The body is Azure's error shape naming `code`."""
    h.need("application/json" in hdrs.get("content-type", ""),
           "content type %r, not JSON" % hdrs.get("content-type"))
    doc = json.loads(body)
    h.need("Message" in doc and "ExceptionMessage" in doc, "not Azure's error shape: %r" % doc)
    h.need(doc["Message"].startswith("ErrorCode:%s;" % code),
           "Message %r does not start with ErrorCode:%s;" % (doc["Message"], code))
    h.need(hdrs.get("iothub-errorcode") == code, "iothub-errorcode %r" % hdrs.get("iothub-errorcode"))
    return doc["Message"]


def exchange(req, limit_s=5.0):
    s, peer = connect()
    s.sendall(req)
    status, hdrs, body = read_response(s, limit_s)
    return s, peer, status, hdrs, body


def report(peer, status, extra=""):
    print("status=%d%s" % (status, extra))
    print("peer=" + peer)


def honest():
    s, peer, status, _, body = exchange(head("GET", "/devices/h1?" + API))
    h.need(status == 200, "GET /devices/h1: status %d %r" % (status, body[:200]))
    h.need(json.loads(body).get("deviceId") == "h1", "wrong device: %r" % body[:200])
    report(peer, status, " (honest GET /devices/h1)")


def huge_headers():
    limit = h.env_int("HOSTILE_MAX_HEADER")
    pad = b"X-Pad: " + b"p" * (limit + 1024) + b"\r\n"
    s, peer, status, _, _ = exchange(head("GET", "/devices/h1?" + API, pad))
    h.need(status in (400, 413, 431), "status %d for %d header bytes" % (status, len(pad)))
    took, _ = h.wait_closed(s, 2.0)
    h.need(took is not None, "connection still open after the refusal")
    report(peer, status, " closed=yes")


def huge_body():
    limit = h.env_int("HOSTILE_MAX_BODY")
    n = limit + 1
    body = b'{"deviceId":"big","pad":"' + b"b" * (n - 27) + b'"}'
    h.need(len(body) == n, "test arithmetic %d" % len(body))
    s, peer, status, _, _ = exchange(head("PUT", "/devices/big?" + API, body_len=n) + body)
    h.need(status == 413, "status %d for a %d-byte body (limit %d)" % (status, n, limit))
    report(peer, status)


def huge_body_declared():
    """Only the Content-Length is over the limit; the body is never sent.
    The hub must refuse on the header, not wait for the body."""
    limit = h.env_int("HOSTILE_MAX_BODY")
    t0 = time.monotonic()
    s, peer, status, _, _ = exchange(head("PUT", "/devices/big?" + API, body_len=100 * limit), 3.0)
    h.need(status == 413, "status %d for Content-Length %d" % (status, 100 * limit))
    report(peer, status, " after %.2f s" % (time.monotonic() - t0))


def slow_body():
    """A 64-byte body sent one byte per second: cut at the request deadline."""
    limit = h.env_int("HOSTILE_REQUEST_TIMEOUT_MS") / 1000.0
    s, peer = connect()
    s.sendall(head("PUT", "/devices/slow?" + API, body_len=64))
    t0 = time.monotonic()
    closed = None
    while time.monotonic() - t0 < limit + 3.0:
        try:
            s.sendall(b" ")
        except OSError:
            closed = time.monotonic() - t0
            break
        took, got = h.wait_closed(s, 1.0)
        if took is not None:
            closed = time.monotonic() - t0
            break
    h.need(closed is not None, "slow body still accepted after %.1f s" % (limit + 3.0))
    h.need(closed >= limit * 0.8, "cut after %.2f s, before the %.1f s deadline" % (closed, limit))
    print("one byte per second: cut after %.2f s (timeout %.1f s)" % (closed, limit))
    print("peer=" + peer)


def slow_headers():
    """The request head itself, one byte per second."""
    limit = h.env_int("HOSTILE_REQUEST_TIMEOUT_MS") / 1000.0
    s, peer = connect()
    t0 = time.monotonic()
    closed = None
    for b in head("GET", "/devices/h1?" + API):
        if time.monotonic() - t0 > limit + 3.0:
            break
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed = time.monotonic() - t0
            break
        took, _ = h.wait_closed(s, 1.0)
        if took is not None:
            closed = time.monotonic() - t0
            break
    h.need(closed is not None, "slow request head still accepted after %.1f s" % (limit + 3.0))
    h.need(closed >= limit * 0.8, "cut after %.2f s, before the %.1f s deadline" % (closed, limit))
    print("request head one byte per second: cut after %.2f s (timeout %.1f s)" % (closed, limit))
    print("peer=" + peer)


def invalid_json():
    body = b'{"deviceId": "j1", '
    s, peer, status, hdrs, rbody = exchange(head("PUT", "/devices/j1?" + API, body_len=len(body)) + body)
    h.need(status == 400, "status %d for truncated JSON" % status)
    msg = azure_error(hdrs, rbody, "ArgumentInvalid")
    h.need("JSON" in msg, "message does not say what is wrong: %r" % msg)
    report(peer, status, " message=%r" % msg)


def invalid_utf8():
    body = b'{"deviceId": "u1", "status": "enabled", "statusReason": "\xff\xfe bad"}'
    s, peer, status, hdrs, rbody = exchange(head("PUT", "/devices/u1?" + API, body_len=len(body)) + body)
    h.need(status == 400, "status %d for invalid UTF-8 in a JSON string" % status)
    msg = azure_error(hdrs, rbody, "ArgumentInvalid")
    report(peer, status, " message=%r" % msg)


def traversal(target):
    def case():
        s, peer, status, hdrs, rbody = exchange(head("GET", target))
        h.need(status in (400, 404), "status %d for %s" % (status, target))
        azure_error(hdrs, rbody, json.loads(rbody)["Message"].split(";")[0][len("ErrorCode:"):])
        h.need(b"root:" not in rbody, "a file's content came back")
        report(peer, status)
    return case


def wrong_method(method, target, want):
    def case():
        s, peer, status, hdrs, rbody = exchange(head(method, target))
        h.need(status == want, "%s %s: status %d, wanted %d" % (method, target, status, want))
        if want == 405:
            azure_error(hdrs, rbody, "MethodNotAllowed")
        report(peer, status)
    return case


# Refusals of the cases in hostile.sh, counted by reason (issue 6 §5). Exact:
# each case closes one connection for one reason.
EXPECTED_COUNTS = {
    'hubd_device_disconnects_total{reason="TLS_HANDSHAKE_TIMEOUT"}': 3,
    'hubd_device_disconnects_total{reason="TLS_ERROR"}': 7,
    'hubd_device_disconnects_total{reason="CONNECT_TIMEOUT"}': 1,
    'hubd_device_disconnects_total{reason="PROTOCOL_VIOLATION"}': 1,
    'hubd_device_disconnects_total{reason="PACKET_TOO_LARGE"}': 3,
    'hubd_device_disconnects_total{reason="MALFORMED_PACKET"}': 1,
    'hubd_device_disconnects_total{reason="QOS2_UNSUPPORTED"}': 1,
    'hubd_device_disconnects_total{reason="KEEPALIVE_TIMEOUT"}': 1,
    'hubd_device_connect_total{result="refused",reason="CHAIN_TOO_LONG"}': 1,
    'hubd_device_connect_total{result="refused",reason="CHAIN_UNTRUSTED"}': 1,
}


def metrics():
    """GET /metrics: each refusal above counted once per case. Exit 3 when
    the hub has no /metrics (the driver then says so and skips)."""
    s, peer, status, _, body = exchange(head("GET", "/metrics?" + API))
    if status == 404:
        print("no /metrics on this hub")
        raise SystemExit(3)
    h.need(status == 200, "GET /metrics: status %d" % status)
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = value
    bad = []
    for name, want in EXPECTED_COUNTS.items():
        got = values.get(name)
        if got is None or float(got) != want:
            bad.append("%s=%s (wanted %d)" % (name, got, want))
    h.need(not bad, "; ".join(bad))
    print("%d refusal counters as expected" % len(EXPECTED_COUNTS))
    print("peer=" + peer)


h.run({
    "metrics": metrics,
    "honest": honest,
    "huge_headers": huge_headers,
    "huge_body": huge_body,
    "huge_body_declared": huge_body_declared,
    "slow_body": slow_body,
    "slow_headers": slow_headers,
    "invalid_json": invalid_json,
    "invalid_utf8": invalid_utf8,
    "traversal_encoded_slash": traversal("/devices/..%2F..%2Fetc%2Fpasswd?" + API),
    "traversal_dotdot": traversal("/devices/%2e%2e?" + API),
    "traversal_dotdot_raw": traversal("/devices/../../etc/passwd?" + API),
    "traversal_certificates": traversal("/certificates/..%2f..%2fetc?" + API),
    "method_delete_collection": wrong_method("DELETE", "/devices?" + API, 405),
    "method_post_device": wrong_method("POST", "/devices/h1?" + API, 405),
    "method_put_certificates": wrong_method("PUT", "/certificates?" + API, 405),
    "method_options": wrong_method("OPTIONS", "/devices?" + API, 405),
    "method_unknown": wrong_method("BREW", "/devices?" + API, 501),
})

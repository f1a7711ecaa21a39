#!/usr/bin/env python3
"""MQTT CONNECT over mTLS, optionally resuming a saved TLS session.
usage: resume_client.py PORT CAFILE CHAIN KEY DEVICE TLSVER SESSFILE(save/load pickle-free: in-process)
Runs a sequence given on argv[7:]: each step 'full' or 'resume'; prints
'<step> reused=<0|1> connack=<code>' per step. Steps after the first reuse
the session of the previous successful connection."""
import socket, ssl, sys, time

port, cafile, chain, key, dev, ver = sys.argv[1:7]
steps = sys.argv[7:]

def connect_pkt(dev):
    def s(b):
        return len(b).to_bytes(2, "big") + b
    user = f"localhost/{dev}/?api-version=2021-04-12".encode()
    vh = s(b"MQTT") + bytes([4, 0x82]) + (60).to_bytes(2, "big")
    pl = s(dev.encode()) + s(user)
    body = vh + pl
    return bytes([0x10, len(body)]) + body

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(cafile)
ctx.check_hostname = False
ctx.load_cert_chain(chain, key)
v = ssl.TLSVersion.TLSv1_3 if ver == "1.3" else ssl.TLSVersion.TLSv1_2
ctx.minimum_version = v
ctx.maximum_version = v
sess = None
import subprocess
for step in steps:
    if step.startswith("sh:"):
        subprocess.run(step[3:], shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        continue
    raw = socket.create_connection(("127.0.0.1", int(port)))
    tls = ctx.wrap_socket(raw, session=sess if step == "resume" else None)
    tls.sendall(connect_pkt(dev))
    tls.settimeout(5)
    code = "none"
    try:
        data = tls.recv(4)
        if len(data) >= 4 and data[0] == 0x20:
            code = str(data[3])
    except Exception as e:
        code = "err:" + type(e).__name__
    reused = int(tls.session_reused)
    if code == "0" and tls.session is not None:
        sess = tls.session
    if code == "0":
        tls.sendall(b"\xe0\x00")  # DISCONNECT
        time.sleep(0.05)
        try:
            tls.unwrap()
        except Exception:
            pass
    tls.close()
    print(f"{step} reused={reused} connack={code}", flush=True)

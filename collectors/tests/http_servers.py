"""Tiny HTTP servers for the eBPF tests, each using one family of syscalls.

usage: [HTTP_SERVER_CPU=N] http_servers.py MODE READY_FILE
MODE: readwrite (read/write), recvsend (recvfrom/sendto), msg (recvmsg/sendmsg),
      vec (readv/writev), unix (AF_UNIX stream with recv/send), noise (no server: HTTP-looking
      bytes through a file, a pipe, UDP and a unix socket pair, which must count nothing),
      batch (read/write, but answers only once two requests are in, however many reads
      that takes, in one write), interim (read/write, each response behind a
      "100 Continue" in the same write).
Writes its port (or socket path) to READY_FILE, then serves until killed. Every request in
one read is answered (pipelining); /missing answers 404, anything else 200.
"""
import os
import socket
import sys
import tempfile
import time

MODE, READY = sys.argv[1], sys.argv[2]
if os.environ.get("HTTP_SERVER_CPU"):
    # Pinned, so that tests can make processes take turns on one CPU.
    os.sched_setaffinity(0, {int(os.environ["HTTP_SERVER_CPU"])})
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def responses(data):
    out = b""
    for request in data.split(b"\r\n\r\n"):
        if not request.strip():
            continue
        path = request.split(b" ")[1] if b" " in request else b"/"
        status = b"404 Not Found" if path == b"/missing" else b"200 OK"
        body = b"hello\n"
        if MODE == "interim":
            out += b"HTTP/1.1 100 Continue\r\n\r\n"
        out += b"HTTP/1.1 " + status + b"\r\nContent-Length: 6\r\n\r\n" + body
    return out


def serve(conn):
    fd = conn.fileno()
    held = b""
    if MODE == "spliced":
        r, w = os.pipe()
        moved = 0
        while moved < 8:
            moved += os.splice(fd, w, 8 - moved)
        os.close(r)
        os.close(w)
    while True:
        if MODE in ("readwrite", "interim"):
            data = os.read(fd, 65536)
        elif MODE == "batch":
            data = os.read(fd, 65536)
            held += data
            if data and held.count(b"\r\n\r\n") < 2:
                continue
            data, held = held, b""
        elif MODE in ("held", "spliced"):
            data = os.read(fd, 65536)
            held += data
            if data and not held.endswith(b"\r\n\r\n"):
                continue
            data, held = held, b""
        elif MODE == "msg":
            data = conn.recvmsg(65536)[0]
        elif MODE == "vec":
            buf = bytearray(65536)
            data = bytes(buf[: os.readv(fd, [buf])])
        else:
            data = conn.recv(65536)
        if not data:
            return
        reply = responses(data)
        if MODE in ("readwrite", "batch", "interim", "held", "spliced"):
            os.write(fd, reply)
        elif MODE == "msg":
            conn.sendmsg([reply])
        elif MODE == "vec":
            if reply.count(b"HTTP/1.1 ") == 1:
                # As nginx writes: the headers, then the body (which the probe need not copy).
                head, _, body = reply.partition(b"\r\n\r\n")
                os.writev(fd, [head + b"\r\n\r\n", body])
            else:
                # A status line alone first: the probe must read on into the next iovec.
                head, _, _ = reply.partition(b"\r\n")
                os.writev(fd, [head + b"\r\n", reply[len(head) + 2 :]])
        else:
            conn.sendall(reply)


def ready(text):
    with open(READY + ".tmp", "w") as f:
        f.write(text)
    os.rename(READY + ".tmp", READY)


def noise():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "f")
        r, w = os.pipe()
        udp_a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp_a.bind(("127.0.0.1", 0))
        udp_b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        unix_a, unix_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(20):
            with open(path, "wb") as f:
                f.write(REQUEST + b"HTTP/1.1 200 OK\r\n\r\n")
            with open(path, "rb") as f:
                f.read()
            os.write(w, REQUEST)
            os.read(r, 4096)
            udp_b.sendto(REQUEST, udp_a.getsockname())
            udp_a.recvfrom(4096)
            unix_a.send(REQUEST)
            unix_b.recv(4096)
            unix_b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            unix_a.recv(4096)
    # Outside the directory's block: the test kills this process, and the block would
    # never remove it.
    ready("done")
    time.sleep(3600)


if MODE == "noise":
    noise()
    sys.exit(0)
if MODE == "unix":
    path = READY + ".sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    address = path
else:
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.bind(("::1", 0))
    address = str(srv.getsockname()[1])
srv.listen(16)
ready(address)
while True:
    conn, _ = srv.accept()
    serve(conn)
    conn.close()

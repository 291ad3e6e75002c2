#!/usr/bin/env python3
"""Hold N idle connections to a loopback HTTP endpoint, for memory measurements.

usage: idle_conns.py PORT N STATEDIR

Phases, each announced by creating a file in STATEDIR and then waiting for
the caller to create the matching "go" file (so the caller can measure the
server in between):

  connected   N connections open, nothing sent          waits for go1
  requested   one GET /metrics answered on each,        waits for go2
              the connections kept alive and idle

Loopback only.  Gives up (and exits non-zero) on any error or after
FA_BENCH_IDLE_DEADLINE seconds (default 180).
"""

import os
import resource
import selectors
import socket
import sys
import time

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n"


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit(f"idle_conns: RLIMIT_NOFILE hard limit {hard} < {want}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def wait_file(path, deadline):
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"idle_conns: gave up waiting for {path}")
        time.sleep(0.05)


def connect_all(port, n, deadline):
    conns = []
    for _ in range(n):
        if time.monotonic() > deadline:
            sys.exit("idle_conns: deadline while connecting")
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        conns.append(s)
    return conns


def response_done(buf):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return True


def request_all(conns, deadline):
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in conns:
        s.send(REQUEST)                  # 40 bytes: fits any socket buffer
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    pending = len(conns)
    while pending:
        if time.monotonic() > deadline:
            sys.exit(f"idle_conns: {pending} responses missing at the deadline")
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            data = s.recv(65536)
            if not data:
                sys.exit("idle_conns: the server closed a connection")
            bufs[s] += data
            if response_done(bufs[s]):
                sel.unregister(s)
                bufs[s] = b""
                pending -= 1
    sel.close()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    port, n, state = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    deadline = time.monotonic() + float(os.environ.get("FA_BENCH_IDLE_DEADLINE", "180"))
    raise_nofile(n)

    conns = connect_all(port, n, deadline)
    open(os.path.join(state, "connected"), "w").close()
    wait_file(os.path.join(state, "go1"), deadline)

    request_all(conns, deadline)
    open(os.path.join(state, "requested"), "w").close()
    wait_file(os.path.join(state, "go2"), deadline)

    for s in conns:
        s.close()


if __name__ == "__main__":
    main()

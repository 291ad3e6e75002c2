#!/usr/bin/env python3
"""A small authoritative DNS server for the tests (standard library only).

    dnsd.py --port PORT --zone ZONEFILE --log QUERYLOG [--ready READYFILE]

Listens on 127.0.0.1:PORT, UDP and TCP, and answers from ZONEFILE, one
record or directive a line ('#' starts a comment):

    www.zone.test        A      192.0.2.1
    v6.zone.test         AAAA   2001:db8::1
    zone.test            MX     10 mx1.zone.test
    zone.test            TXT    "v=spf1 -all" "a second string"
    1.0.0.127.in-addr.arpa PTR  localhost.test
    fail.test            SERVFAIL           # answered with SERVFAIL
    hang.test            HANG               # never answered
    slow.test            DELAY  1.5         # answered after 1.5 s (plus records)

A name with no record at all is NXDOMAIN; a name that has records, but
not of the type asked, is an empty NOERROR answer (NODATA).  A UDP answer
larger than 512 bytes is sent truncated (TC set, no records) so the
client asks again over TCP, as RFC 1035 wants.

Each query is one line in QUERYLOG, written and flushed before it is
answered: "udp NAME TYPE" or "tcp NAME TYPE" ("answered-late NAME TYPE"
after a DELAY answer went out).  When both sockets listen, READYFILE gets
the process id.
"""

import argparse
import os
import shlex
import socket
import struct
import sys
import threading
import time

TYPES = {'A': 1, 'NS': 2, 'CNAME': 5, 'SOA': 6, 'PTR': 12, 'MX': 15, 'TXT': 16, 'AAAA': 28}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
NOERROR, SERVFAIL, NXDOMAIN, NOTIMP = 0, 2, 3, 4
TTL = 60


class Zone:
    def __init__(self, path):
        self.records = {}       # (name, type) -> [rdata bytes]
        self.names = set()
        self.servfail = set()
        self.hang = set()
        self.delay = {}         # name -> seconds
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                try:
                    fields = shlex.split(line, comments=True)
                    if fields:
                        self._add(fields)
                except (ValueError, OSError, IndexError) as e:
                    sys.exit('%s:%d: %s' % (path, lineno, e))

    def _add(self, f):
        name, kind, args = norm(f[0]), f[1].upper(), f[2:]
        if kind == 'SERVFAIL':
            self.servfail.add(name)
            return
        if kind == 'HANG':
            self.hang.add(name)
            return
        if kind == 'DELAY':
            self.delay[name] = float(args[0])
            return
        if kind == 'A':
            rdata = socket.inet_pton(socket.AF_INET, args[0])
        elif kind == 'AAAA':
            rdata = socket.inet_pton(socket.AF_INET6, args[0])
        elif kind == 'MX':
            rdata = struct.pack('!H', int(args[0])) + encode_name(args[1])
        elif kind in ('PTR', 'CNAME', 'NS'):
            rdata = encode_name(args[0])
        elif kind == 'TXT':
            rdata = b''
            for s in args:
                b = s.encode()
                if len(b) > 255:
                    raise ValueError('a TXT string is at most 255 bytes')
                rdata += bytes([len(b)]) + b
        else:
            raise ValueError('unknown record type ' + kind)
        self.names.add(name)
        self.records.setdefault((name, TYPES[kind]), []).append(rdata)


def norm(name):
    return name.lower().rstrip('.')


def encode_name(name):
    out = b''
    for label in norm(name).split('.'):
        if not label:
            continue
        b = label.encode()
        if len(b) > 63:
            raise ValueError('label too long: ' + label)
        out += bytes([len(b)]) + b
    return out + b'\0'


def parse_question(msg):
    """(id, flags, qname, qtype, qclass, end of the question) or None"""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack('!HHH', msg[:6])
    if qd != 1 or flags & 0x8000:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xc0 or pos + n > len(msg):
            return None             # no compression in a question
        labels.append(msg[pos:pos + n].decode('ascii', 'replace'))
        pos += n
    if pos + 4 > len(msg):
        return None
    qtype, qclass = struct.unpack('!HH', msg[pos:pos + 4])
    return qid, flags, norm('.'.join(labels)), qtype, qclass, pos + 4


def build_answer(zone, msg, q, udp):
    qid, flags, qname, qtype, qclass, qend = q
    question = msg[12:qend]
    rd = flags & 0x0100
    rcode, answers = NOERROR, []
    if qname in zone.servfail:
        rcode = SERVFAIL
    elif qclass != 1:
        rcode = NOTIMP
    elif qname not in zone.names:
        rcode = NXDOMAIN
    else:
        answers = zone.records.get((qname, qtype), [])
    body = b''
    for rdata in answers:
        # the owner is the question's name: a pointer to offset 12
        body += struct.pack('!HHHIH', 0xc00c, qtype, 1, TTL, len(rdata)) + rdata
    hflags = 0x8000 | 0x0400 | rd | rcode            # QR, AA
    reply = struct.pack('!HHHHHH', qid, hflags, 1, len(answers), 0, 0) + question + body
    if udp and len(reply) > 512:
        hflags |= 0x0200                             # TC: ask again over TCP
        reply = struct.pack('!HHHHHH', qid, hflags, 1, 0, 0, 0) + question
    return reply


class Server:
    def __init__(self, zone, port, logpath):
        self.zone = zone
        self.log = open(logpath, 'a', buffering=1)
        self.lock = threading.Lock()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(('127.0.0.1', port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(('127.0.0.1', port))
        self.tcp.listen(64)

    def note(self, line):
        with self.lock:
            self.log.write(line + '\n')
            self.log.flush()

    def answer(self, msg, how):
        """the reply, None for no reply now; logs the query"""
        q = parse_question(msg)
        if q is None:
            self.note('%s malformed' % how)
            return None, 0
        qname, qtype = q[2], q[3]
        self.note('%s %s %s' % (how, qname, TYPE_NAMES.get(qtype, str(qtype))))
        if qname in self.zone.hang:
            return None, 0
        return build_answer(self.zone, msg, q, how == 'udp'), self.zone.delay.get(qname, 0)

    def late(self, send, reply, msg):
        q = parse_question(msg)
        try:
            send(reply)
        except OSError:
            pass
        self.note('answered-late %s %s' % (q[2], TYPE_NAMES.get(q[3], str(q[3]))))

    def serve_udp(self):
        while True:
            msg, peer = self.udp.recvfrom(4096)
            reply, delay = self.answer(msg, 'udp')
            if reply is None:
                continue
            send = lambda r, peer=peer: self.udp.sendto(r, peer)
            if delay:
                threading.Timer(delay, self.late, (send, reply, msg)).start()
            else:
                send(reply)

    def serve_tcp_conn(self, conn):
        with conn:
            while True:
                head = recv_exactly(conn, 2)
                if head is None:
                    return
                msg = recv_exactly(conn, struct.unpack('!H', head)[0])
                if msg is None:
                    return
                reply, delay = self.answer(msg, 'tcp')
                if reply is None:
                    continue
                if delay:
                    time.sleep(delay)
                try:
                    conn.sendall(struct.pack('!H', len(reply)) + reply)
                except OSError:
                    return

    def serve_tcp(self):
        while True:
            conn, _ = self.tcp.accept()
            threading.Thread(target=self.serve_tcp_conn, args=(conn,), daemon=True).start()


def recv_exactly(conn, n):
    data = b''
    while len(data) < n:
        try:
            chunk = conn.recv(n - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def main():
    ap = argparse.ArgumentParser(description='a test DNS server on 127.0.0.1')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--zone', required=True)
    ap.add_argument('--log', required=True)
    ap.add_argument('--ready')
    a = ap.parse_args()
    server = Server(Zone(a.zone), a.port, a.log)
    threading.Thread(target=server.serve_tcp, daemon=True).start()
    if a.ready:
        with open(a.ready + '.tmp', 'w') as f:
            f.write('%d\n' % os.getpid())
        os.rename(a.ready + '.tmp', a.ready)
    server.serve_udp()


if __name__ == '__main__':
    main()

#!/usr/bin/perl

# IMAP QUOTA and COMPRESS.
#
# QUOTA (RFC 9208): a user without limits, then limits set with
# "facteurctl user quota"; GETQUOTAROOT and GETQUOTA figures after
# appending mail (STORAGE in KiB, MESSAGE), over quota, SETQUOTA refused,
# unknown roots and mailboxes.
#
# COMPRESS=DEFLATE (RFC 4978): a python3 client doing raw deflate over a
# socket logs in, starts compression, and runs commands with large output
# (a LIST with STATUS of 1500 mailboxes, over a unix socket not read for a
# while, so the server meets a full socket) and large input (a 400 KB
# APPEND); COMPRESS again is NO [COMPRESSIONACTIVE]; a command pipelined
# behind COMPRESS, already compressed, is read; IDLE's updates come
# through at once; the same over TLS.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/imap lmdb ssl/);
system('python3 -c "import zlib, ssl" 2>/dev/null') == 0
    or plan(skip_all => 'python3 with zlib and ssl is needed');

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
imap {
    auth_plaintext on;
    server {
        listen 127.0.0.1:%%PORT_1%%;
        listen 127.0.0.1:%%PORT_2%% ssl;
        listen unix:imap.sock;
    }
}
EOF
mkdir $t->testdir . '/var';
my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$m->add_user('bob@example.org', 'bob secret');
$t->run;

sub client {
    my ($user) = @_;
    my $c = $t->connect(port => 1);
    $c->check(qr/^\* OK /, 'greeting');
    my @r = cmd($c, 'l0', "LOGIN $user\@example.org \"$user secret\"");
    like($r[-1], qr/^l0 OK /, "$user logs in");
    return $c;
}

sub cmd {
    my ($c, $tag, $line) = @_;
    $c->cmd("$tag $line");
    my @lines;
    while (defined(my $l = $c->line(10))) {
        push @lines, $l;
        last if $l =~ /^\Q$tag\E /;
    }
    return @lines;
}

sub append {
    my ($c, $tag, $box, $msg) = @_;
    return cmd($c, $tag, "APPEND $box {" . length($msg) . "+}\r\n$msg");
}

# ---- QUOTA ---------------------------------------------------------------------------------

my $c = client('alice');
my @r = cmd($c, 'a', 'GETQUOTAROOT INBOX');
is_deeply(\@r, ['* QUOTAROOT "INBOX" ""', '* QUOTA "" ()', 'a OK GETQUOTAROOT completed'],
          'GETQUOTAROOT without limits: one root, no resources');
@r = cmd($c, 'b', 'GETQUOTAROOT inbox');
is($r[0], '* QUOTAROOT "INBOX" ""', 'the mailbox as the server names it');

my ($rc, $out) = $m->ctl('user', 'quota', 'alice@example.org', '100k', '10');
is($rc, 0, 'facteurctl user quota alice@example.org 100k 10') or diag($out);
@r = cmd($c, 'c', 'GETQUOTA ""');
is_deeply(\@r, ['* QUOTA "" (STORAGE 0 100 MESSAGE 0 10)', 'c OK GETQUOTA completed'],
          'the limits are in force at once: STORAGE in KiB, MESSAGE');

my @sizes;
for my $i (1 .. 3) {
    my $msg = "Subject: message $i\r\n\r\n" . ('x' x (1000 * $i)) . "\r\n";
    push @sizes, length $msg;
    @r = append($c, 'd', 'INBOX', $msg);
    like($r[-1], qr/^d OK /, "APPEND of " . length($msg) . ' bytes');
}
my $kib = 0;
$kib += $_ for @sizes;
$kib = int(($kib + 1023) / 1024);
@r = cmd($c, 'e', 'GETQUOTAROOT INBOX');
is_deeply(\@r, ['* QUOTAROOT "INBOX" ""', "* QUOTA \"\" (STORAGE $kib 100 MESSAGE 3 10)",
                'e OK GETQUOTAROOT completed'],
          "after three messages: STORAGE $kib (rounded up), MESSAGE 3") or diag(explain(\@r));
@r = cmd($c, 'f', 'CREATE Caf&AOk-');
@r = append($c, 'f', 'Caf&AOk-', "Subject: x\r\n\r\nx\r\n");
@r = cmd($c, 'f', 'GETQUOTAROOT Caf&AOk-');
is($r[0], '* QUOTAROOT "Caf&AOk-" ""', 'another mailbox has the same root');
like($r[1], qr/^\* QUOTA "" \(STORAGE \d+ 100 MESSAGE 4 10\)$/, 'which counts all the mailboxes');

@r = append($c, 'g', 'INBOX', "Subject: big\r\n\r\n" . ('y' x 120_000) . "\r\n");
like($r[-1], qr/^g NO \[OVERQUOTA\] /, 'an APPEND over the quota: NO [OVERQUOTA]');
@r = cmd($c, 'h', 'GETQUOTA "user.alice"');
like($r[-1], qr/^h NO \[NONEXISTENT\] /, 'GETQUOTA of another root: NO [NONEXISTENT]');
@r = cmd($c, 'i', 'GETQUOTAROOT Nowhere');
like($r[-1], qr/^i NO \[NONEXISTENT\] /, 'GETQUOTAROOT of a missing mailbox: NO [NONEXISTENT]');
@r = cmd($c, 'j', 'SETQUOTA "" (STORAGE 1000000)');
like($r[-1], qr/^j NO \[NOPERM\] /, 'SETQUOTA: NO [NOPERM], quotas are the administrator\'s');
@r = cmd($c, 'k', 'SETQUOTA "" STORAGE');
like($r[-1], qr/^k BAD /, 'SETQUOTA with bad syntax: BAD');
@r = cmd($c, 'l', 'GETQUOTA');
like($r[-1], qr/^l BAD /, 'GETQUOTA without a root: BAD');

my $b = client('bob');
@r = cmd($b, 'a', 'GETQUOTA ""');
is($r[0], '* QUOTA "" ()', 'bob has no limits');
$b->close;
($rc, $out) = $m->ctl('user', 'quota', 'alice@example.org', '0', '0');
is($rc, 0, 'alice\'s limits removed');
@r = cmd($c, 'm', 'GETQUOTA ""');
is($r[0], '* QUOTA "" ()', 'no limits: no resources');
cmd($c, 'n', 'LOGOUT');

# ---- COMPRESS=DEFLATE -------------------------------------------------------------------------

my $PY = <<'EOF';
import socket, ssl, zlib, sys, os, time, base64

class Imap:
    def __init__(self, port, tls=False):
        # a unix socket: its buffers are small and fixed, so a client that
        # does not read soon fills them (over TCP on loopback they grow to MBs)
        s = socket.socket(socket.AF_UNIX if isinstance(port, str) else socket.AF_INET)
        s.settimeout(20)
        s.connect(port if isinstance(port, str) else ('127.0.0.1', port))
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        self.s, self.buf, self.z, self.d = s, b'', None, None
        self.raw_in = self.raw_out = self.plain_in = 0
        self.line()                                   # the greeting

    def deflate(self):
        self.z = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.d = zlib.decompressobj(-15)
        self.buf = self.d.decompress(self.buf)        # what came after the OK

    def pack(self, data):
        if self.z:
            return self.z.compress(data) + self.z.flush(zlib.Z_SYNC_FLUSH)
        return data

    def send(self, data):
        data = self.pack(data)
        self.raw_out += len(data)
        self.s.sendall(data)

    def fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError('connection closed')
        self.raw_in += len(chunk)
        if self.d:
            chunk = self.d.decompress(chunk)
        self.plain_in += len(chunk)
        self.buf += chunk

    def line(self):
        while b'\r\n' not in self.buf:
            self.fill()
        l, self.buf = self.buf.split(b'\r\n', 1)
        return l.decode('utf-8', 'replace')

    def cmd(self, tag, text):
        self.send(('%s %s\r\n' % (tag, text)).encode())
        return self.reply(tag)

    def reply(self, tag):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag + ' '):
                return lines

    def eof(self):
        try:
            while True:
                self.fill()
        except EOFError:
            return True
        except socket.timeout:
            return False

def say(key, value):
    print('%s=%s' % (key, value))
    sys.stdout.flush()
EOF

# the tests print KEY=VALUE lines; (exit code, { KEY => VALUE }, raw output)
sub py {
    my ($script) = @_;
    my ($rc, $out) = $m->python($PY . $script, timeout => 120);
    my %kv = $out =~ /^(\w+)=(.*)$/mg;
    return ($rc, \%kv, $out);
}

my ($prc, $r, $raw) = py(<<'EOF');
c = Imap('%%TESTDIR%%/imap.sock')
say('login', c.cmd('a', 'LOGIN bob@example.org "bob secret"')[-1])
say('caps', [l for l in c.cmd('b', 'CAPABILITY') if l.startswith('* CAPABILITY')][0])
say('compress', c.cmd('c', 'COMPRESS DEFLATE')[-1])
c.deflate()
say('noop', c.cmd('d', 'NOOP')[-1])
say('caps2', [l for l in c.cmd('e', 'CAPABILITY') if l.startswith('* CAPABILITY')][0])
say('again', c.cmd('f', 'COMPRESS DEFLATE')[-1])

# 1500 mailboxes with long names, the CREATEs pipelined in one compressed burst
n = 1500
# random names: the output does not compress much, and overflows the socket
pads = [base64.b32encode(os.urandom(125)).decode() for i in range(n)]
c.send(b''.join(('k%d CREATE "Box/%04d-%s"\r\n' % (i, i, pads[i - 1])).encode()
                for i in range(1, n + 1)))
oks = 0
while True:
    l = c.line()
    if l.startswith('k') and ' OK ' in l:
        oks += 1
    if l.startswith('k%d ' % n):
        break
say('created', oks)

# a long answer, not read for a while: the socket fills
raw0, plain0 = c.raw_in, c.plain_in
c.send(b'g LIST "" "Box/*" RETURN (STATUS (MESSAGES UIDNEXT))\r\n')
time.sleep(0.5)
lines = c.reply('g')
lists = sum(1 for l in lines if l.startswith('* LIST (\\HasNoChildren) "/" "Box/'))
statuses = sum(1 for l in lines if l.startswith('* STATUS "Box/') and l.endswith('(MESSAGES 0 UIDNEXT 1)'))
say('list', '%d %d %s' % (lists, statuses, lines[-1]))
say('ratio', '%d %d' % (c.plain_in - plain0, c.raw_in - raw0))

# a large APPEND: 400 KB, half of it incompressible
body = base64.encodebytes(os.urandom(150000)) + b'z' * 200000
msg = b'Subject: big\r\n\r\n' + body.replace(b'\n', b'\r\n')
c.send(b'h APPEND INBOX {%d+}\r\n' % len(msg) + msg + b'\r\n')
say('append', c.reply('h')[-1])
say('size', '%d %s' % (len(msg), c.cmd('i', 'STATUS INBOX (MESSAGES SIZE)')[0]))

say('logout', ' | '.join(c.cmd('z', 'LOGOUT')))
say('eof', c.eof())
EOF
is($prc, 0, 'the python client ran') or diag($raw);
is($r->{login}, 'a OK [CAPABILITY ' . ($r->{login} =~ /CAPABILITY ([^\]]*)/)[0] . '] Logged in',
   'LOGIN') or diag($raw);
like($r->{caps} // '', qr/ COMPRESS=DEFLATE/, 'COMPRESS=DEFLATE is offered after login');
is($r->{compress}, 'c OK DEFLATE active', 'COMPRESS DEFLATE: OK, uncompressed');
is($r->{noop}, 'd OK NOOP completed', 'a command and its reply, both compressed');
unlike($r->{caps2} // '', qr/COMPRESS=DEFLATE/, 'COMPRESS=DEFLATE is no longer offered');
like($r->{again} // '', qr/^f NO \[COMPRESSIONACTIVE\] /, 'COMPRESS again: NO [COMPRESSIONACTIVE]');
is($r->{created}, 1500, '1500 pipelined CREATEs, compressed');
is($r->{list}, '1500 1500 g OK LIST completed',
   'LIST with STATUS of 1500 mailboxes through a slow reader decompresses whole');
my ($plain, $wire) = split ' ', $r->{ratio} // '0 0';
ok($wire > 0 && $wire * 1.2 < $plain, "the output was compressed ($plain bytes in $wire)")
    or diag($raw);
like($r->{append} // '', qr/^h OK /, 'a 400 KB APPEND, compressed') or diag($raw);
like($r->{size} // '', qr/^(\d+) \* STATUS "INBOX" \(MESSAGES 1 SIZE \1\)$/,
     'it was stored whole (STATUS SIZE)') or diag($raw);
like($r->{logout} // '', qr/^\* BYE .* \| z OK LOGOUT completed$/, 'LOGOUT');
is($r->{eof}, 'True', 'then the server closes');

# a command pipelined behind COMPRESS; IDLE's updates; LOGOUT
($prc, $r, $raw) = py(<<'EOF');
c = Imap(%%PORT_1%%)
c.cmd('a', 'LOGIN bob@example.org "bob secret"')
z = zlib.compressobj(6, zlib.DEFLATED, -15)
c.s.sendall(b'b COMPRESS DEFLATE\r\n' + z.compress(b'c NOOP\r\n') + z.flush(zlib.Z_SYNC_FLUSH))
say('compress', c.line())
c.deflate()
c.z = z
say('pipelined', c.reply('c')[-1])
say('select', c.cmd('d', 'SELECT INBOX')[-1])
c.send(b'e IDLE\r\n')
say('idle', c.line())
other = Imap(%%PORT_1%%)
other.cmd('a', 'LOGIN bob@example.org "bob secret"')
t0 = time.time()
other.send(b'b APPEND INBOX {18+}\r\nSubject: x\r\n\r\nxy\r\n\r\n')
other.reply('b')
say('exists', c.line())
say('delay', '%.3f' % (time.time() - t0))
c.send(b'DONE\r\n')
say('done', c.line())
EOF
is($prc, 0, 'the second python client ran') or diag($raw);
is($r->{compress}, 'b OK DEFLATE active', 'COMPRESS with a compressed NOOP right behind it');
is($r->{pipelined}, 'c OK NOOP completed', 'the pipelined command is read through the inflater');
like($r->{select} // '', qr/^d OK \[READ-WRITE\] /, 'SELECT');
is($r->{idle}, '+ idling', 'IDLE');
is($r->{exists}, '* 2 EXISTS', 'an update from another session comes through the deflater');
ok(($r->{delay} // 9) < 1, "at once ($r->{delay} s): every write is flushed");
is($r->{done}, 'e OK IDLE terminated', 'DONE');

# over TLS: compression under TLS
($prc, $r, $raw) = py(<<'EOF');
c = Imap(%%PORT_2%%, tls=True)
c.cmd('a', 'LOGIN bob@example.org "bob secret"')
say('compress', c.cmd('b', 'COMPRESS DEFLATE')[-1])
c.deflate()
lines = c.cmd('c', 'LIST "" "*" RETURN (STATUS (MESSAGES))')
say('list', '%d %s' % (sum(1 for l in lines if l.startswith('* LIST')), lines[-1]))
say('logout', c.cmd('z', 'LOGOUT')[-1])
EOF
is($prc, 0, 'the TLS python client ran') or diag($raw);
is($r->{compress}, 'b OK DEFLATE active', 'COMPRESS over TLS');
like($r->{list} // '', qr/^15\d\d c OK LIST completed$/, 'LIST of every mailbox, deflated inside TLS');
is($r->{logout}, 'z OK LOGOUT completed', 'LOGOUT');

# a client that sends garbage as deflate data is cut off, and nobody else notices
($prc, $r, $raw) = py(<<'EOF');
c = Imap(%%PORT_1%%)
c.cmd('a', 'LOGIN bob@example.org "bob secret"')
say('compress', c.cmd('b', 'COMPRESS DEFLATE')[-1])
c.s.sendall(b'\xff' * 64 + b'not deflate at all\r\n')
c.d = zlib.decompressobj(-15)
say('eof', c.eof())
d = Imap(%%PORT_1%%)
say('other', d.cmd('a', 'LOGIN bob@example.org "bob secret"')[-1][:4])
EOF
is($r->{eof}, 'True', 'invalid deflate data: the connection is closed') or diag($raw);
is($r->{other}, 'a OK', 'and the server serves others');

$t->done_testing;

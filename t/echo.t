#!/usr/bin/perl

# The core's connection layer, driven through the test-only echo protocol
# (t/modules/echo): line and counted reads, bare LF and over-long lines,
# idle timeouts, backpressure against a client that never reads, implicit
# TLS, STARTTLS and its discard rule, broken handshakes, SNI, and the busy
# refusal when worker_connections are all in use.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

my $t = Facteur::Test->new->has(qw/echo/);
my $ssl = $t->has_feature('ssl');

my $tls_main = $ssl ? <<'EOF' : '';
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
domain sni.test {
    ssl_certificate %%CERT_sni.test%%;
    ssl_certificate_key %%KEY_sni.test%%;
}
EOF
my $tls_server = $ssl ? <<'EOF' : '';
        listen 127.0.0.1:%%PORT_2%% ssl;
        echo_starttls on;
EOF
my $tls_short = $ssl ? <<'EOF' : '';
        listen 127.0.0.1:%%PORT_4%% ssl;
        echo_starttls on;
EOF

$t->write_file_expand('facteur.conf', <<"EOF");
pid facteur.pid;
error_log error.log info;
worker_processes 1;
load_module %%MODULES%%/fa_test_echo_module.so;
$tls_main
echo {
    server {
        listen 127.0.0.1:%%PORT_1%%;
        listen unix:echo.sock;
$tls_server
        echo_max_line 1000;
    }
    server {
        listen 127.0.0.1:%%PORT_3%%;
$tls_short
        echo_greeting "short fuse";
        echo_timeout 1s;
    }
}
EOF
$t->run;

sub sum32 { unpack('%32C*', $_[0]) }

my $GREETING = qr/^\+OK echo ready (\d+)$/;

###############################################################################
# lines

my $c = $t->connect(port => 1);
my $g = $c->check($GREETING, 'greeting');
my ($pid) = ($g // '') =~ $GREETING;
ok($pid && grep({ $_ == $pid } $t->workers), 'the greeting names a worker pid');

$c->chat('hello world', qr/^\+OK echo hello world$/, 'echo');

$c->send("one\r\ntwo\r\nthree\r\n");
is(join('|', map { $c->line // '<none>' } 1 .. 3),
   '+OK echo one|+OK echo two|+OK echo three', 'pipelined commands, answered in order');

$c->send('hel');
ok($c->quiet(0.3), 'no answer to half a line');
$c->send("lo\r\n");
$c->check(qr/^\+OK echo hello$/, 'a line split across writes');

$c->send("bare\n");
$c->check(qr/^-ERR bare LF$/, 'bare LF reported');
$c->chat('after bare', qr/^\+OK echo after bare$/, 'session goes on after a bare LF');

my $max = 'm' x 1000;
$c->chat($max, qr/^\+OK echo m{1000}$/, 'a line of exactly echo_max_line bytes');
$c->chat($max . 'm', qr/^-ERR line too long$/, 'one byte more is too long');

$c->send(('L' x (1024 * 1024)) . "\r\n");
$c->check(qr/^-ERR line too long$/, 'a 1 MB line is too long', 10);
$c->chat('still here', qr/^\+OK echo still here$/, 'the same session keeps working');

# a too-long line pipelined between two good ones
$c->send("before\r\n" . ('x' x 5000) . "\r\nafter\r\n");
is(join('|', map { $c->line // '<none>' } 1 .. 3),
   '+OK echo before|-ERR line too long|+OK echo after',
   'a too-long line between two good ones');

# a unix socket listener, its path relative to the prefix
my $sock = $t->testdir . '/echo.sock';
ok($t->wait_for(sub { -S $sock }, 5), 'listen unix:echo.sock creates PREFIX/echo.sock');
my $u = $t->connect(unix => $sock);
$u->check($GREETING, 'greeting on the unix socket');
$u->chat('via unix', qr/^\+OK echo via unix$/, 'echo on the unix socket');
$u->close;

###############################################################################
# counted mode

my $lit = "ab\r\nQUIT\r\n";           # looks like commands: must be counted, not parsed
$c->send("LITERAL 10\r\n");
$c->send('ab');
ok($c->quiet(0.2), 'literal: no answer after 2 of 10 bytes');
$c->send("\r\nQU");
ok($c->quiet(0.2), 'literal: no answer after 6 of 10 bytes');
$c->send("IT\r\n");
$c->check(qr/^\+OK got 10 bytes sum=${\ sum32($lit)}$/, 'literal split across writes');
$c->chat('after literal', qr/^\+OK echo after literal$/, 'back to line mode');

$c->chat('LITERAL 0', qr/^\+OK got 0 bytes sum=0$/, 'empty literal');

$c->send("LITERAL 3\r\nxyzNEXT\r\n");
$c->check(qr/^\+OK got 3 bytes sum=${\ sum32('xyz')}$/, 'literal and a command in one write');
$c->check(qr/^\+OK echo NEXT$/, 'the command after the literal');

my $big = join '', map { chr(int rand 256) } 1 .. 65536;
$big = $big x 48;                       # 3 MB, across many reads
$c->send('LITERAL ' . length($big) . "\r\n");
for (my $off = 0; $off < length $big; $off += 100_000) {
    $c->send(substr($big, $off, 100_000));
}
$c->check(qr/^\+OK got ${\ length $big} bytes sum=${\ sum32($big)}$/, '3 MB literal', 20);

$c->chat('QUIT', qr/^\+OK bye$/, 'QUIT');
ok($c->wait_eof(5), 'closed after QUIT');

###############################################################################
# idle timeout (1s on port 3)

my $idle = $t->connect(port => 3);
$idle->check(qr/^\+OK short fuse \d+$/, 'greeting of the 1s-timeout server');
my $half = $t->connect(port => 3);
$half->check(qr/^\+OK short fuse/, 'second client');
$half->send('half a comm');
my $busy = $t->connect(port => 1);
$busy->check($GREETING, 'a client on the other server');
$idle->check(qr/^-ERR timeout$/, 'idle client told it timed out', 10);
ok($idle->wait_eof(5), 'and closed');
$half->check(qr/^-ERR timeout$/, 'a half-sent line times out too', 10);
ok($half->wait_eof(5), 'and is closed');
$busy->chat('alive', qr/^\+OK echo alive$/, 'the other client is still served');

###############################################################################
# a client that never reads: the server stops reading it, memory stays bounded

my ($worker) = $t->workers;
my $rss0 = $t->rss($worker) // 0;
my $hog = $t->connect(port => 1);
$hog->check($GREETING, 'greeting of a client that will not read');
my $line = 'E' . ('x' x 900) . "\r\n";    # under echo_max_line
my $flood = $line x 70000;              # 63 MB of commands, more of replies
my $sent = $hog->send_until_blocked($flood, 2);
cmp_ok($sent, '<', length $flood, 'the server stopped reading a client that does not read')
    or diag("it read all $sent bytes");
my $rss1 = $t->rss($worker) // 0;
cmp_ok($rss1 - $rss0, '<', 32 * 1024, 'worker memory stays bounded')
    or diag("RSS grew from $rss0 kB to $rss1 kB after $sent bytes");
my $other = $t->connect(port => 1);
$other->check($GREETING, 'meanwhile another client is greeted');
$other->chat('served', qr/^\+OK echo served$/, 'and served');
$hog->close;
$other->chat('after hog', qr/^\+OK echo after hog$/, 'still served after the hog left');
$other->close;

###############################################################################
# TLS

if ($ssl) {
    my $s = $t->connect(port => 2, ssl => 1);
    ok($s->connected, 'implicit TLS connection') or diag($s->error);
    if ($s->connected) {
        $s->check($GREETING, 'greeting over TLS');
        $s->chat('INFO', qr/^\+OK tls=1 proto=TLSv1\.[23]\b/, 'INFO over TLS');
        is($s->sock->peer_certificate('commonName'), 'localhost', 'default certificate');
        $s->chat('QUIT', qr/^\+OK bye$/, 'QUIT over TLS');
    }

    my $n = $t->connect(port => 2, ssl => 1, sni => 'sni.test');
    ok($n->connected, 'implicit TLS with SNI') or diag($n->error);
    is($n->connected && $n->sock->peer_certificate('commonName'), 'sni.test',
       'SNI: the domain\'s certificate is served for its name');
    $n->check($GREETING, 'greeting over TLS with SNI');
    $n->chat('INFO', qr/^\+OK tls=1 proto=\S+ sni=sni\.test$/, 'the session sees the SNI name');
    $n->close;

    my $o = $t->connect(port => 2, ssl => 1, sni => 'other.test');
    is($o->connected && $o->sock->peer_certificate('commonName'), 'localhost',
       'SNI: an unknown name gets the default certificate');
    $o->close;

    # STARTTLS, with a command pipelined in the same packet: it must be
    # discarded, not run after the handshake
    my $st = $t->connect(port => 1);
    $st->check($GREETING, 'greeting before STARTTLS');
    $st->chat('INFO', qr/^\+OK tls=0 proto=-/, 'INFO before STARTTLS');
    $st->send("STARTTLS\r\nINJECTED\r\n");
    $st->check(qr/^\+OK begin TLS$/, 'STARTTLS accepted');
    ok($st->starttls, 'TLS handshake after STARTTLS') or diag($Facteur::Test::Client::error);
    $st->cmd('INFO');
    $st->check(qr/^\+OK tls=1 proto=TLSv1\.[23]\b/,
               'the first reply after the handshake is for INFO: the pipelined command '
               . 'was discarded');
    $st->chat('STARTTLS', qr/^-ERR/, 'no STARTTLS twice');
    $st->chat('QUIT', qr/^\+OK bye$/, 'QUIT after STARTTLS');

    my $sn = $t->connect(port => 1);
    $sn->check($GREETING, 'greeting before STARTTLS with SNI');
    $sn->chat('STARTTLS', qr/^\+OK begin TLS$/, 'STARTTLS');
    ok($sn->starttls(sni => 'sni.test'), 'handshake with SNI');
    is(eval { $sn->sock->peer_certificate('commonName') }, 'sni.test',
       'STARTTLS honours SNI');
    $sn->close;

    # a client that gives up in the middle of a handshake
    my $cut = $t->connect(port => 2);
    $cut->send("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" . ("\x42" x 20));
    $cut->close;

    # a client that sends garbage instead of a ClientHello
    my $junk = $t->connect(port => 2);
    $junk->send("GET / HTTP/1.0\r\n\r\n" . ("\x00\xff" x 100));
    ok($junk->wait_eof(10), 'garbage instead of a ClientHello: connection closed');
    unlike($junk->buffer, qr/\+OK/, 'and no session was started');

    # and one that sends garbage after STARTTLS
    my $sj = $t->connect(port => 1);
    $sj->check($GREETING, 'greeting');
    $sj->chat('STARTTLS', qr/^\+OK begin TLS$/, 'STARTTLS before garbage');
    $sj->send("this is not TLS\r\n" x 10);
    ok($sj->wait_eof(10), 'garbage after STARTTLS: connection closed');

    # handshakes that never end are cut by the timeout (1s on port 4 and 3)
    my $silent = $t->connect(port => 4);
    my $stall = $t->connect(port => 4);
    $stall->send("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03");
    my $sst = $t->connect(port => 3);
    $sst->check(qr/^\+OK short fuse/, 'greeting before a STARTTLS that stalls');
    $sst->chat('STARTTLS', qr/^\+OK begin TLS$/, 'STARTTLS, then nothing');
    ok($silent->wait_eof(10), 'a TLS client that sends nothing is closed after the timeout');
    ok($stall->wait_eof(10), 'a TLS client that stops mid-ClientHello too');
    ok($sst->wait_eof(10), 'and one that stops after STARTTLS');

    my $after = $t->connect(port => 2, ssl => 1);
    ok($after->connected, 'TLS clients are still served after broken handshakes')
        or diag($after->error);
    $after->check($GREETING, 'greeting after broken handshakes');
    $after->chat('ok?', qr/^\+OK echo ok\?$/, 'and answered');
    $after->close;
} else {
    diag('facteur or this perl has no TLS: TLS tests skipped');
}

my $last = $t->connect(port => 1);
$last->check($GREETING, 'a plain client is served at the end');
$last->chat('bye', qr/^\+OK echo bye$/, 'and answered');
$last->close;

###############################################################################
# more clients than worker_connections: "-ERR busy", the others keep working

my $t2 = Facteur::Test->new;
$t2->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
worker_connections 16;
load_module %%MODULES%%/fa_test_echo_module.so;
echo {
    server {
        listen 127.0.0.1:%%PORT_1%%;
        listen 127.0.0.1:%%PORT_2%% ssl;
        ssl_certificate %%CERT%%;
        ssl_certificate_key %%KEY%%;
    }
}
EOF
$t2->run;

my (@held, $refused);
for my $i (1 .. 40) {
    my $cl = $t2->connect(port => 1);
    last unless $cl->connected;
    my $l = $cl->line(5) // '<none>';
    if ($l =~ /^-ERR busy$/) {
        $refused = $cl;
        last;
    }
    last unless $l =~ /^\+OK echo ready/;
    push @held, $cl;
}
ok($refused, 'a client beyond worker_connections is told "-ERR busy"');
ok($refused && $refused->wait_eof(5), 'and disconnected');
ok(@held >= 1 && @held <= 16, 'clients were served up to worker_connections')
    or diag(scalar(@held) . ' clients were served');
is(scalar(grep { ($_->cmd('still') && $_->line(5) // '') eq '+OK echo still' } @held),
   scalar @held, 'every client already in keeps working');
# a TLS client expects a handshake: it is hung up on, not sent plain text
my $tls_refused = $t2->connect(port => 2);
my $tls_line = $tls_refused->line(5);
ok(!defined $tls_line && $tls_refused->is_eof,
   'a TLS client beyond worker_connections is closed without plain text')
    or diag('got: ' . ($tls_line // '<timeout>'));
$tls_refused->close;

(pop @held)->close;
ok($t2->wait_for(sub {
    my $cl = $t2->connect(port => 1) or return 0;
    my $l = $cl->line(5) // '';
    push @held, $cl if $l =~ /^\+OK/;
    return $l =~ /^\+OK echo ready/;
}, 10), 'a slot freed by a client that left is used again');
$_->close for @held;
$t2->stop_and_check;

$t->done_testing;

#!/usr/bin/perl

# SMTP against hostile and broken clients, over raw sockets: over-long
# lines (and a 10 MB one without LF), bare LF, bare CR and NUL in commands
# and in DATA (smuggling sequences included, with bare_newlines reject and
# normalize), commands out of sequence, early talkers, input pipelined
# behind STARTTLS, malformed paths and parameters, AUTH abuse (bad base64,
# "*", failure delays, max_auth_failures), oversized messages (DATA and
# BDAT), connections cut in the middle of DATA and BDAT, 10,000 pipelined
# RCPTs, 100,000 HELOs, the per-address connection limit, max_errors, and
# a client that never reads.
#
# Each case asserts the exact reply and enhanced status code, and that the
# server keeps serving: a fresh session still delivers, and where it
# matters a session opened before the attack still works during or after
# it.  The worker must survive everything with bounded memory.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;
use Facteur::Mail;
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Select;
use MIME::Base64 qw(encode_base64);
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);

my $t = Facteur::Test->new->has(qw/smtp lmdb ssl/);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
hostname mx.test;
smtp {
    smtp_timeout 5s;
    auth_plaintext on;
    auth_failure_delay 200ms;
    max_auth_failures 3;
    max_message_size 200k;
    max_recipients 50;
    max_errors 10;
    server { listen 127.0.0.1:%%PORT_1%%; }
    server { listen 127.0.0.1:%%PORT_2%%; bare_newlines normalize; max_message_size 2m; }
    server { listen 127.0.0.1:%%PORT_3%%; smtp_greeting_delay 500ms; }
    server { listen 127.0.0.1:%%PORT_4%%; max_connections_per_ip 3; }
    server { listen 127.0.0.1:%%PORT_5%%; smtp_timeout 2s; }
}
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$m->add_user('bob@example.org', 'bob secret');
$m->add_user("j\xc3\xb6rg\@example.org", 'utf8 secret');
$t->run;

# the ports listen before the master has forked its worker
ok($t->wait_for(sub { scalar($t->workers) == 1 }, 5), 'one worker');
my ($worker) = $t->workers;
my $rss0;

# ---- helpers --------------------------------------------------------------

# one reply, multi-line or not: its last line (list context: all lines)
sub reply {
    my ($c, $timeout) = @_;
    my @lines;
    while (defined(my $l = $c->line($timeout))) {
        push @lines, $l;
        last if $l =~ /^\d{3}(?: |$)/;
    }
    return wantarray ? @lines : $lines[-1];
}

# send a line (raw: the caller gives the line end) and check the reply
sub says {
    my ($c, $raw, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $c->send($raw);
    my $r = reply($c);
    like($r // ($c->is_eof ? '<connection closed>' : '<timeout>'), $re, $name);
    return $r;
}

# a session after its greeting and EHLO
sub session {
    my ($port, %opt) = @_;
    my $c = $t->connect(port => $port // 1);
    my $g = reply($c);
    my $e = $c->cmd('EHLO client.test') && reply($c);
    return $c if ($g // '') =~ /^220 / && ($e // '') =~ /^250 /;
    diag("no session on port " . ($port // 1) . ": " . ($g // 'nothing') . ' / '
         . ($e // 'nothing'));
    return $c;
}

# a fresh session delivers a message to bob: the server still serves
my $fresh_n = 0;
sub still_serves {
    my ($name, $port) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $c = session($port);
    $fresh_n++;
    my @r;
    $c->send("MAIL FROM:<check\@remote.test>\r\nRCPT TO:<bob\@example.org>\r\nDATA\r\n");
    push @r, scalar reply($c) for 1 .. 3;
    $c->send("Subject: still serving $fresh_n\r\n\r\nok\r\n.\r\nQUIT\r\n");
    push @r, scalar reply($c), scalar reply($c);
    my $all = join ' | ', map { $_ // 'nothing' } @r;
    like($all, qr/^250 .* \| 250 .* \| 354 .* \| 250 2\.0\.0 Ok: queued as \w+ \| 221 /,
         "a fresh session still delivers ($name)");
    $c->close;
}

# a session opened before an attack still answers during or after it
sub bystander_works {
    my ($c, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $c->send("MAIL FROM:<by\@remote.test>\r\nRCPT TO:<alice\@example.org>\r\nRSET\r\n");
    my $all = join ' | ', map { $_ // 'nothing' } map { scalar reply($c) } 1 .. 3;
    like($all, qr/^250 2\.1\.0 .* \| 250 2\.1\.5 .* \| 250 2\.0\.0 /,
         "a session opened before still works ($name)");
}

sub count { scalar(my @x = $m->mailbox(@_)) }

# a sanitizer build keeps freed memory in quarantine: RSS says nothing there
my $asan = do {
    open my $fh, '<:raw', $t->binary or die;
    local $/;
    index(<$fh>, '__asan_init') >= 0;
};

# the worker still runs and its memory stayed bounded
sub worker_fine {
    my ($name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @now = $t->workers;
    is("@now", $worker, "the worker survived ($name)");
    my $rss = $t->rss($worker) // 0;
    SKIP: {
        skip('memory is not measured in a sanitizer build', 1) if $asan;
        cmp_ok($rss - $rss0, '<', 20 * 1024,
               "the worker's memory stays bounded ($name: ${rss} kB, was ${rss0} kB)");
    }
}

# write everything without blocking while reading what comes back, until
# the server closes, what was read matches $until, or nothing has come for
# $idle seconds; returns what was read (the client's buffer is left alone)
sub converse {
    my ($c, $data, $idle, $until) = @_;
    my $sock = $c->sock;
    my ($off, $in, $last) = (0, '', time);
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';
    for (;;) {
        my $w = $off < length $data ? IO::Select->new($sock) : undef;
        my ($r, $wr) = IO::Select->select(IO::Select->new($sock), $w, undef, 0.2);
        if ($wr && @$wr) {
            my $n = syswrite($sock, $data, 65536, $off);
            if (defined $n) {
                $off += $n;
            } elsif ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
                $off = length $data;               # the server closed: read the rest
            }
        }
        if ($r && @$r) {
            my $n = sysread($sock, my $chunk, 65536);
            if (defined $n && $n == 0) {
                last;
            } elsif (defined $n) {
                $in .= $chunk;
                $last = time;
                last if $until && $off == length $data && $until->($in);
            } elsif ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
                last;                              # reset
            }
        }
        last if time - $last > Facteur::Test::timeout($idle // 5);
    }
    $sock->blocking(1);
    return $in;
}

still_serves('the start');                            # warm: the baseline memory
$rss0 = $t->rss($worker);
my $alice0 = count('alice@example.org');
is($alice0, 0, 'alice starts empty');

# ---- over-long command lines ------------------------------------------------

my $by = session();
my $c = session();
says($c, 'NOOP ' . ('x' x 993) . "\r\n", qr/^250 2\.0\.0 /,
     'a 1000-octet command line (CRLF included) is fine');
says($c, 'NOOP ' . ('x' x 994) . "\r\n", qr/^500 5\.5\.2 /, 'a 1001-octet one: 500 5.5.2');
says($c, 'NOOP ' . ('x' x 1100) . "\r\n", qr/^500 5\.5\.2 /, 'a 1107-octet one: 500 5.5.2');
says($c, "NOOP\r\n", qr/^250 2\.0\.0 /, 'the session continues');
says($c, 'MAIL FROM:<' . ('a' x 5000) . "\@remote.test>\r\n", qr/^500 5\.5\.2 /,
     'a 5 KB command: 500 5.5.2');
says($c, 'NOOP ' . ('y' x 20000) . "\r\n", qr/^500 5\.5\.2 /,
     'a 20 KB command (over the reader buffer): 500 5.5.2');
says($c, "NOOP\r\n", qr/^250 2\.0\.0 /, 'the session continues');

# 10 MB without LF: the reader discards as it goes; the line ends, one 500
my $chunk = 'A' x (1024 * 1024);
my $sent = 0;
for my $i (1 .. 10) {
    $sent += length $chunk if $c->send($chunk);
    bystander_works($by, 'during the 10 MB line') if $i == 5;
}
is($sent, 10 * 1024 * 1024, 'the server takes a 10 MB line without LF');
ok($c->quiet(0.3), 'no reply while the line goes on');
my $rss_line = $t->rss($worker) // 0;
says($c, "\r\n", qr/^500 5\.5\.2 /, 'a 10 MB line without LF: 500 5.5.2 once it ends');
ok($c->quiet(0.3), 'one reply for the whole line');
says($c, "NOOP\r\n", qr/^250 2\.0\.0 /, 'the session continues');
SKIP: {
    skip('memory is not measured in a sanitizer build', 1) if $asan;
    cmp_ok($rss_line - $rss0, '<', 20 * 1024,
           "the 10 MB line is not buffered (worker: $rss_line kB, was $rss0 kB)");
}
$c->close;
bystander_works($by, 'after the 10 MB line');
worker_fine('long lines');
still_serves('long lines');

# ---- bare LF, bare CR and NUL in commands ------------------------------------

$c = session();
says($c, "NOOP\n", qr/^500 5\.5\.2 /, 'bare LF in a command: 500 5.5.2');
says($c, "MAIL FROM:<a\@remote.test>\n", qr/^500 5\.5\.2 /, 'bare LF after MAIL: 500 5.5.2');
says($c, "NOOP\r\n", qr/^250 2\.0\.0 /, 'the session continues');
says($c, "EHLO x\rX-Injected: yes\r\n", qr/^500 5\.5\.2 /,
     'bare CR in a command (it would reach the Received header): 500 5.5.2');
says($c, "NOOP\0x\r\n", qr/^500 5\.5\.2 /, 'NUL in a command: 500 5.5.2');
says($c, "MAIL FROM:<a\0b\@remote.test>\r\n", qr/^500 5\.5\.2 /,
     'NUL in a path: 500 5.5.2');
says($c, "\0\r\n", qr/^500 5\.5\.2 /, 'a lone NUL: 500 5.5.2');
says($c, "MAIL FROM:<a\@remote.test>\r\n", qr/^250 2\.1\.0 /,
     'no transaction was started by the refused lines');
$c->close;
still_serves('bare LF, bare CR and NUL in commands');

# ---- bare LF in DATA, and the smuggling sequences --------------------------

# MAIL, RCPT and DATA; the message; the replies after the data
sub send_message {
    my ($c, $rcpt, $msg) = @_;
    $c->send("MAIL FROM:<s\@remote.test>\r\nRCPT TO:<$rcpt>\r\nDATA\r\n");
    my @r = map { scalar reply($c) } 1 .. 3;
    return @r, 'no 354' unless ($r[2] // '') =~ /^354 /;
    $c->send($msg);
    return @r, scalar reply($c);
}

$c = session();
my @r = send_message($c, 'alice@example.org', "Subject: bare\r\n\r\none\ntwo\r\n.\r\n");
like($r[-1], qr/^554 5\.5\.2 /, 'bare LF in DATA (reject): 554 5.5.2 at the end');
@r = send_message($c, 'alice@example.org', "Subject: bare cr\r\n\r\none\rtwo\r\n.\r\n");
like($r[-1], qr/^554 5\.5\.2 /, 'bare CR in DATA (reject): 554 5.5.2');

my $smuggle1 = "Subject: smuggle lf\r\n\r\nbody\n.\r\nMAIL FROM:<evil\@remote.test>\r\n"
    . "RCPT TO:<alice\@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n";
my $smuggle2 = "Subject: smuggle crlf\r\n\r\nbody\r\n.\nMAIL FROM:<evil\@remote.test>\r\n"
    . "RCPT TO:<alice\@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n";
@r = send_message($c, 'alice@example.org', $smuggle1);
like($r[-1], qr/^554 5\.5\.2 /, '<LF>.<CR><LF> does not end DATA: one message, refused');
ok($c->quiet(0.3), 'no reply to the smuggled commands');
@r = send_message($c, 'alice@example.org', $smuggle2);
like($r[-1], qr/^554 5\.5\.2 /, '<CR><LF>.<LF> does not end DATA: one message, refused');
ok($c->quiet(0.3), 'no reply to the smuggled commands');
says($c, "NOOP\r\n", qr/^250 2\.0\.0 /, 'the session continues');
$c->close;
is(count('alice@example.org'), $alice0, 'nothing stored from refused messages');

# normalize: a bare LF is stored as CRLF; the smuggling still does not work
$c = session(2);
@r = send_message($c, 'alice@example.org', "Subject: normalized\r\n\r\none\ntwo\r\n.\r\n");
like($r[-1], qr/^250 2\.0\.0 /, 'bare LF in DATA (normalize): accepted');
@r = send_message($c, 'alice@example.org', $smuggle1);
like($r[-1], qr/^250 2\.0\.0 /, 'normalize, <LF>.<CR><LF>: one message');
ok($c->quiet(0.3), 'no reply to the smuggled commands');
@r = send_message($c, 'alice@example.org', $smuggle2);
like($r[-1], qr/^250 2\.0\.0 /, 'normalize, <CR><LF>.<LF>: one message');
ok($c->quiet(0.3), 'no reply to the smuggled commands');
$c->close;
my @inbox = $m->mailbox('alice@example.org');
is(scalar @inbox, 3, 'three messages stored, no smuggled fourth');
like($inbox[0] // '', qr/Subject: normalized\n\none\ntwo\n\z/, 'the normalized message');
like($inbox[1] // '', qr/Subject: smuggle lf\n\nbody\n\nMAIL FROM:<evil\@remote\.test>\nRCPT TO:<alice\@example\.org>\nDATA\nSubject: smuggled\n\nevil\n\z/,
     'the smuggled commands are part of the message');
like($inbox[2] // '', qr/Subject: smuggle crlf\n\nbody\n\nMAIL FROM:<evil\@remote\.test>\n/,
     'the smuggled commands are part of the message');

# stored as CRLF: in the Maildir export, W= (stored size) is S= plus one per line
my $md = $t->testdir . '/.maildir';
$m->ctl('export', 'maildir', 'alice@example.org', $md);
my @files = sort glob("$md/cur/*");
my ($file) = grep { my $x = $t->read_file($_); $x =~ /Subject: normalized/ } @files;
if ($file && $file =~ /,S=(\d+),W=(\d+)/) {
    my ($s, $w) = ($1, $2);
    my $lines = () = $t->read_file($file) =~ /\n/g;
    is($w, $s + $lines, 'the bare LF was stored as CRLF (every line ends in CRLF)');
} else {
    fail('the bare LF was stored as CRLF: no exported file');
}
still_serves('bare LF in DATA');

# ---- NUL bytes in message data ------------------------------------------------

$c = session();
@r = send_message($c, 'alice@example.org',
                  "Subject: nul\r\n\r\nbefore\0after\r\n\0\0\0\r\n.\r\n");
like($r[-1], qr/^250 2\.0\.0 /, 'a message with NUL bytes is accepted');
$c->close;
@inbox = $m->mailbox('alice@example.org');
like($inbox[-1] // '', qr/Subject: nul\n\nbefore\0after\n\0\0\0\n\z/,
     'NUL bytes are stored intact');

# ---- commands out of sequence ------------------------------------------------

$c = $t->connect(port => 1);
reply($c);
says($c, "MAIL FROM:<a\@remote.test>\r\n", qr/^503 5\.5\.1 /, 'MAIL before EHLO: 503 5.5.1');
says($c, "EHLO client.test\r\n", qr/^250 /, 'EHLO');
says($c, "RCPT TO:<alice\@example.org>\r\n", qr/^503 5\.5\.1 /, 'RCPT before MAIL: 503 5.5.1');
says($c, "DATA\r\n", qr/^503 5\.5\.1 /, 'DATA before MAIL: 503 5.5.1');
says($c, "MAIL FROM:<a\@remote.test>\r\n", qr/^250 2\.1\.0 /, 'MAIL');
says($c, "DATA\r\n", qr/^503 5\.5\.1 /, 'DATA before RCPT: 503 5.5.1');
says($c, "MAIL FROM:<b\@remote.test>\r\n", qr/^503 5\.5\.1 /, 'nested MAIL: 503 5.5.1');
says($c, "RCPT TO:<nobody\@example.org>\r\n", qr/^550 5\.1\.1 /, 'unknown recipient: 550 5.1.1');
says($c, "DATA\r\n", qr/^554 5\.5\.1 /, 'DATA with no valid recipients: 554 5.5.1');
says($c, "RSET\r\n", qr/^250 2\.0\.0 /, 'RSET');
says($c, "BDAT 5 LAST\r\nhello", qr/^503 5\.5\.1 /, 'BDAT before MAIL: 503 5.5.1 (chunk skipped)');
says($c, "NOOP\r\n", qr/^250 2\.0\.0 /, 'the session continues');
$c->close;
still_serves('out of sequence');

# ---- talking before the greeting -----------------------------------------------

$c = $t->connect(port => 3);
$c->send("EHLO early.test\r\n");
my $start = time;
$c->check(qr/^554 5\.5\.0 /, 'an early talker gets 554 5.5.0');
ok($c->wait_eof(3), 'and the connection is closed');
$c = $t->connect(port => 3);
$start = time;
$c->check(qr/^220 mx\.test /, 'a client that waits gets the greeting');
cmp_ok(time - $start, '>=', 0.45, 'after smtp_greeting_delay');
says($c, "EHLO patient.test\r\n", qr/^250 /, 'and is served');
$c->close;
still_serves('early talker', 3);

# ---- input pipelined behind STARTTLS is discarded ----------------------------

$c = session();
$c->send("STARTTLS\r\nMAIL FROM:<injected\@remote.test>\r\nRCPT TO:<alice\@example.org>\r\n");
$c->check(qr/^220 2\.0\.0 /, 'STARTTLS: 220 2.0.0');
ok($c->starttls, 'the TLS handshake succeeds') or diag($Facteur::Test::Client::error);
my @ehlo = ($c->cmd('EHLO tls.test') && reply($c));
like($ehlo[0] // '', qr/^250[- ]mx\.test$/,
     'the first answer over TLS is to EHLO: the pipelined commands were dropped')
    or diag(explain(\@ehlo));
says($c, "MAIL FROM:<tls\@remote.test>\r\n", qr/^250 2\.1\.0 /,
     'MAIL over TLS is not "nested": no transaction came from the plaintext');
says($c, "DATA\r\n", qr/^503 5\.5\.1 /, 'and has no recipient from the plaintext');
ok($c->quiet(0.3), 'nothing else is answered');
$c->close;

# ---- malformed paths and parameters ---------------------------------------------

for my $case (['<a@remote.test', '501 5\.1\.7', 'no closing bracket'],
              ['a@remote.test', '501 5\.1\.7', 'no brackets'],
              ['<a@@remote.test>', '501 5\.1\.7', 'two @'],
              ['<a..b@remote.test>', '501 5\.1\.7', 'two dots in the local part'],
              ['<a@-remote.test>', '501 5\.1\.7', 'a bad domain'],
              ['<a@remote.test>x', '501 5\.1\.7', 'junk after the path'],
              ['<' . ('a' x 65) . '@remote.test>', '501 5\.1\.7', 'a 65-octet local part'],
              ['<a@remote.test> SIZE=abc', '501 5\.5\.4', 'SIZE=abc'],
              ['<a@remote.test> SIZE=', '501 5\.5\.4', 'SIZE='],
              ['<a@remote.test> BODY=FOO', '501 5\.5\.4', 'BODY=FOO'],
              ['<a@remote.test> =x', '501 5\.5\.4', '=x'])
{
    $c = session();                  # one each: max_errors stays far
    says($c, "MAIL FROM:$case->[0]\r\n", qr/^$case->[1] /, "MAIL, $case->[2]: $case->[1]");
    $c->close;
}
$c = session();
says($c, "MAIL FROM:<a\@remote.test> FOO=bar\r\n", qr/^555 5\.5\.4 /,
     'MAIL, an unknown parameter: 555 5.5.4');
says($c, "MAIL FROM:<j\xc3\xb6rg\@remote.test>\r\n", qr/^553 5\.6\.7 /,
     'MAIL, an 8-bit address without SMTPUTF8: 553 5.6.7');
says($c, "MAIL FROM:<\"x SMTPUTF8 \xc3\xa9\"\@remote.test>\r\n", qr/^553 5\.6\.7 /,
     'MAIL, "SMTPUTF8" inside the path is not the parameter: 553 5.6.7');
says($c, "MAIL FROM:<j\xc3\xb6rg\@remote.test> SMTPUTF8\r\n", qr/^250 2\.1\.0 /,
     'MAIL, an 8-bit address with SMTPUTF8: 250');
says($c, "RCPT TO:<j\xc3\xb6rg\@example.org>\r\n", qr/^250 2\.1\.5 /,
     'RCPT, an 8-bit address with SMTPUTF8: 250');
$c->send("RSET\r\n");
reply($c);
says($c, "MAIL FROM:<a\@remote.test>\r\n", qr/^250 /, 'MAIL');
for my $case (['<alice@example.org', '501 5\.1\.3', 'no closing bracket'],
              ['<alice@example..org>', '501 5\.1\.3', 'an empty label'],
              ['<>', '501 5\.1\.3', 'a null path'],
              ['<j' . "\xc3\xb6" . 'rg@example.org>', '553 5\.6\.7', 'an 8-bit address'],
              ['<alice@example.org> FOO=1', '555 5\.5\.4', 'an unknown parameter'],
              ['<alice@example.org> ORCPT=rfc822;a+zz', '501 5\.5\.4', 'bad xtext in ORCPT'])
{
    says($c, "RCPT TO:$case->[0]\r\n", qr/^$case->[1] /, "RCPT, $case->[2]: $case->[1]");
}
$c->close;
still_serves('malformed paths');

# ---- AUTH -------------------------------------------------------------------

my $bad_plain = encode_base64("\0alice\@example.org\0wrong", '');
$c = session();
says($c, "AUTH PLAIN !!!notbase64\r\n", qr/^501 5\.5\.2 /, 'AUTH PLAIN with bad base64: 501 5.5.2');
says($c, "AUTH PLAIN\r\n", qr/^334 ?$/, 'AUTH PLAIN without a response: 334');
says($c, "*\r\n", qr/^501 5\.7\.0 /, '"*" aborts: 501');
says($c, "AUTH LOGIN\r\n", qr/^334 /, 'AUTH LOGIN: 334');
says($c, "*\r\n", qr/^501 5\.7\.0 /, '"*" aborts AUTH LOGIN: 501');
says($c, "AUTH PLAIN\r\n", qr/^334 ?$/, 'AUTH PLAIN: 334');
says($c, "%%%\r\n", qr/^501 5\.5\.2 /, 'a response in bad base64: 501 5.5.2');

$by = session();
my @took;
for my $i (1 .. 3) {
    $start = time;
    # the third attempt has a command pipelined behind it: never answered
    $c->send("AUTH PLAIN $bad_plain\r\n" . ($i == 3 ? "NOOP\r\n" : ''));
    if ($i == 2) {
        # the password check and the failure delay do not hold the worker:
        # another session is answered before this one
        says($by, "NOOP\r\n", qr/^250 /, 'another session is served during the delay');
        ok(!IO::Select->new($c->sock)->can_read(0) && $c->buffer eq '',
           'before the failure is answered');
    }
    my $r = reply($c);
    push @took, time - $start;
    like($r // '', qr/^535 5\.7\.8 /, "wrong password $i: 535 5.7.8");
}
cmp_ok($took[0], '>=', 0.19, "the first failure is delayed ($took[0] s)");
cmp_ok($took[1], '>=', 0.39, "the second failure is delayed twice as long ($took[1] s)");
$c->check(qr/^421 4\.7\.0 /, 'after max_auth_failures: 421 4.7.0');
ok($c->wait_eof(2), 'and the connection is closed');
unlike($c->buffer, qr/^250/m, 'the command pipelined behind the last AUTH is not answered')
    or diag($c->buffer);
bystander_works($by, 'after the AUTH failures');
still_serves('AUTH failures');

# a good login still works
$c = session();
says($c, 'AUTH PLAIN ' . encode_base64("\0alice\@example.org\0alice secret", '') . "\r\n",
     qr/^235 2\.7\.0 /, 'a good login: 235 2.7.0');
$c->close;

# ---- message size ----------------------------------------------------------------

$c = session();
says($c, "MAIL FROM:<a\@remote.test> SIZE=300000\r\n", qr/^552 5\.3\.4 /,
     'SIZE over max_message_size: 552 5.3.4 at MAIL');
my $big = "Subject: big\r\n\r\n" . (('z' x 998) . "\r\n") x 300 . ".\r\n";
@r = send_message($c, 'alice@example.org', $big);
like($r[-1], qr/^552 5\.3\.4 /, 'a 300 KB message without SIZE: 552 5.3.4 at the end');
$c->send("MAIL FROM:<a\@remote.test> SIZE=1000\r\nRCPT TO:<alice\@example.org>\r\nDATA\r\n");
@r = map { scalar reply($c) } 1 .. 3;
$c->send($big);
like(reply($c) // '', qr/^552 5\.3\.4 /, 'a 300 KB message that said SIZE=1000: 552 5.3.4');
says($c, "NOOP\r\n", qr/^250 2\.0\.0 /, 'the session continues');
$c->close;
@inbox = $m->mailbox('alice@example.org');
is(scalar(grep { /Subject: big/ } @inbox), 0, 'nothing stored');
still_serves('message size');

# ---- connections cut in the middle of DATA and BDAT --------------------------

my $n_alice = count('alice@example.org');
$c = session();
$c->send("MAIL FROM:<a\@remote.test>\r\nRCPT TO:<alice\@example.org>\r\nDATA\r\n");
reply($c) for 1 .. 3;
$c->send("Subject: cut\r\n\r\nhalf a message\r\n");
$c->close;
$c = session(2);                                     # 400 KB: the spool is a file
$c->send("MAIL FROM:<a\@remote.test>\r\nRCPT TO:<alice\@example.org>\r\nDATA\r\n");
reply($c) for 1 .. 3;
$c->send("Subject: cut big\r\n\r\n" . ('w' x 998 . "\r\n") x 400);
$c->close;
$c = session();
$c->send("MAIL FROM:<a\@remote.test>\r\nRCPT TO:<alice\@example.org>\r\n");
reply($c) for 1 .. 2;
$c->send("BDAT 1000 LAST\r\nSubject: cut bdat\r\n\r\nonly part");
$c->close;
$c = session();
$c->send("MAIL FROM:<a\@remote.test>\r\nRCPT TO:<alice\@example.org>\r\n");
reply($c) for 1 .. 2;
says($c, "BDAT 30\r\nSubject: bdat\r\n\r\nfirst chunk\r\n", qr/^250 2\.0\.0 30 octets/,
     'a first BDAT chunk');
$c->send("BDAT 100 LAST\r\nsecond");
$c->close;
ok($t->wait_for(sub { $t->read_file('error.log') =~ /in the middle of a message/ }, 3),
   'the server saw the cut');
still_serves('connections cut in DATA and BDAT');
is(count('alice@example.org'), $n_alice, 'nothing stored from the cut messages');
worker_fine('cut connections');

# ---- 10,000 pipelined RCPTs --------------------------------------------------------

$by = session();
$c = session();
my $out = converse($c, "MAIL FROM:<a\@remote.test>\r\n"
                       . "RCPT TO:<alice\@example.org>\r\n" x 10000, 5);
my @lines = split /\r\n/, $out;
is(scalar(grep { /^250 2\.1\.5 / } @lines), 50, 'the first max_recipients (50) are accepted');
is(scalar(grep { /^452 4\.5\.3 / } @lines), 10, 'then 452 4.5.3, up to max_errors');
like($lines[-1] // '', qr/^421 4\.7\.0 /, 'then 421 4.7.0 and the connection is closed');
is(scalar @lines, 62, 'nothing else is answered') or diag(join "\n", @lines[-5 .. -1]);
bystander_works($by, '10,000 RCPTs');
worker_fine('10,000 RCPTs');
still_serves('10,000 RCPTs');

# ---- commands repeated without end ------------------------------------------------

# every HELO names the client anew: the old name must not stay behind
$c = session();
my $helo = 'h' x 250;
$out = converse($c, "HELO $helo.test\r\n" x 100000 . "NOOP\r\n", 5,
               sub { $_[0] =~ /^250 2\.0\.0 Ok\r\n\z/m });
is(scalar(() = $out =~ /^250 mx\.test\r$/mg), 100000, '100,000 HELOs answered');
worker_fine('100,000 HELOs, in the session');
says($c, "QUIT\r\n", qr/^221 2\.0\.0 /, 'QUIT');

# a BDAT message over the size limit, in two chunks
$c = session();
$c->send("MAIL FROM:<a\@remote.test>\r\nRCPT TO:<alice\@example.org>\r\n");
reply($c) for 1 .. 2;
my $bdat = "Subject: big bdat\r\n\r\n" . 'b' x 300000;
says($c, 'BDAT ' . length($bdat) . "\r\n$bdat", qr/^(?:250 2\.0\.0|552 5\.3\.4) /,
     'a BDAT chunk over the limit');
says($c, "BDAT 4 LAST\r\nend\n", qr/^552 5\.3\.4 /, 'BDAT over the limit: 552 5.3.4');
says($c, "NOOP\r\n", qr/^250 2\.0\.0 /, 'the session continues');
$c->close;

# ---- unknown commands and max_errors -------------------------------------------------

$c = session();
says($c, "FOO bar\r\n", qr/^500 5\.5\.2 /, 'an unknown command: 500 5.5.2');
says($c, "EXPN list\r\n", qr/^502 5\.5\.1 /, 'EXPN: 502 5.5.1');
$c->send("XYZZY\r\n" x 8);
my @rr = map { scalar reply($c) } 1 .. 8;
is(scalar(grep { /^500 5\.5\.2 / } @rr), 8, 'eight more: 500 5.5.2 each');
$c->check(qr/^421 4\.7\.0 /, 'max_errors reached: 421 4.7.0');
ok($c->wait_eof(2), 'and the connection is closed');
still_serves('max_errors');

# ---- max_connections_per_ip ---------------------------------------------------------

$by = session();                                      # on another server: not counted
my @held = map { $t->connect(port => 4) } 1 .. 3;
like(reply($_) // '', qr/^220 /, 'a connection under the limit is greeted') for @held;
$c = $t->connect(port => 4);
$c->check(qr/^421 4\.7\.0 /, 'the 4th concurrent connection: 421 4.7.0');
ok($c->wait_eof(2), 'and it is closed');
$held[0]->close;
my $again;
ok($t->wait_for(sub {
    my $x = $t->connect(port => 4);
    my $g = reply($x) // '';
    $again = $x if $g =~ /^220 /;
    return $again;
}, 3), 'a slot given back is free again');
$again->send("EHLO c.test\r\n") if $again;
like($again ? reply($again) // '' : '', qr/^250 /, 'and serves');
$_->close for grep { defined } @held, $again;
bystander_works($by, 'connection limit');
still_serves('connection limit', 4);

# ---- a client that never reads its replies -----------------------------------------

sub timeouts { scalar(() = $t->read_file('error.log') =~ /client timed out/g) }

$by = session();
$c = session(5);                                      # smtp_timeout 2s
$c->sock->setsockopt(SOL_SOCKET, SO_RCVBUF, 4096);  # the server's replies back up soon
my $noops = "NOOP\r\n" x (4 * 1024 * 1024);          # 24 MB of commands
my $written = $c->send_until_blocked($noops, 0.3);
cmp_ok($written, '<', length $noops,
       "the server stops reading from a client that does not read ($written bytes taken)");
$start = time;
bystander_works($by, 'a client that does not read');
cmp_ok(time - $start, '<', 2, 'without delay');
$by->close;
my $timeouts = timeouts();
still_serves('a client that does not read');
worker_fine('a client that does not read');
# usually "while waiting for the client to read"; but when both sides'
# windows are shut, TCP's persist timers may leave the server without
# input for the timeout, and it times out waiting for a command
ok($t->wait_for(sub { timeouts() > $timeouts }, 6), 'the client that does not read times out');
ok($c->wait_eof(3), 'and its connection is closed');
$c->close;

still_serves('the end');
is(count('bob@example.org'), $fresh_n, 'every check message was stored');
worker_fine('the end');

$t->done_testing;

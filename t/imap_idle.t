#!/usr/bin/perl

# IMAP IDLE: "+ idling" and DONE; a message delivered over SMTP (python3
# smtplib) reaches an idling session as "* n EXISTS" within a second
# (measured); one delivered over LMTP by the other worker too; flag
# changes, expunges and a burst of appends by another session; IDLE
# without a selected mailbox; anything but DONE ends it with BAD; the
# autologout timer ends a session that idles too long.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/imap smtp lmdb/);
system('python3 -c "import smtplib" 2>/dev/null') == 0
    or plan(skip_all => 'python3 with smtplib is needed');

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 2;
auth_directory var/auth;
storage lmdb { path var/mail; }
hostname mx.test;
imap {
    auth_plaintext on;
    default_folders off;
    server { listen 127.0.0.1:%%PORT_1%%; }
    server { listen 127.0.0.1:%%PORT_4%%; imap_timeout 1s; }
}
smtp { server { listen 127.0.0.1:%%PORT_2%%; } }
lmtp { listen 127.0.0.1:%%PORT_3%%; }
EOF
mkdir $t->testdir . '/var';
my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$t->run;

sub client {
    my (%opt) = @_;
    my $c = $t->connect(port => $opt{port} // 1);
    $c->check(qr/^\* OK /, 'greeting');
    my @r = cmd($c, 'l0', 'LOGIN alice@example.org "alice secret"');
    like($r[-1], qr/^l0 OK /, 'logged in');
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

# the worker process that serves a client's connection (from /proc)
sub worker_of {
    my ($c) = @_;
    my ($cport, $sport) = ($c->sock->sockport, $c->sock->peerport);
    my $inode;
    open my $fh, '<', '/proc/net/tcp' or return undef;
    while (<$fh>) {
        my @f = split ' ';
        next unless @f > 9 && $f[1] =~ /:([0-9A-F]{4})$/;
        my $local = hex $1;
        next unless $f[2] =~ /:([0-9A-F]{4})$/;
        if ($local == $sport && hex($1) == $cport) {
            $inode = $f[9];
            last;
        }
    }
    return undef unless $inode;
    for my $pid ($t->workers) {
        opendir my $d, "/proc/$pid/fd" or next;
        for my $fd (readdir $d) {
            my $l = readlink "/proc/$pid/fd/$fd" // next;
            return $pid if $l eq "socket:[$inode]";
        }
    }
    return undef;
}

# lines until one matches RE (or TIMEOUT): (the line, the time it came, the lines before)
sub wait_line {
    my ($c, $re, $timeout) = @_;
    my @seen;
    my $end = time + Facteur::Test::timeout($timeout);
    while ((my $left = $end - time) > 0) {
        my $l = $c->line($left);
        last unless defined $l;
        return ($l, time, @seen) if $l =~ $re;
        push @seen, $l;
    }
    return (undef, time, @seen);
}

# ---- IDLE without a mailbox, and its end -------------------------------------------------

my $c = client();
my @r;
$c->cmd('b IDLE');
$c->check(qr/^\+ idling$/, 'IDLE: "+ idling"');
ok($c->quiet(0.3), 'nothing else while idling');
$c->cmd('DONE');
$c->check(qr/^b OK IDLE terminated$/, 'DONE: tagged OK');
$c->cmd('c IDLE');
$c->check(qr/^\+ idling$/, 'IDLE again');
$c->cmd('NOOP');
$c->check(qr/^c BAD /, 'anything but DONE: BAD, the IDLE ends');
@r = cmd($c, 'd', 'NOOP');
is($r[-1], 'd OK NOOP completed', 'and the session reads commands again');
$c->cmd('e IDLE');
$c->check(qr/^\+ idling$/, 'IDLE');
$c->cmd('done');
$c->check(qr/^e OK IDLE terminated$/, 'done in lower case ends it too');
$c->send("e2 IDLE\r\nDONE\r\n");
$c->check(qr/^\+ idling$/, 'IDLE and DONE in one packet');
$c->check(qr/^e2 OK IDLE terminated$/, 'both are read');
@r = cmd($c, 'f', 'IDLE now');
is($r[-1], 'f BAD IDLE takes no arguments', 'IDLE with an argument: BAD');

# ---- a message over SMTP ---------------------------------------------------------------------

@r = cmd($c, 'g', 'SELECT INBOX');
like(join("\n", @r), qr/^\* 0 EXISTS$/m, 'SELECT INBOX: empty');
$c->cmd('h IDLE');
$c->check(qr/^\+ idling$/, 'IDLE in INBOX');

my $script = $t->testdir . '/smtp.py';
$t->write_file($script, <<"EOF");
import smtplib, time
s = smtplib.SMTP('127.0.0.1', ${\$t->port(2)}, timeout=10)
s.ehlo('client.test')
t0 = time.time()
s.sendmail('sender\@remote.test', ['alice\@example.org'], b'Subject: over smtp\\r\\n\\r\\nhello\\r\\n')
t1 = time.time()
s.quit()
print('%.6f %.6f' % (t0, t1))
EOF
open(my $py, '-|', "python3 '$script' 2>&1") or die "python3: $!";
my ($line, $when, @before) = wait_line($c, qr/^\* \d+ EXISTS$/, 10);
my $pyout = join '', <$py>;
close $py;
my ($t0, $t1) = $pyout =~ /^([\d.]+) ([\d.]+)$/m;
is($line, '* 1 EXISTS', 'the idling session hears "* 1 EXISTS"') or diag($pyout, @before);
ok(defined $t0 && $when - $t0 < 1,
   sprintf('within a second of the message being sent (%.3f s from MAIL FROM, %.3f s after '
           . 'the 250)', $when - ($t0 // 0), $when - ($t1 // 0))) or diag($pyout);
note(sprintf('SMTP to EXISTS: %.1f ms', 1000 * ($when - ($t0 // 0))));

# ---- a message over LMTP, delivered by the other worker -----------------------------------

my $idle_worker = worker_of($c);
ok($idle_worker, "the idling session is served by worker $idle_worker");
# Which worker accepts is the kernel's choice (EPOLLEXCLUSIVE): it favours a
# worker that waits in epoll, so the idling one is kept busy (a helper
# session on it runs 20,000 pipelined NOOPs) while LMTP connects.
my ($l, $other);
my $exists = 1;                             # what the idling session was told so far
for my $try (1 .. 20) {
    my $h = $t->connect(port => 1);
    $h->line(5);
    if ((worker_of($h) // 0) == $idle_worker) {
        $h->send("n NOOP\r\n" x 20000);
    }
    $l = $t->connect(port => 3);
    my $greeting = $l->line(5) // '';
    my $w = worker_of($l);
    $h->close;
    if ($greeting =~ /^220 / && $w && $w != $idle_worker) {
        $other = $w;
        last;
    }
    $l->close;
}
SKIP: {
    skip 'every LMTP connection went to the idling worker', 3 unless $other;
    pass("an LMTP connection on the other worker ($other)");
    $l->send("LHLO client.test\r\n");
    my ($ok) = wait_line($l, qr/^250 /, 5);
    $l->send("MAIL FROM:<sender\@remote.test>\r\nRCPT TO:<alice\@example.org>\r\nDATA\r\n");
    ($ok) = wait_line($l, qr/^354 /, 5);
    my $sent = time;
    $l->send("Subject: over lmtp\r\n\r\nhello\r\n.\r\n");
    ($line, $when) = wait_line($c, qr/^\* \d+ EXISTS$/, 10);
    is($line, '* 2 EXISTS', 'the idling session hears "* 2 EXISTS"');
    $exists = 2;
    ok($when - $sent < 1, sprintf('within a second (%.3f s)', $when - $sent));
    $l->send("QUIT\r\n");
    $l->close;
}

# ---- changes by another session --------------------------------------------------------------

my $d = client();
@r = cmd($d, 'a', 'SELECT INBOX');
@r = cmd($d, 'b', 'STORE 1 +FLAGS (\Seen)');
($line) = wait_line($c, qr/^\* 1 FETCH /, 5);
is($line, '* 1 FETCH (UID 1 FLAGS (\Seen))', 'a flag set elsewhere: FETCH FLAGS');
@r = cmd($d, 'c', 'STORE 1 +FLAGS.SILENT (\Deleted)');
@r = cmd($d, 'd', 'EXPUNGE');
like($r[-1], qr/^d OK /, 'another session expunges message 1');
($line, $when, @before) = wait_line($c, qr/^\* \d+ EXPUNGE$/, 5);
is($line, '* 1 EXPUNGE', 'the idling session hears "* 1 EXPUNGE"') or diag(@before);
$exists--;

# a burst: 20 appends, each told (perhaps several in one update)
sub append_cmd {
    my ($tag, $msg) = @_;
    return "$tag APPEND INBOX {" . length($msg) . "+}\r\n$msg\r\n";
}
my $burst = join '', map { append_cmd("x$_", "Subject: $_\r\n\r\nx\r\n") } 1 .. 20;
$d->send($burst);
my $oks = 0;
while (defined(my $x = $d->line(10))) {
    $oks++ if $x =~ /^x\d+ OK /;
    last if $x =~ /^x20 /;
}
is($oks, 20, '20 appends in another session');
my $last = 0;
$exists += 20;
my $end = time + Facteur::Test::timeout(5);
while ($last < $exists && time < $end) {
    my $x = $c->line(2) // last;
    $last = $1 if $x =~ /^\* (\d+) EXISTS$/;
}
is($last, $exists, "the idling session ends at \"* $exists EXISTS\"");
ok($c->quiet(0.3), 'and hears nothing more');
$c->cmd('DONE');
$c->check(qr/^h OK IDLE terminated$/, 'DONE');
@r = cmd($c, 'i', 'NOOP');
is($r[-1], 'i OK NOOP completed', 'nothing was left to tell');
@r = cmd($d, 'e', 'LOGOUT');

# a change while the client is between DONE and its next IDLE is told at once then
$c->cmd('j IDLE');
$c->check(qr/^\+ idling$/, 'IDLE');
$c->cmd('DONE');
$c->check(qr/^j OK IDLE terminated$/, 'DONE at once');
$d = client();
$d->send(append_cmd('a', "Subject: z\r\n\r\nx\r\n"));
($line) = wait_line($d, qr/^a /, 5);
like($line, qr/^a OK /, 'another session appends');
$d->close;
$c->cmd('k IDLE');
($line, $when, @before) = wait_line($c, qr/^\* \d+ EXISTS$/, 5);
$exists++;
is($line, "* $exists EXISTS", 'a change made before IDLE is told when IDLE starts')
    or diag(@before);
is($before[0], '+ idling', 'after "+ idling"');
$c->cmd('DONE');
($line) = wait_line($c, qr/^k /, 5);
is($line, 'k OK IDLE terminated', 'DONE');
@r = cmd($c, 'l', 'LOGOUT');
like($r[-1], qr/^l OK /, 'LOGOUT');

# ---- autologout ----------------------------------------------------------------------------------

my $e = client(port => 4);
cmd($e, 'a', 'SELECT INBOX');
$e->cmd('b IDLE');
$e->check(qr/^\+ idling$/, 'IDLE where imap_timeout is 1s');
my $t2 = time;
($line) = wait_line($e, qr/^\* BYE /, 5);
like($line // '', qr/^\* BYE Autologout/, 'the autologout timer ends an IDLE that lasts too long');
ok(time - $t2 >= 0.9, 'after the timeout');
ok($e->wait_eof(5), 'and the connection is closed');

$t->done_testing;

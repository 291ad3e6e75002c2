#!/usr/bin/perl

# The POP3 session over real sockets: the greeting, CAPA in both states,
# USER/PASS and AUTH PLAIN (with and without an initial response), STLS
# (and the discard of what was pipelined behind it), passwords refused
# before TLS unless auth_plaintext is on; STAT, LIST, UIDL, RETR (byte for
# byte: dot-stuffing, a bare LF in the store sent as CRLF, a last line
# without its end), TOP, DELE, RSET, NOOP, QUIT in both states;
# PIPELINING (the login included); the response codes [AUTH], [IN-USE],
# [LOGIN-DELAY] and [SYS/TEMP]; deletions only at QUIT (a dropped
# connection deletes nothing, a client that vanishes right after QUIT
# gets them all) and heard by IMAP; UIDL stable across sessions and made
# of UID and UIDVALIDITY (checked against IMAP's); pop3_expire 0 and 30;
# pop3_login_delay (measured); pop3_timeout; messages IMAP expunges
# during a session; the IN-USE lock across two workers, let go at a QUIT
# and at a dropped connection, and off with pop3_lock off; counters and
# log lines; and bad input: commands before login, unknown commands,
# RETR 0 and 99999999999, DELE twice, TOP without lines, over-long lines,
# NUL, AUTH PLAIN garbage (memory bounded), repeated failed logins
# (delayed, measured, then cut off with one answer), commands after QUIT,
# clients that never read (200,000 commands, a 30 MB RETR: memory
# bounded) -- each answered with -ERR while another session is served
# meanwhile.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MIME::Base64 qw(encode_base64);
use IO::Select;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF SO_LINGER pack_sockaddr_in inet_aton);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/pop3 imap lmdb ssl metrics/);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 2;
auth_directory var/auth;
storage lmdb { path var/mail; }
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
metrics { listen 127.0.0.1:%%PORT_10%%; }
imap { auth_plaintext on; server { listen 127.0.0.1:%%PORT_9%%; } }
pop3 {
    auth_failure_delay 200ms;
    max_auth_failures 3;
    server { listen 127.0.0.1:%%PORT_1%%; listen 127.0.0.1:%%PORT_2%% ssl; }
    server { listen 127.0.0.1:%%PORT_3%%; auth_plaintext on; }
    server { listen 127.0.0.1:%%PORT_4%%; auth_plaintext on; pop3_lock off; }
    server { listen 127.0.0.1:%%PORT_5%%; auth_plaintext on; pop3_expire 0; }
    server { listen 127.0.0.1:%%PORT_6%%; auth_plaintext on; pop3_login_delay 2s; }
    server { listen 127.0.0.1:%%PORT_8%%; auth_plaintext on; pop3_expire 30; }
    server { listen 127.0.0.1:%%PORT_11%%; auth_plaintext on; pop3_timeout 1s; }
    server {
        listen 127.0.0.1:%%PORT_7%%;
        auth_plaintext on;
        pop3_lock_path %%TESTDIR%%/not-a-directory/locks;
    }
}
EOF
mkdir $t->testdir . '/var';
$t->write_file('not-a-directory', "a file\n");
my $m = Facteur::Mail->new($t);
$m->add_user("$_\@example.org", "$_ secret") for qw(alice bob carol dave erin frank gina);
$t->run;

# ---- helpers ------------------------------------------------------------------

# a POP3 client on PORT n, its greeting checked
sub client {
    my ($port, %opt) = @_;
    my $c = $t->connect(port => $port, %opt);
    my $l = $c->line;
    like($l // '<nothing>', qr/^\+OK Facteur ready\.$/, "greeting on $port")
        unless $opt{quiet};
    return $c;
}

# the multi-line part of a reply, raw (CRLFs, dot-stuffing), without ".\r\n"
sub block {
    my ($c, $timeout) = @_;
    my $deadline = time + Facteur::Test::timeout($timeout // 10);
    for (;;) {
        if (substr($c->{buf}, 0, 3) eq ".\r\n") {
            substr($c->{buf}, 0, 3, '');
            return '';
        }
        my $i = index($c->{buf}, "\r\n.\r\n");
        if ($i >= 0) {
            my $b = substr($c->{buf}, 0, $i + 2, '');
            substr($c->{buf}, 0, 3, '');
            return $b;
        }
        return undef unless $c->_fill($deadline);
    }
}

# a command with a multi-line answer: (first line, raw block)
sub multi {
    my ($c, $cmd) = @_;
    $c->cmd($cmd);
    my $l = $c->line(10) // '<nothing>';
    return ($l, $l =~ /^\+OK/ ? block($c) // '<cut>' : undef);
}

sub lines { my $b = shift // ''; return split /\r\n/, $b }
sub unstuff { my $b = shift // return undef; $b =~ s/^\.//mg; return $b }

# USER and PASS; the answer to PASS
sub login {
    my ($c, $user, $pass) = @_;
    $c->cmd("USER $user");
    my $l = $c->line // '<nothing>';
    return $l unless $l =~ /^\+OK/;
    $c->cmd("PASS " . ($pass // ($user =~ /^(\w+)/)[0] . ' secret'));
    return $c->line // '<nothing>';
}

# a logged-in session on port n
sub session {
    my ($port, $user) = @_;
    my $c = client($port, quiet => 1);
    my $l = login($c, $user);
    like($l, qr/^\+OK Logged in/, "$user logs in on $port");
    return $c;
}

# QUIT: the reply, and the connection closes
sub quit {
    my ($c) = @_;
    $c->cmd('QUIT');
    my $l = $c->line // '<nothing>';
    $c->wait_eof(5);
    return $l;
}

# IMAP: a logged-in raw client; cmd_imap sends a command, returns its lines
my $itag = 'i000';
sub imap {
    my ($user) = @_;
    my $c = $t->connect(port => 9);
    $c->line;
    imap_cmd($c, "LOGIN $user \"" . ($user =~ /^(\w+)/)[0] . ' secret"');
    return $c;
}

sub imap_cmd {
    my ($c, $line) = @_;
    my $tag = ++$itag;
    $c->cmd("$tag $line");
    my @lines;
    while (defined(my $l = $c->line(10))) {
        push @lines, $l;
        last if $l =~ /^\Q$tag\E /;
    }
    return @lines;
}

sub imap_append {
    my ($c, $box, $msg) = @_;
    my $tag = ++$itag;
    $c->send("$tag APPEND $box {" . length($msg) . "+}\r\n$msg\r\n");
    my $l;
    do { $l = $c->line(10) } while defined $l && $l !~ /^\Q$tag\E /;
    return $l // '<nothing>';
}

# the worker serving a client: its server-side socket found in /proc
sub worker_of {
    my ($c) = @_;
    my ($mine, $theirs) = ($c->sock->sockport, $c->sock->peerport);
    my $inode;
    open my $fh, '<', '/proc/net/tcp' or return undef;
    while (<$fh>) {
        my @f = split ' ';
        next unless @f > 9 && $f[1] =~ /:([0-9A-F]{4})$/ && hex($1) == $theirs
            && $f[2] =~ /:([0-9A-F]{4})$/ && hex($1) == $mine;
        $inode = $f[9];
    }
    return undef unless $inode;
    for my $w ($t->workers) {
        for my $fd (glob "/proc/$w/fd/*") {
            my $to = readlink($fd) // next;
            return $w if $to eq "socket:[$inode]";
        }
    }
    return undef;
}

# a sanitizer build keeps freed memory in quarantine: RSS says nothing there
my $asan = Facteur::Test::_file_contains($t->binary, '__asan_init');
sub memory_ok {
    my ($ok, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    SKIP: {
        skip 'AddressSanitizer keeps freed memory in quarantine', 1 if $asan;
        ok($ok, $name);
    }
}

# ---- the messages --------------------------------------------------------------

my %msg = (
    dots => "From: bob\@remote.test\r\nSubject: dots\r\n\r\nfirst line\r\n.starts with a dot\r\n"
        . "..two dots\r\n.\r\n. \r\nlast\r\n",
    bare => "From: bob\@remote.test\nSubject: bare LF\n\nline one\nline two\n.dot\n\nend\n",
    top => "From: bob\@remote.test\r\nSubject: top\r\nX-Long: a\r\n b\r\n\r\n"
        . join('', map { "body $_\r\n" } 1 .. 10),
    noeol => "From: bob\@remote.test\r\nSubject: no end\r\n\r\nno end of line",
);
my @order = qw(dots bare top noeol);
my %want = (
    dots => "From: bob\@remote.test\r\nSubject: dots\r\n\r\nfirst line\r\n..starts with a dot\r\n"
        . "...two dots\r\n..\r\n.. \r\nlast\r\n",
    bare => "From: bob\@remote.test\r\nSubject: bare LF\r\n\r\nline one\r\nline two\r\n..dot\r\n"
        . "\r\nend\r\n",
    top => $msg{top},
    noeol => "$msg{noeol}\r\n",
);

my $ic = imap('alice@example.org');
for my $k (@order) {
    like(imap_append($ic, 'INBOX', $msg{$k}), qr/^\S+ OK /, "IMAP APPEND of \"$k\"");
}

# ---- before login ----------------------------------------------------------------

my $c = client(1);
my ($l, $b) = multi($c, 'CAPA');
is($l, '+OK Capability list follows', 'CAPA');
is_deeply([lines($b)], [qw(TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING STLS),
                        'IMPLEMENTATION Facteur'],
          'CAPA before TLS on a plain port: STLS, no USER, no SASL');
$c->chat('USER alice@example.org',
         qr/^-ERR \[AUTH\] Plaintext authentication is disabled without TLS$/,
         'USER before TLS: -ERR [AUTH]');
$c->chat('AUTH PLAIN ' . encode_base64("\0alice\@example.org\0alice secret", ''),
         qr/^-ERR \[AUTH\] /, 'AUTH PLAIN before TLS: -ERR [AUTH]');
$c->chat('STAT', qr/^-ERR /, 'STAT before login: -ERR');
$c->chat('RETR 1', qr/^-ERR /, 'RETR before login: -ERR');
$c->chat('XYZZY', qr/^-ERR /, 'an unknown command: -ERR');
$c->chat('PASS alice secret', qr/^-ERR /, 'PASS without USER: -ERR');

# STLS with commands pipelined behind it: discarded
$c->send("STLS\r\nUSER alice\@example.org\r\n");
$c->check(qr/^\+OK Begin TLS/, 'STLS');
ok($c->starttls, 'the TLS handshake');
($l, $b) = multi($c, 'CAPA');
is_deeply([lines($b)], [qw(TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING USER),
                        'SASL PLAIN', 'IMPLEMENTATION Facteur'],
          'CAPA after STLS: USER and SASL PLAIN, no STLS');
$c->chat('PASS alice secret', qr/^-ERR USER first$/,
         'the USER pipelined behind STLS was discarded');
$c->chat('STLS', qr/^-ERR TLS is already active$/, 'STLS twice: -ERR');
$c->chat('USER alice@example.org', qr/^\+OK /, 'USER over TLS');
$c->chat('PASS alice secret', qr/^\+OK Logged in, 4 messages \(\d+ octets\)$/,
         'PASS over TLS: logged in');
($l, $b) = multi($c, 'CAPA');
is_deeply([lines($b)], [qw(TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING),
                        'IMPLEMENTATION Facteur'],
          'CAPA in the TRANSACTION state: no USER, SASL or STLS');
is(quit($c), '+OK Logging out', 'QUIT without changes');

# QUIT before login
$c = client(1);
is(quit($c), '+OK Logging out', 'QUIT in the AUTHORIZATION state');
ok($c->is_eof, 'and the connection is closed');

# implicit TLS: AUTH PLAIN with an initial response, then without one
$c = client(2, ssl => 1);
$c->chat('AUTH PLAIN ' . encode_base64("\0alice\@example.org\0alice secret", ''),
         qr/^\+OK Logged in, 4 messages/, 'AUTH PLAIN with an initial response');
quit($c);
$c = client(2, ssl => 1);
$c->chat('AUTH PLAIN', qr/^\+ ?$/, 'AUTH PLAIN without: the server asks');
$c->chat(encode_base64("alice\@example.org\0alice\@example.org\0alice secret", ''),
         qr/^\+OK Logged in/, 'the response (with the same authzid): logged in');
quit($c);
$c = client(2, ssl => 1);
$c->chat('AUTH PLAIN', qr/^\+ ?$/, 'AUTH PLAIN again');
$c->chat('*', qr/^-ERR /, '"*" aborts it');
($l, $b) = multi($c, 'AUTH');
is_deeply([lines($b)], ['PLAIN'], 'AUTH without a mechanism lists PLAIN');
$c->chat('AUTH CRAM-MD5', qr/^-ERR /, 'an unknown mechanism: -ERR');
$c->chat('AUTH PLAIN ' . encode_base64("bob\@example.org\0alice\@example.org\0alice secret", ''),
         qr/^-ERR \[AUTH\] /, 'acting as someone else: -ERR [AUTH]');
$c->close;

# ---- a session: every command ------------------------------------------------------

$c = session(3, 'alice@example.org');
my $stat = $c->chat('STAT', qr/^\+OK 4 (\d+)$/, 'STAT');
my ($total) = $stat =~ /(\d+)$/;
($l, $b) = multi($c, 'LIST');
is($l, '+OK Scan list follows', 'LIST');
my @list = lines($b);
is(scalar @list, 4, 'LIST: four messages');
like($list[$_], qr/^@{[$_ + 1]} \d+$/, "LIST: message @{[$_ + 1]}") for 0 .. 3;
my %size = map { split / / } @list;
my $sum = 0;
$sum += $_ for values %size;
is($sum, $total, 'LIST: the sizes add up to STAT\'s');
is($size{1}, length $msg{dots}, 'LIST: the size of a CRLF message is its stored size');
$c->chat('LIST 3', qr/^\+OK 3 @{[$size{3}]}$/, 'LIST n');
($l, $b) = multi($c, 'UIDL');
my @uidl = lines($b);
like($_, qr/^\d [0-9a-f]{16}$/, "UIDL: $_") for @uidl;
my %uidl = map { split / / } @uidl;
$c->chat('UIDL 2', qr/^\+OK 2 @{[$uidl{2}]}$/, 'UIDL n');

for my $i (1 .. 4) {
    my $k = $order[$i - 1];
    ($l, $b) = multi($c, "RETR $i");
    like($l, qr/^\+OK \d+ octets$/, "RETR $i ($k)");
    is($b, $want{$k}, "RETR $i ($k): byte for byte, dot-stuffed, CRLF")
        or diag(explain($b));
}
is(unstuff($b = (multi($c, 'RETR 2'))[1]) =~ s/\r\n/\n/gr, $msg{bare},
   'the bare LF message, un-stuffed, with LF again: as stored');

($l, $b) = multi($c, 'TOP 3 2');
like($l, qr/^\+OK /, 'TOP 3 2');
is($b, "From: bob\@remote.test\r\nSubject: top\r\nX-Long: a\r\n b\r\n\r\nbody 1\r\nbody 2\r\n",
   'TOP 3 2: the header, the blank line, two lines');
($l, $b) = multi($c, 'TOP 3 0');
is($b, "From: bob\@remote.test\r\nSubject: top\r\nX-Long: a\r\n b\r\n\r\n",
   'TOP 3 0: the header and the blank line');
($l, $b) = multi($c, 'TOP 2 1');
is($b, "From: bob\@remote.test\r\nSubject: bare LF\r\n\r\nline one\r\n",
   'TOP 2 1 of the bare LF message: CRLF, the header ends at its blank line');
($l, $b) = multi($c, 'TOP 4 0');
is($b, "From: bob\@remote.test\r\nSubject: no end\r\n\r\n", 'TOP 4 0');
($l, $b) = multi($c, 'TOP 4 5');
is($b, $want{noeol}, 'TOP 4 5: the last line gets its end');
($l, $b) = multi($c, 'TOP 3 1000');
is($b, $msg{top}, 'TOP 3 1000: the whole message');
($l, $b) = multi($c, 'TOP 1 1');
is($b, "From: bob\@remote.test\r\nSubject: dots\r\n\r\nfirst line\r\n", 'TOP 1 1');
($l, $b) = multi($c, 'TOP 1 2');
is($b, "From: bob\@remote.test\r\nSubject: dots\r\n\r\nfirst line\r\n..starts with a dot\r\n",
   'TOP 1 2: dot-stuffed');
$c->chat('TOP 1', qr/^-ERR /, 'TOP without lines: -ERR');
$c->chat('TOP 1 x', qr/^-ERR /, 'TOP with bad lines: -ERR');
$c->chat('TOP 9 1', qr/^-ERR /, 'TOP of a missing message: -ERR');

$c->chat('DELE 2', qr/^\+OK /, 'DELE 2');
$c->chat('DELE 2', qr/^-ERR /, 'DELE 2 again: -ERR');
$c->chat('RETR 2', qr/^-ERR /, 'RETR of a deleted message: -ERR');
$c->chat('LIST 2', qr/^-ERR /, 'LIST of a deleted message: -ERR');
$c->chat('UIDL 2', qr/^-ERR /, 'UIDL of a deleted message: -ERR');
$c->chat('STAT', qr/^\+OK 3 @{[$total - $size{2}]}$/, 'STAT leaves the deleted message out');
($l, $b) = multi($c, 'LIST');
is_deeply([map { (split / /)[0] } lines($b)], [1, 3, 4], 'LIST leaves it out, numbers kept');
($l, $b) = multi($c, 'UIDL');
is_deeply([map { (split / /)[0] } lines($b)], [1, 3, 4], 'UIDL too');
$c->chat('RSET', qr/^\+OK /, 'RSET');
$c->chat('STAT', qr/^\+OK 4 $total$/, 'RSET: the message is back');
$c->chat('NOOP', qr/^\+OK /, 'NOOP');
$c->chat('RETR 0', qr/^-ERR /, 'RETR 0: -ERR');
$c->chat('RETR 5', qr/^-ERR /, 'RETR past the end: -ERR');
$c->chat('RETR 99999999999', qr/^-ERR /, 'RETR 99999999999: -ERR');
$c->chat('RETR -1', qr/^-ERR /, 'RETR -1: -ERR');
$c->chat('RETR 1x', qr/^-ERR /, 'RETR 1x: -ERR');
$c->chat('RETR', qr/^-ERR /, 'RETR without a number: -ERR');
$c->chat('DELE 0', qr/^-ERR /, 'DELE 0: -ERR');
$c->chat('USER alice@example.org', qr/^-ERR /, 'USER after login: -ERR');
$c->chat('STLS', qr/^-ERR /, 'STLS after login: -ERR');
$c->chat('XYZZY', qr/^-ERR /, 'an unknown command after login: -ERR');
$c->chat('stat', qr/^\+OK 4 /, 'commands are case-insensitive');

# ---- PIPELINING ---------------------------------------------------------------------

$c->send("STAT\r\nLIST 1\r\nUIDL 4\r\nNOOP\r\nRETR 4\r\nTOP 3 1\r\nRETR 0\r\nLIST\r\n"
         . "DELE 4\r\nSTAT\r\nRSET\r\nSTAT\r\n");
$c->check(qr/^\+OK 4 $total$/, 'pipelined: STAT');
$c->check(qr/^\+OK 1 @{[$size{1}]}$/, 'pipelined: LIST 1');
$c->check(qr/^\+OK 4 @{[$uidl{4}]}$/, 'pipelined: UIDL 4');
$c->check(qr/^\+OK /, 'pipelined: NOOP');
$c->check(qr/^\+OK /, 'pipelined: RETR 4');
is(block($c), $want{noeol}, 'pipelined: the message');
$c->check(qr/^\+OK /, 'pipelined: TOP 3 1');
is(block($c), "From: bob\@remote.test\r\nSubject: top\r\nX-Long: a\r\n b\r\n\r\nbody 1\r\n",
   'pipelined: its lines');
$c->check(qr/^-ERR /, 'pipelined: RETR 0');
$c->check(qr/^\+OK /, 'pipelined: LIST');
is(scalar(lines(block($c))), 4, 'pipelined: the scan list');
$c->check(qr/^\+OK /, 'pipelined: DELE 4');
$c->check(qr/^\+OK 3 /, 'pipelined: STAT');
$c->check(qr/^\+OK /, 'pipelined: RSET');
$c->check(qr/^\+OK 4 /, 'pipelined: STAT, in order');

# the login pipelined too
my $d = client(4);
$d->send("USER alice\@example.org\r\nPASS alice secret\r\nSTAT\r\nUIDL 1\r\nQUIT\r\n");
$d->check(qr/^\+OK /, 'pipelined from the start: USER');
$d->check(qr/^\+OK Logged in/, 'PASS');
$d->check(qr/^\+OK 4 $total$/, 'STAT');
$d->check(qr/^\+OK 1 [0-9a-f]{16}$/, 'UIDL 1');
$d->check(qr/^\+OK Logging out$/, 'QUIT');
ok($d->wait_eof(5), 'and the connection is closed');

# 500 commands in one write
$c->send(join '', map { "LIST " . (1 + $_ % 4) . "\r\n" } 0 .. 499);
my $ok = 0;
for my $i (0 .. 499) {
    my $n = 1 + $i % 4;
    $ok++ if ($c->line // '') eq "+OK $n $size{$n}";
}
is($ok, 500, '500 pipelined commands, 500 replies in order');

# ---- UIDL: stable, and made of UID and UIDVALIDITY -----------------------------------

is(quit($c), '+OK Logging out', 'QUIT');
my @r = imap_cmd($ic, 'STATUS INBOX (UIDVALIDITY)');
my ($uidvalidity) = $r[0] =~ /UIDVALIDITY (\d+)/;
imap_cmd($ic, 'EXAMINE INBOX');
@r = imap_cmd($ic, 'UID FETCH 1:* (UID)');
my @uids = map { /^\* \d+ FETCH \(UID (\d+)\)/ ? $1 : () } @r;
is(scalar @uids, 4, 'IMAP: four UIDs');
is_deeply([map { $uidl{$_} } 1 .. 4], [map { sprintf '%08x%08x', $_, $uidvalidity } @uids],
          'UIDL is the UID and UIDVALIDITY as 8 hex digits each (IMAP\'s)');
$c = session(3, 'alice@example.org');
($l, $b) = multi($c, 'UIDL');
is_deeply({map { split / / } lines($b)}, \%uidl, 'UIDL is the same in a second session');

# ---- deletions: only at QUIT ------------------------------------------------------------

# an IMAP session on INBOX hears them after the QUIT
imap_cmd($ic, 'SELECT INBOX');
$c->chat('DELE 2', qr/^\+OK /, 'DELE 2');
$c->chat('DELE 4', qr/^\+OK /, 'DELE 4');
@r = imap_cmd($ic, 'NOOP');
unlike(join("\n", @r), qr/EXPUNGE/, 'IMAP: nothing expunged before the QUIT');
$d = session(4, 'alice@example.org');    # pop3_lock off: a second session
$d->chat('STAT', qr/^\+OK 4 /, 'another session still sees the 4 messages before QUIT');
quit($d);
is(quit($c), '+OK Logging out, 2 messages deleted', 'QUIT: 2 messages deleted');
@r = imap_cmd($ic, 'NOOP');
is(scalar(grep { /^\* \d EXPUNGE$/ } @r), 2, 'IMAP: the two EXPUNGEs at the next NOOP')
    or diag(explain(\@r));
$c = session(3, 'alice@example.org');
$c->chat('STAT', qr/^\+OK 2 /, 'two messages left');
($l, $b) = multi($c, 'UIDL');
is_deeply([lines($b)], ["1 $uidl{1}", "2 $uidl{3}"], 'UIDL of the rest unchanged');

# a dropped connection deletes nothing, and lets go of the lock
$c->chat('DELE 1', qr/^\+OK /, 'DELE 1, then the connection drops');
$c->chat('DELE 2', qr/^\+OK /, 'DELE 2');
$c->close;
$c = client(3);
for (1 .. 50) {
    $l = login($c, 'alice@example.org');
    last if $l =~ /^\+OK/;
    sleep 0.1;
}
like($l, qr/^\+OK Logged in, 2 messages/,
     'after the drop: logged in again (the lock is free), nothing deleted');

# a client that says QUIT and vanishes at once: the deletions it asked
# for are done, not left half done (\Deleted stored, never expunged).
# It reads nothing (a 4 KB receive buffer, 200 KB of replies pending) and
# resets the connection as the first reply comes, while the QUIT's store
# of 1,000 messages runs.
$t->write_file('gina.mbox', join '', map { "From bob\@remote.test Mon Jan  1 10:00:00 2024\n"
                                           . "Subject: g$_\n\nbody\n\n" } 1 .. 6000);
my ($rc, $out) = $m->ctl('import', 'mbox', 'gina@example.org', $t->testdir . '/gina.mbox');
is($rc, 0, '6,000 messages imported for gina') or diag($out);
my $gi = imap('gina@example.org');
my $half_done = 0;
for my $try (1 .. 6) {
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
    connect($s, pack_sockaddr_in($t->port(3), inet_aton('127.0.0.1'))) or die "connect: $!";
    my $in = '';
    my $reply = sub {
        while ($in !~ /\n/) { sysread($s, $in, 4096, length $in) or return '' }
        $in =~ s/^([^\n]*\n)//;
        return $1;
    };
    $reply->();
    syswrite($s, "USER gina\@example.org\r\n");
    $reply->();
    syswrite($s, "PASS gina secret\r\n");
    $reply->() =~ /^\+OK/ or next;
    my $cmds = ("NOOP\r\n" x 10000) . join('', map { "DELE $_\r\n" } 1 .. 1000) . "QUIT\r\n";
    for (my $off = 0; $off < length $cmds; ) {
        my $n = syswrite($s, $cmds, length($cmds) - $off, $off) or last;
        $off += $n;
    }
    IO::Select->new($s)->can_read(5);
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    close $s;
    # the session is over when its lock is free
    my $g = client(3, quiet => 1);
    for (1 .. 100) {
        last if login($g, 'gina@example.org') =~ /^\+OK/;
        select undef, undef, undef, 0.05;
    }
    quit($g);
    imap_cmd($gi, 'SELECT INBOX');
    my @r = imap_cmd($gi, 'SEARCH DELETED');
    if ($r[0] =~ /^\* SEARCH \d/) {
        $half_done++;
        imap_cmd($gi, 'EXPUNGE');
    }
}
is($half_done, 0, 'a QUIT whose client vanished: never left half done');
my ($gina_left) = (imap_cmd($gi, 'STATUS INBOX (MESSAGES)'))[0] =~ /MESSAGES (\d+)/;
$gi->close;

# ---- IN-USE ------------------------------------------------------------------------------

my $s = client(3);
like(login($s, 'alice@example.org'), qr/^-ERR \[IN-USE\] /, 'a second session: -ERR [IN-USE]');
$s->chat('NOOP', qr/^-ERR /, 'still in AUTHORIZATION');
like(login($s, 'alice@example.org', 'wrong'), qr/^-ERR \[AUTH\] /,
     'a wrong password for a locked mailbox: [AUTH], not [IN-USE]');
$s->close;

# on the other worker too.  Which worker accepts is the kernel's choice
# (EPOLLEXCLUSIVE): it favours one waiting in epoll, so the lock holder's
# worker is kept busy by a helper session's 20,000 pipelined STATs
my $holder = worker_of($c);
ok($holder, "the lock holder is served by worker $holder");
my $other;
for my $try (1 .. 20) {
    my $h = client(4, quiet => 1);
    login($h, 'bob@example.org');
    $h->send("STAT\r\n" x 20000) if (worker_of($h) // 0) == $holder;
    my $o = client(3, quiet => 1);
    my $w = worker_of($o) // 0;
    $h->close;
    if ($w && $w != $holder) {
        $other = $o;
        last;
    }
    $o->close;
}
SKIP: {
    skip 'every connection went to the lock holder\'s worker', 2 unless $other;
    like(login($other, 'alice@example.org'), qr/^-ERR \[IN-USE\] /,
         'a session on the other worker: -ERR [IN-USE]');
    like(login($other, 'bob@example.org'), qr/^\+OK Logged in/,
         'the same connection logs in as another user');
    quit($other);
}
is(quit($c), '+OK Logging out', 'QUIT lets go of the lock');
$c = session(3, 'alice@example.org');
quit($c);

# pop3_lock off: two sessions at once
$c = session(4, 'alice@example.org');
$d = session(4, 'alice@example.org');
quit($d);
quit($c);

# ---- pop3_expire 0: what was retrieved goes at QUIT ----------------------------------------

$ic->close;
$ic = imap('erin@example.org');
imap_append($ic, 'INBOX', "Subject: e$_\r\n\r\nbody $_\r\n") for 1 .. 3;
$c = session(5, 'erin@example.org');
($l, $b) = multi($c, 'CAPA');
ok((grep { $_ eq 'EXPIRE 0' } lines($b)), 'CAPA: EXPIRE 0');
multi($c, 'RETR 2');
multi($c, 'TOP 3 0');
is(quit($c), '+OK Logging out, 1 messages deleted', 'QUIT: the retrieved message is deleted');
imap_cmd($ic, 'SELECT INBOX');
@r = imap_cmd($ic, 'FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
is_deeply([map { /^Subject: (\S+)/ ? $1 : () } @r], [qw(e1 e3)],
          'the one sent by TOP and the one not sent are kept');
$c = session(3, 'erin@example.org');
($l, $b) = multi($c, 'CAPA');
ok(!(grep { /^EXPIRE/ } lines($b)), 'CAPA on a server without pop3_expire: no EXPIRE');
multi($c, 'RETR 1');
is(quit($c), '+OK Logging out', 'there, RETR deletes nothing');
$ic->close;

# pop3_expire 30: what was retrieved and arrived 30 days ago or more
$t->write_file('old.mbox', join '', map { "From bob\@remote.test Mon Jan  1 10:00:00 2024\n"
                                          . "Subject: old $_\n\nold\n\n" } 1 .. 2);
($rc, $out) = $m->ctl('import', 'mbox', 'erin@example.org', $t->testdir . '/old.mbox');
is($rc, 0, 'two messages of 2024 imported') or diag($out);
$c = session(8, 'erin@example.org');
($l, $b) = multi($c, 'CAPA');
ok((grep { $_ eq 'EXPIRE 30' } lines($b)), 'CAPA: EXPIRE 30');
$c->chat('STAT', qr/^\+OK 4 /, 'four messages: two new, two old');
multi($c, "RETR $_") for 1, 3;
multi($c, 'TOP 4 0');
is(quit($c), '+OK Logging out, 1 messages deleted',
   'QUIT: only the old message that was retrieved is deleted');
$c = session(8, 'erin@example.org');
($l, $b) = multi($c, 'TOP 3 0');
like($b, qr/^Subject: old 2\r$/m, 'the old one only sent by TOP is kept');
is(quit($c), '+OK Logging out', 'QUIT');

# ---- another writer: IMAP expunges what POP3 has listed -----------------------------------

$ic = imap('frank@example.org');
imap_append($ic, 'INBOX', "Subject: f$_\r\n\nbody $_\r\n") for 1 .. 3;
$c = session(3, 'frank@example.org');
$c->chat('DELE 1', qr/^\+OK /, 'DELE 1');
imap_cmd($ic, 'SELECT INBOX');
@r = imap_cmd($ic, 'STORE 1:2 +FLAGS.SILENT (\Deleted)');
@r = imap_cmd($ic, 'EXPUNGE');
is(scalar(grep { /EXPUNGE$/ } @r), 2, 'IMAP expunges messages 1 and 2 meanwhile');
$c->chat('RETR 2', qr/^-ERR /, 'RETR of a message expunged by IMAP: -ERR');
$c->chat('NOOP', qr/^\+OK /, 'the session goes on');
($l, $b) = multi($c, 'RETR 3');
like($b, qr/^Subject: f3/, 'the others can still be read');
like(quit($c), qr/^\+OK Logging out/, 'QUIT with a DELE of an expunged message: +OK');
@r = imap_cmd($ic, 'FETCH 1:* (FLAGS)');
is(scalar(grep { /FETCH \(/ } @r), 1, 'IMAP: the third message is still there') or diag(explain(\@r));
$ic->close;

# ---- LOGIN-DELAY --------------------------------------------------------------------------

$c = client(6);
($l, $b) = multi($c, 'CAPA');
ok((grep { $_ eq 'LOGIN-DELAY 2' } lines($b)), 'CAPA: LOGIN-DELAY 2');
my $t0 = time;
like(login($c, 'carol@example.org'), qr/^\+OK Logged in/, 'carol logs in');
quit($c);
$c = client(6);
like(login($c, 'carol@example.org'), qr/^-ERR \[LOGIN-DELAY\] /,
     'again at once: -ERR [LOGIN-DELAY]');
my $t1;
for (1 .. 60) {
    sleep 0.1;
    $l = login($c, 'carol@example.org');
    if ($l =~ /^\+OK/) {
        $t1 = time;
        last;
    }
}
ok(defined $t1 && $t1 - $t0 >= 1.95, 'the next login is accepted 2 s after the last, not before')
    or diag(defined $t1 ? $t1 - $t0 : 'never accepted');
quit($c);

# ---- [SYS/TEMP] ------------------------------------------------------------------------------

$c = client(7);
like(login($c, 'dave@example.org'), qr/^-ERR \[SYS\/TEMP\] /,
     'the lock cannot be taken: -ERR [SYS/TEMP]');
$c->chat('NOOP', qr/^-ERR /, 'and the session is still in AUTHORIZATION');
$c->close;
$t->expect_log(qr/pop3: open\(.*not-a-directory/);

# ---- bad input ------------------------------------------------------------------------------

$d = session(3, 'dave@example.org');       # served while the others misbehave
$c = client(3);
$c->send('NOOP ' . ('x' x 2000) . "\r\n");
$c->check(qr/^-ERR Line too long$/, 'a line over 1024: -ERR');
$c->send('USER ' . ('x' x 100000) . "\r\n");
$c->check(qr/^-ERR Line too long$/, 'a 100 KB line: -ERR');
$c->send("NO\0OP\r\n");
$c->check(qr/^-ERR /, 'a NUL in a line: -ERR');
$c->send("USER alice\@example.org\0\r\n");
$c->check(qr/^-ERR /, 'a NUL in USER: -ERR');
$c->send("\r\n");
$c->check(qr/^-ERR /, 'an empty line: -ERR');
$c->chat('AUTH PLAIN', qr/^\+ ?$/, 'AUTH PLAIN, then a response with a NUL');
$c->send("AGFsaWNl\0\r\n");
$c->check(qr/^-ERR /, 'a NUL in the SASL response: -ERR');
($l, $b) = multi($c, 'CAPA');
is($l, '+OK Capability list follows', 'and the exchange is over: the next line is a command');
$c->chat('AUTH PLAIN !!!!', qr/^-ERR \[AUTH\] /, 'AUTH PLAIN with bad base64: -ERR [AUTH]');
$c->chat('AUTH PLAIN ' . encode_base64('no nul at all', ''), qr/^-ERR \[AUTH\] /,
         'AUTH PLAIN without NULs: -ERR [AUTH]');
$d->chat('NOOP', qr/^\+OK /, 'another session is served meanwhile');

# failed logins: delayed, more each time, then the connection is closed
$t0 = time;
like(login($c, 'alice@example.org', 'wrong1'), qr/^-ERR \[AUTH\] Authentication failed$/,
     'a wrong password: -ERR [AUTH]');
my $first = time - $t0;
ok($first >= 0.19, "the first failure is answered after 200 ms ($first s)");
$d->chat('NOOP', qr/^\+OK /, 'another session is served during the delay');
$t0 = time;
like(login($c, 'nobody@example.org', 'wrong2'), qr/^-ERR \[AUTH\] /,
     'an unknown user: -ERR [AUTH] alike');
my $second = time - $t0;
ok($second >= 0.39, "the second after 400 ms ($second s)");
$c->send("USER alice\@example.org\r\nPASS wrong3\r\nNOOP\r\n");
$c->check(qr/^\+OK /, 'USER');
$c->check(qr/^-ERR \[AUTH\] /, 'the third failure: -ERR [AUTH]');
ok($c->wait_eof(5), 'and the connection is closed');
is($c->buffer, '', 'with nothing more: one reply per command, the NOOP not answered');

# commands after QUIT are not answered
$c = session(3, 'erin@example.org');
$c->send("DELE 1\r\nQUIT\r\nNOOP\r\nSTAT\r\n");
$c->check(qr/^\+OK /, 'DELE, QUIT pipelined with more');
$c->check(qr/^\+OK Logging out/, 'QUIT');
ok($c->wait_eof(5), 'the connection is closed');
is($c->buffer, '', 'the commands after QUIT are not answered');
$c = client(3);
$c->send("QUIT\r\nNOOP\r\n");
$c->check(qr/^\+OK Logging out$/, 'QUIT before login, pipelined with more');
ok($c->wait_eof(5), 'the connection is closed');
is($c->buffer, '', 'the command after it is not answered');

# AUTH PLAIN garbage, over and over: the session's memory stays bounded
$c = client(3);
my $garbage = 'AUTH PLAIN ' . encode_base64('x' x 700, '') . "\r\n";
my $w = worker_of($c);
my $rss0 = $t->rss($w);
for (1 .. 20) {
    $c->send($garbage x 2000);
    my $n = 0;
    $n++ while $n < 2000 && ($c->line // last) =~ /^-ERR/;
}
my $rss1 = $t->rss($w);
memory_ok($rss1 - $rss0 < 10000,
          "40,000 bad AUTH PLAIN responses: memory bounded (+${\($rss1 - $rss0)} kB)");
$c->chat('NOOP', qr/^-ERR /, 'the session goes on');
$c->close;

# a client that never reads: 200,000 pipelined commands
$c = session(4, 'bob@example.org');
$w = worker_of($c);
$rss0 = $t->rss($w);
my $sent = $c->send_until_blocked("LIST\r\n" x 200000, 3);
$rss1 = $t->rss($w);
memory_ok($rss1 - $rss0 < 10000, 'a client that never reads: memory bounded '
   . "(+${\($rss1 - $rss0)} kB after $sent bytes sent)");
$d->chat('NOOP', qr/^\+OK /, 'another session is served meanwhile');
$c->close;

# a client that never reads: RETR of a 30 MB message
my $line = ('0123456789' x 7) . "\n";
my $big = "From: bob\@remote.test\nSubject: big\n\n" . ($line x 420000);
$t->write_file('big.mbox', "From bob\@remote.test Mon Jan  1 10:00:00 2024\n$big");
($rc, $out) = $m->ctl('import', 'mbox', 'carol@example.org', $t->testdir . '/big.mbox');
is($rc, 0, 'a 30 MB message imported') or diag($out);
$c = session(3, 'carol@example.org');
$w = worker_of($c);
$rss0 = $t->rss($w);
$c->cmd('RETR 1');
sleep 1;
$rss1 = $t->rss($w);
memory_ok($rss1 - $rss0 < 5000,
          "a RETR of 30 MB nobody reads: memory bounded (+${\($rss1 - $rss0)} kB)");
$d->chat('STAT', qr/^\+OK /, 'another session is served meanwhile');
my $o = client(3);
like(login($o, 'carol@example.org'), qr/^-ERR \[IN-USE\] /, 'the mailbox is in use meanwhile');
$o->close;
# now read it all
(my $big_crlf = $big) =~ s/\n/\r\n/g;
$c->check(qr/^\+OK \d+ octets$/, 'RETR of the big message');
is(block($c, 60), $big_crlf, 'and it comes whole once read');
quit($c);

# a client that drops the connection in the middle of a big RETR
$c = session(3, 'carol@example.org');
$c->cmd('RETR 1');
$c->line;
$c->_fill(time + 2);
$c->close;
$o = client(3);
for (1 .. 50) {
    $l = login($o, 'carol@example.org');
    last if $l =~ /^\+OK/;
    sleep 0.1;
}
like($l, qr/^\+OK Logged in, 1 messages/, 'a drop in the middle of a RETR: the lock is free');
quit($o);

# and one that drops it while the server waits for it to read
$c = session(3, 'carol@example.org');
$c->cmd('RETR 1');
sleep 0.5;
$c->close;
$o = client(3);
for (1 .. 50) {
    $l = login($o, 'carol@example.org');
    last if $l =~ /^\+OK/;
    sleep 0.1;
}
like($l, qr/^\+OK Logged in, 1 messages/, 'a drop while the server waits: the lock is free');
quit($o);
quit($d);

# ---- pop3_timeout ----------------------------------------------------------------------------

$c = client(11);
$t0 = time;
$c->check(qr/^-ERR Disconnected for inactivity$/, 'pop3_timeout 1s: -ERR before login', 5);
ok($c->wait_eof(5), 'and the connection is closed');
my $idle = time - $t0;
ok($idle >= 0.9 && $idle < 4, "after a second ($idle s)");
$c = session(11, 'frank@example.org');
$c->chat('NOOP', qr/^\+OK /, 'NOOP');
$c->check(qr/^-ERR Disconnected for inactivity$/, 'and after login', 5);
ok($c->wait_eof(5), 'the connection is closed');
$c = session(11, 'carol@example.org');
$c->cmd('RETR 1');
$t0 = time;
ok($c->wait_eof(10) || 0, 'a RETR nobody reads: closed at the timeout');
$idle = time - $t0;
ok($idle < 6, "soon ($idle s)");
$c = session(11, 'frank@example.org');
quit($c);

# ---- counters and logs ----------------------------------------------------------------------

my $metrics = $t->http_get('/metrics', port => 10);
ok((Facteur::Test::metric($metrics, 'facteur_pop3_logins_total') // 0) >= 10,
   'facteur_pop3_logins_total') or diag($metrics);
ok((Facteur::Test::metric($metrics, 'facteur_pop3_login_failures_total') // 0) >= 3,
   'facteur_pop3_login_failures_total');
ok((Facteur::Test::metric($metrics, 'facteur_pop3_retrieved_total') // 0) >= 10,
   'facteur_pop3_retrieved_total');
is(Facteur::Test::metric($metrics, 'facteur_pop3_deleted_total'), 5 + 6000 - $gina_left,
   'facteur_pop3_deleted_total');
ok((Facteur::Test::metric($metrics, 'facteur_pop3_bytes_total') // 0) > 30_000_000,
   'facteur_pop3_bytes_total') or diag($metrics);
my $log = $t->read_file('error.log');
like($log, qr/pop3 login: user=<alice\@example\.org>, tls=TLSv1\.\d, messages=4/,
     'the log: a login line');
like($log, qr/pop3 logout: logout, user=<alice\@example\.org>, retr=\d+\/\d+, del=2\/4, /,
     'the log: a logout line with the totals');
like($log, qr/pop3 logout: timeout, user=<frank\@example\.org>/, 'the log: a timeout');
like($log, qr/pop3 logout: (?:disconnected|error), user=<carol\@example\.org>, retr=1/,
     'the log: a dropped session');
my @in = $log =~ /pop3 login: user=<([^>]+)>/g;
my @outs = $log =~ /pop3 logout: \w+, user=<([^>]+)>/g;
is(scalar @outs, scalar @in, 'the log: a logout line for every login')
    or diag(explain([scalar @in, scalar @outs]));

$t->done_testing;

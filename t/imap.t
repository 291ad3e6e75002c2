#!/usr/bin/perl

# The IMAP session: greeting and capabilities, LOGINDISABLED before TLS,
# STARTTLS (and the discard of what was pipelined behind it), LOGIN and
# AUTHENTICATE PLAIN with SASL-IR, failed logins delayed then cut off,
# SELECT/EXAMINE, APPEND (MULTIAPPEND, sizes), STORE, COPY, MOVE,
# EXPUNGE, STATUS, CREATE/DELETE/RENAME, ENABLE, ID, NAMESPACE; and the
# bad input of the issue: unknown and out-of-state commands, invalid
# sets, 4 GB literals, 10,000 nested parentheses, 10 MB lines,
# unterminated strings, 8-bit atoms, commands after LOGOUT, a client that
# never reads -- each answered, and the server keeps serving.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MIME::Base64 qw(encode_base64);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/imap lmdb ssl/);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
imap {
    auth_failure_delay 200ms;
    max_auth_failures 3;
    max_message_size 1m;
    server { listen 127.0.0.1:%%PORT_1%%; listen 127.0.0.1:%%PORT_2%% ssl; }
    server { listen 127.0.0.1:%%PORT_3%%; auth_plaintext on; }
}
EOF
mkdir $t->testdir . '/var';
my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$t->run;

# a client on PORT n: greeting checked
sub client {
    my ($port, %opt) = @_;
    my $c = $t->connect(port => $port, %opt);
    $c->check(qr/^\* OK \[CAPABILITY .*IMAP4rev2.*\] Facteur ready\.$/, "greeting on $port");
    return $c;
}

# send a command, read up to its tagged reply; returns all the lines
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

# ---- before login -----------------------------------------------------------

my $c = client(1);
my @r = cmd($c, 'a', 'CAPABILITY');
like($r[0], qr/^\* CAPABILITY .* STARTTLS LOGINDISABLED$/, 'plain port: STARTTLS and LOGINDISABLED');
@r = cmd($c, 'b', 'LOGIN alice@example.org "alice secret"');
like($r[-1], qr/^b NO \[PRIVACYREQUIRED\] /, 'LOGIN before TLS is refused');
@r = cmd($c, 'c', 'SELECT INBOX');
like($r[-1], qr/^c BAD Not logged in$/, 'SELECT before login: BAD');
@r = cmd($c, 'd', 'FROBNICATE');
like($r[-1], qr/^d BAD Unknown command$/, 'an unknown command: BAD');

# STARTTLS with a command pipelined behind it: discarded
$c->send("e STARTTLS\r\nf LOGIN alice\@example.org \"alice secret\"\r\n");
$c->check(qr/^e OK Begin TLS/, 'STARTTLS');
ok($c->starttls, 'the handshake');
@r = cmd($c, 'g', 'CAPABILITY');
like($r[0], qr/AUTH=PLAIN/, 'after TLS: AUTH=PLAIN, no LOGINDISABLED');
unlike(join("\n", @r), qr/^f /m, 'the pipelined LOGIN was discarded, not answered');
@r = cmd($c, 'h', 'AUTHENTICATE PLAIN ' . encode_base64("\0alice\@example.org\0alice secret", ''));
like($r[-1], qr/^h OK \[CAPABILITY .*COMPRESS=DEFLATE.*\] Logged in$/, 'AUTHENTICATE PLAIN with SASL-IR');
@r = cmd($c, 'i', 'LIST "" "*"');
$c->close;

# ---- failed logins: delayed, then cut off -------------------------------------

$c = client(3);
my $t0 = time;
@r = cmd($c, 'a', 'LOGIN alice@example.org wrong1');
like($r[-1], qr/^a NO \[AUTHENTICATIONFAILED\] /, 'a wrong password: NO [AUTHENTICATIONFAILED]');
@r = cmd($c, 'b', 'LOGIN alice@example.org wrong2');
ok(time - $t0 >= 0.55, 'the second failure waits longer (200 ms, then 400 ms)')
    or diag(time - $t0);
@r = cmd($c, 'c', 'LOGIN alice@example.org wrong3');
like(join("\n", @r), qr/^\* BYE Too many authentication failures$/m, 'the third: BYE');
ok($c->wait_eof(5), 'and the connection is closed');

# ---- a session ------------------------------------------------------------------

$c = client(3);
@r = cmd($c, 'a', 'LOGIN alice@example.org "alice secret"');
like($r[-1], qr/^a OK /, 'LOGIN (auth_plaintext on)');
@r = cmd($c, 'b', 'ID ("name" "test")');
like($r[0], qr/^\* ID \("name" "Facteur" "version" "[\d.]+"\)$/, 'ID');
@r = cmd($c, 'c', 'NAMESPACE');
is($r[0], '* NAMESPACE (("" "/")) NIL NIL', 'NAMESPACE');
@r = cmd($c, 'd', 'ENABLE CONDSTORE UNKNOWN');
is($r[0], '* ENABLED CONDSTORE', 'ENABLE: only what is known');

$c->send("e APPEND INBOX (\\Seen \$Work) \"03-Dec-2026 10:00:00 +0100\" {31}\r\n");
$c->check(qr/^\+ /, 'APPEND: continuation');
$c->send("Subject: one\r\n\r\nfirst message\r\n\r\n");
$c->check(qr/^e OK \[APPENDUID (\d+) 1\] APPEND completed$/, 'APPEND: APPENDUID');
$c->send("f APPEND INBOX {28+}\r\nSubject: two\r\n\r\nsecond one\r\n {30+}\r\nSubject: three\r\n\r\nthird one\r\n\r\n");
$c->check(qr/^f OK \[APPENDUID \d+ 2:3\] APPEND completed$/, 'MULTIAPPEND with LITERAL+');
$c->send("g APPEND INBOX {2000000}\r\n");
$c->check(qr/^g NO \[TOOBIG\] /, 'over max_message_size: NO [TOOBIG] before the literal');
@r = cmd($c, 'h', 'APPEND Nowhere {1+}' . "\r\nx");
like($r[-1], qr/^h NO \[TRYCREATE\] /, 'APPEND to a missing mailbox: TRYCREATE');

@r = cmd($c, 'i', 'SELECT INBOX');
like(join("\n", @r), qr/^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work\)$/m,
     'SELECT: FLAGS with the keyword');
like(join("\n", @r), qr/^\* 3 EXISTS$/m, 'SELECT: 3 EXISTS');
like(join("\n", @r), qr/^\* OK \[UIDNEXT 4\] /m, 'SELECT: UIDNEXT');
like(join("\n", @r), qr/^\* OK \[HIGHESTMODSEQ \d+\] /m, 'SELECT: HIGHESTMODSEQ (CONDSTORE)');
like($r[-1], qr/^i OK \[READ-WRITE\] SELECT completed$/, 'READ-WRITE');

@r = cmd($c, 'j', 'STORE 2:3 +FLAGS (\Flagged)');
like(join("\n", @r), qr/^\* 2 FETCH \(FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/m, 'STORE answers FETCH');
@r = cmd($c, 'k', 'STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\Answered)');
like($r[-1], qr/^k OK \[MODIFIED 1\] /, 'UNCHANGEDSINCE an older MODSEQ: MODIFIED');
@r = cmd($c, 'l', 'CREATE Archive/2026');
like($r[-1], qr/^l OK /, 'CREATE');
@r = cmd($c, 'm', 'COPY 1:2 Archive/2026');
like($r[-1], qr/^m OK \[COPYUID \d+ 1:2 1:2\] COPY completed$/, 'COPY: COPYUID');
@r = cmd($c, 'n', 'UID MOVE 3 Archive/2026');
like(join("\n", @r), qr/^\* OK \[COPYUID \d+ 3 3\] .*\n\* 3 EXPUNGE$/m, 'MOVE: COPYUID, then EXPUNGE');
@r = cmd($c, 'o', 'STORE 1 +FLAGS.SILENT (\Deleted)');
@r = cmd($c, 'p', 'EXPUNGE');
like(join("\n", @r), qr/^\* 1 EXPUNGE\np OK EXPUNGE completed$/m, 'EXPUNGE');
@r = cmd($c, 'q', 'STATUS Archive/2026 (MESSAGES UIDNEXT UNSEEN SIZE)');
like($r[0], qr/^\* STATUS "Archive\/2026" \(MESSAGES 3 UIDNEXT 4 UNSEEN 2 SIZE \d+\)$/, 'STATUS');
@r = cmd($c, 'r', 'RENAME Archive/2026 Archive/Old');
like($r[-1], qr/^r OK /, 'RENAME');
@r = cmd($c, 's', 'EXAMINE Archive/Old');
like($r[-1], qr/^s OK \[READ-ONLY\] EXAMINE completed$/, 'EXAMINE: READ-ONLY');
@r = cmd($c, 't', 'STORE 1 +FLAGS (\Seen)');
like($r[-1], qr/^t NO \[READ-ONLY\] /, 'STORE in a read-only mailbox: NO');

# ---- bad input while logged in -------------------------------------------------------

@r = cmd($c, 'u1', 'STORE 4294967296 +FLAGS (\Seen)');
like($r[-1], qr/^u1 BAD /, 'a sequence number of 2^32: BAD');
@r = cmd($c, 'u2', 'STORE 99 +FLAGS (\Seen)');
like($r[-1], qr/^u2 BAD /, 'a MSN past the end: BAD');
@r = cmd($c, 'u3', 'UID STORE *:1 +FLAGS (\Seen)');
like($r[-1], qr/^u3 NO \[READ-ONLY\]/, '*:1 is a valid UID range');
@r = cmd($c, 'u4', 'CREATE Empty');
@r = cmd($c, 'u5', 'EXAMINE Empty');
@r = cmd($c, 'u6', 'FETCH 1:* (FLAGS)');
like($r[-1], qr/^u6 OK /, 'FETCH 1:* of an empty mailbox: OK, nothing');
@r = cmd($c, 'u7', 'FETCH 1 (FLAGS)');
like($r[-1], qr/^u7 BAD /, 'FETCH 1 of an empty mailbox: BAD');
@r = cmd($c, 'u8', 'EXAMINE Archive/Old');
$c->send("v APPEND INBOX {4294967296}\r\n");
$c->check(qr/^v (NO|BAD) \[TOOBIG\] /, 'a 4 GB literal is refused before it is sent');
@r = cmd($c, 'w', 'SEARCH ' . ('(' x 10000) . 'ALL' . (')' x 10000));
like($r[-1], qr/^w BAD .*deep/, '10,000 nested parentheses: BAD');
@r = cmd($c, 'x', 'LOGIN "unterminated');
like($r[-1], qr/^x BAD .*Unterminated/, 'an unterminated quoted string: BAD');
@r = cmd($c, 'y', "CREATE \xe9t\xe9");
like($r[-1], qr/^y (OK|NO|BAD) /, '8-bit in an atom is answered');
$c->send('z NOOP ' . ('x' x (10 * 1024 * 1024)) . "\r\n");
$c->check(qr/^(z|\*) BAD .*Line too long/, 'a 10 MB line: BAD');
@r = cmd($c, 'za', 'NOOP');
like($r[-1], qr/^za OK /, 'and the session goes on');

@r = cmd($c, 'zb', 'LOGOUT');
like(join("\n", @r), qr/^\* BYE .*\nzb OK LOGOUT completed$/m, 'LOGOUT');
$c->send("zc NOOP\r\n");
ok($c->wait_eof(5), 'nothing after LOGOUT: the connection is closed');
unlike($c->buffer, qr/^zc /m, 'the command after LOGOUT is not answered');

# ---- a client that never reads its output ----------------------------------------------

$c = client(3);
cmd($c, 'a', 'LOGIN alice@example.org "alice secret"');
my ($worker) = $t->workers;
my $rss0 = $t->rss($worker);
$c->sock->blocking(0);
my $sent = $c->send_until_blocked("n NOOP\r\n" x 200000, 3);
my $rss1 = $t->rss($worker);
ok($rss1 - $rss0 < 20000, 'memory stays bounded with a client that never reads '
   . "(+${\($rss1 - $rss0)} kB after $sent bytes sent)");
my $d = client(3);
@r = cmd($d, 'a', 'LOGIN alice@example.org "alice secret"');
like($r[-1], qr/^a OK /, 'another client is served meanwhile');
$c->close;
$d->close;

$t->done_testing;

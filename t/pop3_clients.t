#!/usr/bin/perl

# Real POP3 clients from Debian packages against the POP3 module, with mail
# delivered over SMTP (python3 smtplib): a plain message with lines that
# start with a dot, a 2 MB one, one with a raw UTF-8 subject and body, one
# with an encoded-word subject.
#
# python3 poplib over STLS, checking the certificate: STAT, LIST, UIDL,
# TOP, RETR of every message byte for byte, DELE, QUIT; and over implicit
# TLS.  curl: the scan list over pop3s:// and over STLS, a message by
# number (the 2 MB one too), UIDL.  fetchmail over STLS and getmail6 over
# implicit TLS download every message byte for byte (their own trace
# fields aside) and delete them.  And IMAP alongside: a session with INBOX
# selected hears POP3's deletions as EXPUNGE after the QUIT, at its next
# NOOP, and in IDLE.  Every client runs under timeout(1): a hang fails the
# test.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(mkpath);
use File::Temp ();
use Time::HiRes qw(time);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/pop3 imap smtp lmdb ssl/);
system('python3 -c "import smtplib, poplib, ssl" 2>/dev/null') == 0
    or plan(skip_all => 'python3 with smtplib, poplib and ssl is needed');
for my $client (qw(fetchmail getmail curl timeout)) {
    plan(skip_all => "$client is not installed (sh auto/deps installs it)")
        unless Facteur::Test::_which($client);
}

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 2;
auth_directory var/auth;
storage lmdb { path var/mail; }
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
hostname mx.test;
pop3 {
    server {
        listen 127.0.0.1:%%PORT_1%%;
        listen 127.0.0.1:%%PORT_2%% ssl;
    }
}
smtp { server { listen 127.0.0.1:%%PORT_3%%; } }
imap { auth_plaintext on; server { listen 127.0.0.1:%%PORT_4%%; } }
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$t->run;

my $dir = $t->testdir;
my $cert = $t->cert('localhost');
my ($pop3, $pop3s, $smtp) = ($t->port(1), $t->port(2), $t->port(3));
my $user = 'alice@example.org';
my $TIMEOUT = Facteur::Test::timeout(20);

# ---- helpers ----------------------------------------------------------------

sub quote { my $a = shift; $a =~ s/'/'\\''/g; "'$a'" }

# run a client under timeout(1), HOME in the test directory;
# (exit code, stdout + stderr); 124: it hung
sub run {
    my (@cmd) = @_;
    my $cmd = join ' ', map { quote($_) } @cmd;
    my $out = `cd '$dir' && HOME='$dir' timeout -k 2 $TIMEOUT $cmd 2>&1`;
    return ($? >> 8, $out);
}

# the same, stdout apart; (exit code, stdout, stderr)
sub run_out {
    my (@cmd) = @_;
    my $cmd = join ' ', map { quote($_) } @cmd;
    my $out = `cd '$dir' && HOME='$dir' timeout -k 2 $TIMEOUT $cmd 2>'$dir/.err'`;
    return ($? >> 8, $out, $t->read_file('.err'));
}

# a python3 poplib script (PORT replaced), run like the other clients
sub poplib {
    my ($script, $port) = @_;
    $script =~ s/\bPORT\b/$port/g;
    spew("$dir/.poplib.py", $script);
    return run('python3', "$dir/.poplib.py");
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($file, $data, $mode) = @_;
    open my $fh, '>:raw', $file or die "$file: $!";
    print $fh $data;
    close $fh;
    chmod $mode, $file if defined $mode;
}

sub lf { my $s = shift; $s =~ s/\r\n/\n/g; $s }
sub crlf { my $s = lf(shift); $s =~ s/\n/\r\n/g; $s }

sub message_id { $_[0] =~ /^Message-ID: <([^>]+)>/mi ? $1 : '?' }

# deliver messages (LF line ends, sent as CRLF) to ADDRESS over SMTP
sub deliver {
    my ($to, @msgs) = @_;
    my @files;
    for my $i (0 .. $#msgs) {
        my $f = "$dir/.send$i.eml";
        spew($f, crlf($msgs[$i]));
        push @files, $f;
    }
    my $list = join ', ', map { "'$_'" } @files;
    my ($rc, $out) = $m->python(<<"EOF", port => $smtp);
import smtplib
s = smtplib.SMTP('127.0.0.1', PORT, timeout=20)
for f in [$list]:
    data = open(f, 'rb').read()
    opts = ['BODY=8BITMIME', 'SMTPUTF8'] if any(b > 127 for b in data) else []
    print(s.sendmail('bob\@remote.test', ['$to'], data, opts))
s.quit()
EOF
    return ($rc, $out);
}

# the stored messages of INBOX by Message-ID (LF line ends)
sub stored {
    return map { (message_id($_) => $_) } $m->mailbox($user, 'INBOX');
}

# do the messages in FILES match the stored ones (LF)?  A client's own
# trace fields on top (Received:, Delivered-To:, Return-Path:) are allowed.
sub same_as_stored {
    my ($what, $stored, %got) = @_;
    is_deeply([sort keys %got], [sort keys %$stored], "$what: every message")
        or diag(join ', ', sort keys %got);
    for my $id (sort keys %$stored) {
        my $data = lf($got{$id} // '');
        my $want = $stored->{$id};
        ok(length $data >= length $want && substr($data, -length $want) eq $want,
           "$what: $id byte for byte")
            or diag(sprintf('got %d bytes, stored %d', length $data, length $want));
    }
}

sub files_by_id {
    my (@files) = @_;
    my %got;
    for my $f (@files) {
        my $data = slurp($f) // next;
        $got{message_id($data)} = $data;
    }
    return %got;
}

# ---- the messages ------------------------------------------------------------

sub message {
    my ($n, $subject, $body, @headers) = @_;
    return join('', "From: Bob <bob\@remote.test>\n", "To: Alice <$user>\n",
                "Subject: $subject\n", "Date: Mon, 6 May 2024 10:0$n:00 +0200\n",
                "Message-ID: <m$n\@remote.test>\n", map({ "$_\n" } @headers),
                "\n", $body);
}

my $big = do {
    srand(42);
    my $raw = pack('C*', map { int rand 256 } 1 .. 1_530_000);
    require MIME::Base64;
    MIME::Base64::encode_base64($raw);           # 76-column lines, ~2 MB
};

sub batch {
    my ($n) = @_;        # four messages m$n .. m$n+3
    return (message($n, 'plain', "hello\n.leading dot\n..two\n.\nbye\n"),
            message($n + 1, 'big attachment', $big, 'MIME-Version: 1.0',
                    'Content-Type: application/octet-stream',
                    'Content-Transfer-Encoding: base64'),
            message($n + 2, "Caf\xc3\xa9 \xc3\xbcber Stra\xc3\x9fe",
                    "Gr\xc3\xbc\xc3\x9fe \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n",
                    'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8',
                    'Content-Transfer-Encoding: 8bit'),
            message($n + 3, '=?UTF-8?Q?R=C3=A9union?=', "to be deleted\n"));
}

my ($rc, $out) = deliver($user, batch(1));
is($rc, 0, 'four messages delivered over SMTP') or diag($out);
my %stored = stored();
is(scalar keys %stored, 4, 'four messages in INBOX') or diag(join ', ', keys %stored);

# ---- python3 poplib ----------------------------------------------------------------

mkpath("$dir/poplib");
($rc, $out) = poplib(<<"EOF", $pop3);
import poplib, ssl
ctx = ssl.create_default_context(cafile='$cert')
p = poplib.POP3('localhost', PORT, timeout=20)
print('GREETING', p.getwelcome().decode())
print('CAPA', sorted(p.capa().keys()))
print('STLS', p.stls(context=ctx).decode())
print('USER', p.user('$user').decode())
print('PASS', p.pass_('alice secret').decode())
print('STAT', p.stat())
resp, listing, octets = p.list()
print('LIST', [l.decode() for l in listing])
resp, uidl, octets = p.uidl()
print('UIDL', [l.decode() for l in uidl])
resp, lines, octets = p.top(1, 1)
print('TOP', lines)
for l in listing:
    n, size = l.decode().split()
    resp, lines, octets = p.retr(int(n))
    open('$dir/poplib/%s.eml' % n, 'wb').write(b'\\r\\n'.join(lines) + b'\\r\\n')
    print('RETR', n, resp.decode(), octets, size)
print('DELE', p.dele(4).decode())
print('QUIT', p.quit().decode())
EOF
is($rc, 0, 'poplib: a full round over STLS') or diag($out);
like($out, qr/^GREETING \+OK Facteur ready\.$/m, 'poplib: the greeting');
like($out, qr/^CAPA \[.*'STLS'.*'UIDL'.*\]$/m, 'poplib: CAPA has STLS and UIDL');
like($out, qr/^STLS \+OK /m, 'poplib: STLS, the certificate checked');
like($out, qr/^PASS \+OK Logged in, 4 messages/m, 'poplib: USER and PASS');
like($out, qr/^STAT \(4, \d+\)$/m, 'poplib: STAT');
like($out, qr/^LIST \['1 \d+', '2 \d+', '3 \d+', '4 \d+'\]$/m, 'poplib: LIST');
like($out, qr/^UIDL \['1 [0-9a-f]{16}', '2 [0-9a-f]{16}', '3 [0-9a-f]{16}', '4 [0-9a-f]{16}'\]$/m,
     'poplib: UIDL');
like($out, qr/^TOP \[.*b'', b'hello'\]$/m, 'poplib: TOP 1 1');
my @retr = $out =~ /^RETR (\d+) \+OK (\d+) octets (\d+) (\d+)$/mg;
is(scalar @retr, 16, 'poplib: four RETRs');
like($out, qr/^DELE \+OK /m, 'poplib: DELE');
like($out, qr/^QUIT \+OK Logging out, 1 messages deleted$/m, 'poplib: QUIT deletes');
same_as_stored('poplib', \%stored, files_by_id(glob "$dir/poplib/*.eml"));
my %now = stored();
is_deeply([sort keys %now], [qw(m1@remote.test m2@remote.test m3@remote.test)],
          'poplib: the message it deleted is gone, the rest kept');
delete $stored{'m4@remote.test'};

# implicit TLS
($rc, $out) = poplib(<<"EOF", $pop3s);
import poplib, ssl
p = poplib.POP3_SSL('localhost', PORT, context=ssl.create_default_context(cafile='$cert'),
                    timeout=20)
print('USER', p.user('$user').decode())
print('PASS', p.pass_('alice secret').decode())
print('STAT', p.stat())
print('QUIT', p.quit().decode())
EOF
is($rc, 0, 'poplib: over implicit TLS') or diag($out);
like($out, qr/^STAT \(3, \d+\)$/m, 'poplib: STAT over implicit TLS');

# ---- curl ------------------------------------------------------------------------

my ($version) = `curl --version 2>&1` =~ /^curl (\S+)/;
diag("curl $version");
my @curl = ('curl', '-sS', '-k', '-u', "$user:alice secret");

($rc, $out) = run_out(@curl, "pop3s://127.0.0.1:$pop3s/");
is($rc, 0, 'curl: the scan list over pop3s://') or diag($out);
my @list = $out =~ /^(\d+) (\d+)\r$/mg;
is(scalar @list, 6, 'curl: three messages listed') or diag($out);
my %sizes = @list;
($rc, $out) = run_out(@curl, '--ssl-reqd', "pop3://127.0.0.1:$pop3/");
is($rc, 0, 'curl: the scan list over STLS') or diag($out);
like($out, qr/\A1 \d+\r\n2 \d+\r\n3 \d+\r\n\z/, 'curl: the same three');
($rc, $out) = run_out(@curl, "pop3://127.0.0.1:$pop3/");
isnt($rc, 0, 'curl without TLS: refused (no USER, no SASL before STLS)');

for my $n (1, 2) {
    ($rc, $out) = run_out(@curl, '--ssl-reqd', "pop3://127.0.0.1:$pop3/$n");
    is($rc, 0, "curl: message $n retrieved");
    my $id = message_id($out);
    ok(lf($out) eq ($stored{$id} // 'none'), "curl: message $n is $id, byte for byte")
        or diag(sprintf('got %d bytes, want %d', length $out, length($stored{$id} // '')));
    is(length $out, $sizes{$n}, "curl: message $n is the size LIST said");
}
($rc, $out) = run_out(@curl, "pop3s://127.0.0.1:$pop3s/", '-X', 'UIDL');
is($rc, 0, 'curl: UIDL');
like($out, qr/\A(?:\d [0-9a-f]{16}\r\n){3}\z/, 'curl: three unique IDs') or diag($out);

# ---- fetchmail -------------------------------------------------------------------

($version) = `fetchmail --version 2>&1` =~ /release (\S+)/;
diag("fetchmail $version");
mkpath("$dir/fetchmail");
spew("$dir/fetchmail/deliver", "#!/bin/sh\nf=\$(mktemp '$dir/fetchmail/msg.XXXXXX')\n"
     . "cat > \"\$f\"\n", 0755);
spew("$dir/fetchmailrc", <<"EOF", 0600);
set no syslog
set invisible
poll localhost protocol pop3 port $pop3 timeout 15
    user '$user' there with password 'alice secret' is alice here
    sslproto 'TLS1.2+' sslcertck sslcertfile '$cert'
    mda '$dir/fetchmail/deliver'
EOF

($rc, $out) = run('fetchmail', '-f', "$dir/fetchmailrc", '--nosyslog', '--nodetach',
                  '--pidfile', "$dir/fetchmail.pid");
is($rc, 0, 'fetchmail: over STLS, the certificate checked') or diag($out);
like($out, qr/^3 messages for alice\@example\.org at localhost/m, 'fetchmail: three messages')
    or diag($out);
same_as_stored('fetchmail', \%stored, files_by_id(glob "$dir/fetchmail/msg.*"));
%now = stored();
is(scalar keys %now, 0, 'fetchmail: it deleted them') or diag(join ', ', keys %now);

# ---- getmail6 ----------------------------------------------------------------------

($version) = `getmail --version 2>&1` =~ /(\d[\d.]*)/;
diag("getmail $version");
($rc, $out) = deliver($user, batch(5));
is($rc, 0, 'four more messages delivered') or diag($out);
%stored = stored();
# getmail does not deliver as root: then it delivers as nobody, to a
# Maildir nobody can reach
my $maildir = "$dir/getmail/Maildir";
my $as = '';
if ($> == 0) {
    $maildir = File::Temp::tempdir('facteur-getmail-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $maildir;
    $maildir .= '/Maildir';
    $as = 'user = nobody';
}
mkpath("$maildir/$_") for qw(cur new tmp);
if ($> == 0) {
    my (undef, undef, $uid, $gid) = getpwnam('nobody');
    chown $uid, $gid, $maildir, map { "$maildir/$_" } qw(cur new tmp);
}
mkpath("$dir/getmail/state");
spew("$dir/getmail/getmailrc", <<"EOF");
[retriever]
type = SimplePOP3SSLRetriever
server = localhost
port = $pop3s
username = $user
password = alice secret
ca_certs = $cert
timeout = 15

[destination]
type = Maildir
path = $maildir/
$as

[options]
read_all = true
delete = true
delivered_to = false
received = false
verbose = 1
EOF
($rc, $out) = run('getmail', '--getmaildir', "$dir/getmail/state",
                  '--rcfile', "$dir/getmail/getmailrc");
is($rc, 0, 'getmail: over implicit TLS, the certificate checked') or diag($out);
like($out, qr/4 messages \(\d+ bytes\) retrieved, 0 skipped/, 'getmail: four messages')
    or diag($out);
same_as_stored('getmail', \%stored,
               files_by_id(glob "$maildir/new/* $maildir/cur/*"));
%now = stored();
is(scalar keys %now, 0, 'getmail: it deleted them') or diag(join ', ', keys %now);

# ---- IMAP alongside ------------------------------------------------------------------

($rc, $out) = deliver($user, (batch(1))[0, 2, 3]);
is($rc, 0, 'three more messages delivered') or diag($out);

my $itag = 0;
sub imap_cmd {
    my ($c, $line) = @_;
    my $tag = 'i' . ++$itag;
    $c->cmd("$tag $line");
    my @lines;
    while (defined(my $l = $c->line(10))) {
        push @lines, $l;
        last if $l =~ /^\Q$tag\E /;
    }
    return @lines;
}

my $ic = $t->connect(port => 4);
$ic->line;
imap_cmd($ic, "LOGIN $user \"alice secret\"");
my @r = imap_cmd($ic, 'SELECT INBOX');
ok((grep { $_ eq '* 3 EXISTS' } @r), 'IMAP: INBOX selected, 3 messages');

# poplib deletes message 2; the IMAP session hears it after the QUIT
my $pop = <<"EOF";
import poplib, ssl, sys
p = poplib.POP3_SSL('localhost', PORT, context=ssl.create_default_context(cafile='$cert'),
                    timeout=20)
p.user('$user')
p.pass_('alice secret')
for n in sys.argv[1:]:
    print('DELE', p.dele(int(n)).decode())
print('QUIT', p.quit().decode())
EOF
$pop =~ s/sys\.argv\[1:\]/['2']/;
($rc, $out) = poplib($pop, $pop3s);
like($out, qr/^QUIT \+OK Logging out, 1 messages deleted$/m, 'poplib deletes message 2')
    or diag($out);
@r = imap_cmd($ic, 'NOOP');
is_deeply([grep { /EXPUNGE/ } @r], ['* 2 EXPUNGE'], 'IMAP: * 2 EXPUNGE at the next NOOP')
    or diag(explain(\@r));

# and in IDLE, as it happens
$ic->cmd('i-idle IDLE');
$ic->check(qr/^\+ /, 'IMAP: IDLE');
($pop = $pop) =~ s/\['2'\]/['1']/;
my $t0 = time;
($rc, $out) = poplib($pop, $pop3s);
like($out, qr/^QUIT \+OK Logging out, 1 messages deleted$/m, 'poplib deletes message 1')
    or diag($out);
my $l;
do { $l = $ic->line(10) } while defined $l && $l =~ /^\* 1 FETCH /;   # \Deleted first
is($l, '* 1 EXPUNGE', 'IMAP: * 1 EXPUNGE in IDLE');
ok(time - $t0 < 5, 'soon after the QUIT');
$ic->cmd('DONE');
$ic->check(qr/^i-idle OK /, 'IMAP: DONE');
@r = imap_cmd($ic, 'FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])');
is_deeply([map { /<([^>]+)>/ ? $1 : () } @r], ['m4@remote.test'], 'IMAP: one message left');
$ic->close;

$t->done_testing;

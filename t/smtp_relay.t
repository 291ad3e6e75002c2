#!/usr/bin/perl

# No open relay, on any listener: MX (plain, after STARTTLS, implicit TLS,
# with AUTH offered in plaintext, on a unix socket), a server whose
# relay_from does not cover the client, and LMTP (TCP and unix socket, even
# with relay_from).  An unauthenticated client asking for a remote
# recipient is refused with 554 5.7.1 (LMTP: 550 5.7.1), whatever the
# spelling: source routes, "%" and "!" paths, quoted local parts with "@",
# upper case, trailing dots, address literals.  Each session then sends a
# message to a local user, so a recipient wrongly accepted would end in the
# outbound queue: the queue must stay empty.  Authenticated users
# (submission, MX after STARTTLS) and relay_from clients (a network, or
# "unix:") can relay, and their recipients are queued with their DSN
# parameters; a login made before STARTTLS does not survive it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;
use Facteur::Mail;
use MIME::Base64 qw(encode_base64);

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
    max_errors 100;
    auth_failure_delay 200ms;
    # MX: STARTTLS, and implicit TLS
    server { listen 127.0.0.1:%%PORT_1%%; listen 127.0.0.1:%%PORT_2%% ssl; }
    # submission: STARTTLS, and implicit TLS
    server { listen 127.0.0.1:%%PORT_3%%; listen 127.0.0.1:%%PORT_4%% ssl; submission on; }
    # MX for a network that may relay: us
    server { listen 127.0.0.1:%%PORT_5%%; relay_from 127.0.0.1/32; }
    # MX for networks that may relay: not us
    server { listen 127.0.0.1:%%PORT_6%%; relay_from 10.0.0.0/8 ::1 127.0.0.2; }
    # MX with AUTH offered in plaintext
    server { listen 127.0.0.1:%%PORT_7%%; auth_plaintext on; }
    # MX on a unix socket: no more trusted than TCP (a proxy may be in front)
    server { listen unix:smtp.sock; }
    # ... unless relay_from says so
    server { listen unix:relay.sock; relay_from unix:; }
}
lmtp {
    max_errors 100;
    relay_from 127.0.0.0/8;             # LMTP never relays, relay_from or not
    listen 127.0.0.1:%%PORT_8%%;
    listen unix:lmtp.sock;
}
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$t->run;

# ---- helpers --------------------------------------------------------------

sub reply {
    my ($c) = @_;
    my @lines;
    while (defined(my $l = $c->line)) {
        push @lines, $l;
        last if $l =~ /^\d{3}(?: |$)/;
    }
    return wantarray ? @lines : $lines[-1];
}

sub says {
    my ($c, $line, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $c->cmd($line);
    my $r = reply($c);
    like($r // ($c->is_eof ? '<connection closed>' : '<timeout>'), $re, $name);
    return $r;
}

sub login {
    my ($c, $user, $pass, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return says($c, 'AUTH PLAIN ' . encode_base64("\0$user\0$pass", ''),
                qr/^235 2\.7\.0 /, $name // "AUTH as $user");
}

# a session on a listener, greeted and after EHLO (LHLO for LMTP)
sub open_session {
    my ($how) = @_;
    my %o = %$how;
    my $c = $o{unix} ? $t->connect(unix => $t->testdir . "/$o{unix}")
                     : $t->connect(port => $o{port}, ssl => $o{ssl});
    reply($c);
    my $hello = $o{lmtp} ? 'LHLO' : 'EHLO';
    $c->cmd("$hello client.test");
    reply($c);
    if ($o{starttls}) {
        $c->cmd('STARTTLS');
        reply($c);
        $c->starttls or diag("STARTTLS failed: $Facteur::Test::Client::error");
        $c->cmd("EHLO client.test");
        reply($c);
    }
    return $c;
}

sub queue {
    my ($rc, $out) = $m->ctl(qw(queue list));
    return $out;
}

# relay attempts: the path as given to RCPT TO:
my @relay = (
    '<user@remote.test>',
    '<user@REMOTE.TEST>',
    '<user@remote.test.>',
    '<user@Remote.Test.>',
    '<@hop.test:user@remote.test>',
    '<@hop1.test,@hop2.test:user@remote.test>',
    '<@example.org:user@remote.test>',
    '<user%remote.test@example.org>',
    '<USER%REMOTE.TEST@EXAMPLE.ORG>',
    '<user%remote.test@example.org.>',
    '<user%remote.test%example.org@example.org>',
    '<remote.test!user@example.org>',
    '<"user@remote.test"@example.org>',
    '<"user%remote.test"@example.org>',
    '<"user\@remote.test"@example.org>',
    '<user@[192.0.2.1]>',
    '<user@[127.0.0.1]>',
    '<user@[IPv6:2001:db8::1]>',
    '<user@sub.example.org>',
    '<user@example.org.remote.test>',
    '<postmaster@remote.test>',
    ' <user@remote.test>',
);

# not relay attempts but no valid path either: refused all the same
my @refused = (
    '<alice@example.org@remote.test>',
    '<user@remote.test..>',
    '<user@[192.0.2.1>',
    'user@remote.test',
);

my %listeners = (
    'MX'                           => { port => 1 },
    'MX after STARTTLS'            => { port => 1, starttls => 1 },
    'MX over implicit TLS'         => { port => 2, ssl => 1 },
    'MX, relay_from not covering'  => { port => 6 },
    'MX, AUTH in plaintext'        => { port => 7 },
    'LMTP'                         => { port => 8, lmtp => 1 },
    'LMTP on a unix socket'        => { unix => 'lmtp.sock', lmtp => 1 },
    'MX on a unix socket'          => { unix => 'smtp.sock' },
);

# ---- every listener refuses to relay -----------------------------------------

my $delivered = 0;
for my $name (sort keys %listeners) {
    my $how = $listeners{$name};
    my $c = open_session($how);
    my $code = $how->{lmtp} ? '550' : '554';
    says($c, 'MAIL FROM:<alice@example.org>', qr/^250 2\.1\.0 /,
         "$name: MAIL with a local sender");
    for my $path (@relay) {
        says($c, "RCPT TO:$path", qr/^$code 5\.7\.1 /, "$name: RCPT TO:$path is $code 5.7.1");
    }
    for my $path (@refused) {
        says($c, "RCPT TO:$path", qr/^5\d\d 5\.\d\.\d+ /, "$name: RCPT TO:$path is refused");
    }
    says($c, 'RCPT TO:<alice@example.org>', qr/^250 2\.1\.5 /, "$name: a local recipient");
    says($c, 'DATA', qr/^354 /, "$name: DATA");
    my @r = ($c->send("Subject: via $name\r\n\r\nlocal only\r\n.\r\n") && reply($c));
    like($r[-1] // '', qr/^250 2\.0\.0 /, "$name: the message is accepted");
    ok($c->quiet(0.2), "$name: one reply (one recipient)") if $how->{lmtp};
    $delivered++;
    $c->cmd('QUIT');
    $c->close;
}

# submission without AUTH: refused before any recipient
for my $how ({ port => 3, starttls => 1 }, { port => 4, ssl => 1 }) {
    my $c = open_session($how);
    says($c, 'MAIL FROM:<alice@example.org>', qr/^530 5\.7\.0 /,
         "submission (port $how->{port}) without AUTH: 530 5.7.0");
    says($c, 'RCPT TO:<user@remote.test>', qr/^503 5\.5\.1 /, 'and no RCPT');
    $c->close;
}

# a login made in plaintext does not survive STARTTLS (RFC 3207 4.2)
{
    my $c = open_session({ port => 7 });
    login($c, 'alice@example.org', 'alice secret', 'AUTH in plaintext');
    says($c, 'STARTTLS', qr/^220 /, 'STARTTLS');
    ok($c->starttls, 'TLS');
    says($c, 'EHLO client.test', qr/^250 /, 'EHLO over TLS');
    says($c, 'MAIL FROM:<alice@example.org>', qr/^250 /, 'MAIL');
    says($c, 'RCPT TO:<user@remote.test>', qr/^554 5\.7\.1 /,
         'the login before STARTTLS is forgotten: no relay');
    says($c, 'RSET', qr/^250 /, 'RSET');
    login($c, 'alice@example.org', 'alice secret', 'AUTH again over TLS');
    $c->close;
}

# a local domain spelled with capitals and the root's dot is still local
{
    my $c = open_session({ port => 1 });
    says($c, 'MAIL FROM:<x@remote.test>', qr/^250 /, 'MAIL');
    says($c, 'RCPT TO:<alice@EXAMPLE.ORG.>', qr/^250 2\.1\.5 /,
         'RCPT TO:<alice@EXAMPLE.ORG.> is local');
    says($c, 'DATA', qr/^354 /, 'DATA');
    $c->send("Subject: dotted\r\n\r\nlocal\r\n.\r\n");
    like(reply($c) // '', qr/^250 2\.0\.0 /, 'delivered');
    $delivered++;
    $c->close;
}

my @inbox = $m->mailbox('alice@example.org');
is(scalar @inbox, $delivered, 'every listener delivered its local message');
like(queue(), qr/^(?:the queue is empty|0 messages in the queue)$/m,
     'nothing reached the outbound queue') or diag(queue());

# ---- who may relay -------------------------------------------------------------

my @ok = (
    ['submission after STARTTLS and AUTH', { port => 3, starttls => 1 }, 1, 'one@remote.test'],
    ['submission over implicit TLS and AUTH', { port => 4, ssl => 1 }, 1, 'two@remote.test'],
    ['MX after STARTTLS and AUTH', { port => 1, starttls => 1 }, 1, 'three@remote.test'],
    ['MX from a relay_from network', { port => 5 }, 0, 'four@remote.test'],
    ['MX on a unix socket in relay_from', { unix => 'relay.sock' }, 0, 'five@remote.test'],
);
for my $case (@ok) {
    my ($name, $how, $auth, $rcpt) = @$case;
    my $c = open_session($how);
    login($c, 'alice@example.org', 'alice secret', "$name: AUTH") if $auth;
    says($c, 'MAIL FROM:<alice@example.org> RET=HDRS ENVID=id+2B1', qr/^250 2\.1\.0 /,
         "$name: MAIL");
    says($c, "RCPT TO:<$rcpt> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;$rcpt", qr/^250 2\.1\.5 /,
         "$name: RCPT TO:<$rcpt> is accepted");
    says($c, 'DATA', qr/^354 /, "$name: DATA");
    $c->send("Subject: relayed\r\n\r\n" . ("filler line to reuse the read buffer\r\n" x 50)
             . ".\r\n");
    like(reply($c) // '', qr/^250 2\.0\.0 /, "$name: the message is accepted");
    $c->close;
}

my $q = queue();
for my $case (@ok) {
    like($q, qr/^[0-9A-F]{18}\s+\d+\s+\S+ \S+\s+<alice\@example\.org> -> <\Q$case->[3]\E>$/m,
         "$case->[0]: <$case->[3]> waits in the queue");
}
like($q, qr/^5 messages in the queue$/m, 'five messages queued, no more') or diag($q);

# The envelope lines of each entry.  facteurctl does not export the queue
# account, so they are looked for in the store's files, where a small
# message is kept as it is; if the store ever keeps them otherwise, there
# is nothing to look at and the check is skipped.
my $store = join '', map { $t->read_file($_) }
    grep { -f } $t->testdir . '/var/mail/data.mdb', glob($t->testdir . '/var/mail/blobs/*/*');
for my $case (@ok) {
    my $rcpt = $case->[3];
    SKIP: {
        my ($env) = $store =~ /(X-Facteur-Queue: [^\r]*\r\nX-Facteur-Rcpt: <\Q$rcpt\E>[^\r]*)\r\n/;
        skip("the queue entry of <$rcpt> is not readable in the store's files", 1)
            unless $env;
        like($env, qr/\AX-Facteur-Queue: [0-9A-F]{18}; from=<alice\@example\.org>; nrcpt=1; ret=HDRS; envid=id\+2B1\r\nX-Facteur-Rcpt: <\Q$rcpt\E>; notify=SUCCESS,FAILURE; orcpt=rfc822\+3B\Q$rcpt\E\z/,
             "$case->[0]: the envelope keeps RET, ENVID, NOTIFY and ORCPT") or diag($env);
    }
}

$t->done_testing;

#!/usr/bin/perl

# Multi-tenant policy in domain blocks read from "include domains.d/*.conf":
# relay rules (a relay domain taken from anyone and queued for its
# smarthost; a domain whose users may not send out), configuration errors
# that name file:line, and a domain file added at run time: after a reload
# new sessions get the new domain's hook, limits and certificate, while a
# session opened before the reload finishes on the old configuration.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp lmdb lua ssl/);
$t->expect_log(qr/\[emerg\].*domains\.d\/broken\.conf:\d+: /);   # the broken reload

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
hostname mx.test;
include domains.d/*.conf;
smtp {
    smarthost backup 192.0.2.25:25;
    auth_plaintext on;
    server { listen 127.0.0.1:%%PORT_1%%; }
    server { listen 127.0.0.1:%%PORT_2%%; submission on; }
    server { listen 127.0.0.1:%%PORT_4%% ssl; }
    lua_hook rcpt lua/global.lua;   # after the domains.d/ include, yet runs first
}
lmtp { listen 127.0.0.1:%%PORT_3%%; }
EOF
$t->write_file('domains.d/partner.conf', <<'EOF');
domain partner.test {
    relay_to backup;                # we are its backup MX
}
EOF
$t->write_file('domains.d/closed.conf', <<'EOF');
domain closed.test {
    relay_outbound off;             # its users write to local domains only
}
EOF
$t->write_file('lua/global.lua', <<'EOF');
return function(session, txn)
    if txn.recipient.address == "order@new.test" then
        return facteur.reject(550, "5.7.1 the global hook runs first")
    end
end
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$m->add_user('carl@closed.test', 'carl secret');
$m->add_user('bob@new.test', 'bob secret');
$m->add_user('spam@new.test', 'spam secret');
$m->add_user('order@new.test', 'order secret');
$t->run;

# the reply to a command (the last line of a multi-line one)
sub reply {
    my ($c) = @_;
    my $l;
    do { $l = $c->line(10) } while (defined $l && $l =~ /^\d{3}-/);
    return $l // ($c->is_eof ? '<closed>' : '<timeout>');
}

sub smtp {
    my ($c, $cmd) = @_;
    $c->cmd($cmd);
    return reply($c);
}

sub session {
    my (%opt) = @_;
    my $c = $t->connect(port => $opt{port} // 1);
    reply($c);
    smtp($c, 'EHLO client.test');
    if ($opt{user}) {
        my $plain = encode_base64("\0$opt{user}\0$opt{password}", '');
        my $r = smtp($c, "AUTH PLAIN $plain");
        die "AUTH $opt{user}: $r" unless $r =~ /^235 /;
    }
    return $c;
}

sub send_message {
    my ($c, $from, $to, $body) = @_;
    my @r = (smtp($c, "MAIL FROM:<$from>"));
    push @r, smtp($c, "RCPT TO:<$_>") for @$to;
    return @r unless grep { /^250 / } @r[1 .. $#r];
    push @r, smtp($c, 'DATA');
    $c->send("$body\r\n.\r\n");
    push @r, reply($c);
    return @r;
}

# ---- relay rules ------------------------------------------------------------

my $c = session();
my @r = send_message($c, 'someone@far.test', ['user@partner.test'],
                     "Subject: for the partner\r\n\r\nhello");
like($r[1], qr/^250 /, 'relay_to: an unauthenticated client may send to the relay domain');
like($r[-1], qr/^250 /, 'and the message is accepted');
like(smtp($c, 'RSET'), qr/^250 /, 'RSET');
my @o = send_message($c, 'someone@far.test', ['user@other.test'], 'x');
like($o[1], qr/^554 5\.7\.1 <user\@other\.test>: Relay access denied/,
     'a domain without relay_to is still not relayed for');
like(smtp($c, 'RSET'), qr/^250 /, 'RSET');
@o = send_message($c, 'someone@far.test', ['user%elsewhere.test@partner.test'], 'x');
like($o[1], qr/^554 5\.7\.1 /, 'routing characters in a relay domain\'s address are refused');
$c->close;

my ($rc, $out) = $m->ctl(qw(queue list));
like($out, qr/user\@partner\.test.*relay via backup \(192\.0\.2\.25:25\)/s,
     'the relay domain\'s message waits in the queue for its smarthost') or diag($out);

($rc, $out) = $m->python(<<'EOF');
import smtplib
s = smtplib.LMTP('127.0.0.1', %%PORT_3%%)
s.ehlo('client.test')
try:
    print(s.sendmail('a@far.test', ['user@partner.test'], 'Subject: x\r\n\r\nx\r\n'))
except smtplib.SMTPRecipientsRefused as e:
    print('REFUSED', e.recipients)
EOF
like($out, qr/REFUSED .*550, b'5\.7\.1/, 'LMTP does not take mail for a relay domain')
    or diag($out);

$c = session(port => 2, user => 'carl@closed.test', password => 'carl secret');
@r = send_message($c, 'carl@closed.test', ['friend@far.test'], 'x');
like($r[1], qr/^550 5\.7\.1 <friend\@far\.test>: Relay access denied: this domain's users send to local domains only/,
     'relay_outbound off: a user of the domain cannot send out');
like(smtp($c, 'RSET'), qr/^250 /, 'RSET');
@r = send_message($c, 'carl@closed.test', ['alice@example.org'],
                  "Subject: inside\r\n\r\nlocal mail");
like($r[-1], qr/^250 /, 'but writes to local domains');
$c->close;

$c = session(port => 2, user => 'alice@example.org', password => 'alice secret');
@r = send_message($c, 'alice@example.org', ['friend@far.test'], "Subject: out\r\n\r\nx");
like($r[1], qr/^250 /, 'a user of another domain still sends out');
$c->close;
my @alice = $m->mailbox('alice@example.org');
is(scalar(grep { /\nSubject: inside\n/ } @alice), 1, 'carl\'s local message is delivered');

# ---- configuration errors name the file and line ------------------------------

$t->write_file('bad1.conf', $t->read_file('facteur.conf') =~ s{include domains\.d/\*\.conf;}
    {include bad.d/*.conf;}r);
$t->write_file('bad.d/x.conf', "domain x.test {\n    relay_to nowhere;\n}\n");
($rc, $out) = $t->run_config_test('bad1.conf');
isnt($rc, 0, 'facteur -t: relay_to an undeclared smarthost is refused');
like($out, qr{bad\.d/x\.conf:2: relay_to: no "smarthost nowhere HOST\[:PORT\];"},
     'the error names the domain file and line') or diag($out);
$t->write_file('bad.d/x.conf', "domain x.test {\n\n    storage maildir;\n}\n");
($rc, $out) = $t->run_config_test('bad1.conf');
like($out, qr{bad\.d/x\.conf:3: domain x\.test: no "storage maildir \{ \.\.\. \}" block},
     'a domain\'s storage must be a configured store') or diag($out);

# ---- a domain file added at run time --------------------------------------------

# a session opened on the current configuration, left in the middle of a transaction
my $old = session();
like(smtp($old, 'MAIL FROM:<early@far.test>'), qr/^250 /, 'old session: MAIL');

$t->write_file('lua/new.lua', <<'EOF');
return function(session, txn)
    local a = txn.recipient.address
    if a == "spam@new.test" or a == "order@new.test" then
        return facteur.reject(550, "5.7.1 new.test does not take mail for spam@")
    end
end
EOF
$t->write_file('lua/new_header.lua', <<'EOF');
return function(session, txn)
    txn:add_header("X-New-Policy", "applied")
end
EOF

# first a broken file: the reload fails and the running configuration stays
$t->write_file('domains.d/broken.conf', "domain broken.test {\n    max_recipients many;\n}\n");
($rc, $out) = $t->reload;
isnt($rc, 0, 'facteur -s reload checks the configuration first, and says no')
    or diag($out);
like($out, qr{domains\.d/broken\.conf:2: }, 'naming the domain file and line');
ok($t->signal('HUP'), 'HUP anyway');
ok($t->wait_for(sub { $t->read_file('error.log') =~ /domains\.d\/broken\.conf:2: /m }, 10),
   'the master refuses it too, with the file and line in the log');
unlink $t->testdir . '/domains.d/broken.conf';
$c = session();
@r = send_message($c, 'a@far.test', ['spam@new.test'], "Subject: before\r\n\r\nx");
like($r[1], qr/^250 /, 'the old configuration still serves (no new.test policy yet)');
$c->close;

$t->write_file_expand('domains.d/new.conf', <<'EOF');
domain new.test {
    lua_hook rcpt lua/new.lua;
    lua_hook data_headers lua/new_header.lua;
    max_message_size 4k;
    ssl_certificate %%CERT_new.test%%;
    ssl_certificate_key %%KEY_new.test%%;
}
EOF
($rc, $out) = $t->reload;
is($rc, 0, 'reload with domains.d/new.conf') or diag($out);

my $refused = '';
ok($t->wait_for(sub {
    my $n = session();
    my @x = send_message($n, 'a@far.test', ['spam@new.test'], 'x');
    $n->close;
    $refused = $x[1] // '';
    return $refused =~ /^550 /;
}, 10), 'new sessions get the new domain\'s hook') or diag($refused);
like($refused, qr/^550 5\.7\.1 new\.test does not take mail for spam\@/,
     'with the hook\'s own code and text');
$c = session();
@r = send_message($c, 'a@far.test', ['order@new.test'], 'x');
like($r[1], qr/^550 5\.7\.1 the global hook runs first/,
     'a phase runs the global hooks before the domain\'s, whatever the file order');
$c->close;

$c = session();
@r = send_message($c, 'a@far.test', ['bob@new.test'], "Subject: new policy\r\n\r\nhello bob");
like($r[-1], qr/^250 /, 'mail for another new.test user is accepted');
like(smtp($c, 'RSET'), qr/^250 /, 'RSET');
@r = send_message($c, 'a@far.test', ['bob@new.test'], "Subject: big\r\n\r\n" . ('y' x 6000));
like($r[-1], qr/^552 /, 'the new domain\'s max_message_size applies');
$c->close;

SKIP: {
    my $tls = $t->connect(port => 4, ssl => 1, sni => 'new.test');
    skip 'TLS connection failed: ' . $tls->error, 1 unless $tls->connected;
    like($tls->sock->peer_certificate('subject') // '', qr/CN\s*=\s*new\.test/,
         'SNI new.test: the certificate from the new domain file');
    $tls->close;
}

# the session from before the reload finishes on the configuration it began with
like(smtp($old, 'RCPT TO:<spam@new.test>'), qr/^250 /,
     'old session: the new hook does not apply to it');
like(smtp($old, 'DATA'), qr/^354 /, 'old session: DATA');
$old->send("Subject: from the old session\r\n\r\nstill here\r\n.\r\n");
like(reply($old), qr/^250 /, 'old session: its message is accepted');
like(smtp($old, 'QUIT'), qr/^221 /, 'old session: QUIT');

my @bob = $m->mailbox('bob@new.test');
is(scalar(@bob), 1, 'bob has the one message') or diag(explain(\@bob));
like($bob[0] // '', qr/\nX-New-Policy: applied\nSubject: new policy\n/,
     'the new domain\'s data_headers hook edited it');
my @spam = $m->mailbox('spam@new.test');
is(scalar(@spam), 2, 'spam@ got the two messages sent on the old configuration');
ok(!grep({ /X-New-Policy/ } @spam), 'without the new domain\'s header');

$t->done_testing;

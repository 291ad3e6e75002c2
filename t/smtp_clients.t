#!/usr/bin/perl

# Real clients against the SMTP module: swaks over plain SMTP, STARTTLS
# with AUTH on submission, implicit TLS and LMTP; curl's smtp:// and
# smtps://.  And per-domain policy: a domain's own certificate by SNI, its
# max_message_size, max_recipients and unknown_users.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp lmdb ssl/);
plan(skip_all => 'swaks is not installed') unless Facteur::Test::_which('swaks');
plan(skip_all => 'curl is not installed') unless Facteur::Test::_which('curl');

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
hostname mx.test;
domain small.test {
    ssl_certificate %%CERT_small.test%%;
    ssl_certificate_key %%KEY_small.test%%;
    max_message_size 2k;
    max_recipients 2;
    unknown_users accept;
}
smtp {
    server { listen 127.0.0.1:%%PORT_1%%; }
    server {
        listen 127.0.0.1:%%PORT_2%%;
        listen 127.0.0.1:%%PORT_3%% ssl;
        submission on;
    }
}
lmtp { listen 127.0.0.1:%%PORT_4%%; }
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$m->add_user('carol@small.test', 'carol secret');
$m->add_user('dave@small.test', 'dave secret');
$m->add_user('erin@small.test', 'erin secret');
$t->run;

my $dir = $t->testdir;

sub swaks {
    my (@args) = @_;
    my $cmd = join ' ', 'swaks', '--server', '127.0.0.1', '--timeout', '10',
        map { my $a = $_; $a =~ s/'/'\\''/g; "'$a'" } @args;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out);

# ---- swaks ----------------------------------------------------------------

($rc, $out) = swaks('--port', $t->port(1), '--to', 'alice@example.org',
                    '--from', 'swaks@remote.test', '--header', 'Subject: swaks plain');
is($rc, 0, 'swaks delivers over plain SMTP') or diag($out);
($rc, $out) = swaks('--port', $t->port(2), '--tls', '--auth', 'PLAIN',
                    '--auth-user', 'alice@example.org', '--auth-password', 'alice secret',
                    '--to', 'carol@small.test', '--from', 'alice@example.org',
                    '--header', 'Subject: swaks starttls');
is($rc, 0, 'swaks: STARTTLS, AUTH PLAIN on submission') or diag($out);
like($out, qr/<~\s+235 2\.7\.0 /, 'AUTH succeeded');
($rc, $out) = swaks('--port', $t->port(3), '--tls-on-connect', '--auth', 'LOGIN',
                    '--auth-user', 'carol@small.test', '--auth-password', 'carol secret',
                    '--to', 'alice@example.org', '--from', 'carol@small.test',
                    '--header', 'Subject: swaks tls');
is($rc, 0, 'swaks: implicit TLS, AUTH LOGIN') or diag($out);
($rc, $out) = swaks('--port', $t->port(4), '--protocol', 'LMTP', '--to', 'alice@example.org',
                    '--from', 'lmtp@remote.test', '--header', 'Subject: swaks lmtp');
is($rc, 0, 'swaks: LMTP') or diag($out);
($rc, $out) = swaks('--port', $t->port(2), '--tls', '--auth', 'PLAIN',
                    '--auth-user', 'alice@example.org', '--auth-password', 'wrong',
                    '--to', 'carol@small.test', '--from', 'alice@example.org');
isnt($rc, 0, 'swaks: a wrong password is refused');
like($out, qr/<~\*?\s+535 5\.7\.8 /, 'with 535 5.7.8') or diag($out);

my @alice = $m->mailbox('alice@example.org');
is(scalar @alice, 3, 'alice has the plain, TLS and LMTP messages') or diag(explain(\@alice));
like(join('', @alice), qr/Subject: swaks plain.*Subject: swaks tls.*Subject: swaks lmtp/s,
     'in order');

# ---- curl -----------------------------------------------------------------

$t->write_file('msg.txt', "From: curl\@remote.test\r\nSubject: curl\r\n\r\nsent by curl\r\n");
$out = `curl -sS --max-time 10 smtp://127.0.0.1:@{[$t->port(1)]} --mail-from curl\@remote.test --mail-rcpt alice\@example.org --upload-file $dir/msg.txt 2>&1`;
is($? >> 8, 0, 'curl smtp:// delivers') or diag($out);
$out = `curl -sS --max-time 10 -k smtps://127.0.0.1:@{[$t->port(3)]} --user 'carol\@small.test:carol secret' --mail-from carol\@small.test --mail-rcpt alice\@example.org --upload-file $dir/msg.txt 2>&1`;
is($? >> 8, 0, 'curl smtps:// with a login delivers') or diag($out);
$out = `curl -sS --max-time 10 -k --ssl-reqd smtp://127.0.0.1:@{[$t->port(2)]} --user 'carol\@small.test:carol secret' --mail-from carol\@small.test --mail-rcpt alice\@example.org --upload-file $dir/msg.txt 2>&1`;
is($? >> 8, 0, 'curl with STARTTLS (--ssl-reqd) and a login delivers') or diag($out);
@alice = $m->mailbox('alice@example.org');
is(scalar(grep { /\nsent by curl\n\z/ } @alice), 3, 'the three curl messages are stored');

# ---- per-domain policy ------------------------------------------------------

# SNI: the domain's own certificate
SKIP: {
    my $c = $t->connect(port => 3, ssl => 1, sni => 'small.test');
    skip 'TLS connection failed: ' . $c->error, 2 unless $c->connected;
    my $subject = $c->sock->peer_certificate('subject') // '';
    like($subject, qr/CN\s*=\s*small\.test/, 'SNI small.test: its certificate');
    $c->close;
    $c = $t->connect(port => 3, ssl => 1, sni => 'other.test');
    like($c->sock->peer_certificate('subject') // '', qr/CN\s*=\s*localhost/,
         'another name: the default certificate');
    $c->close;
}

my $big = 'x' x 3000;
($rc, $out) = $m->python(<<'EOF' . "big = '$big'\n" . <<'EOF2');
import smtplib
EOF
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10)
s.ehlo('client.test')
def tryit(rcpts, body):
    try:
        r = s.sendmail('x@remote.test', rcpts, body)
        print('OK', sorted(r.items()))
    except smtplib.SMTPRecipientsRefused as e: print('REFUSED', sorted(e.recipients.items()))
    except smtplib.SMTPDataError as e: print('DATA', e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPException as e: print('ERR', e)
tryit(['carol@small.test'], 'Subject: big\r\n\r\n' + big + '\r\n')
tryit(['alice@example.org'], 'Subject: big\r\n\r\n' + big + '\r\n')
tryit(['carol@small.test', 'dave@small.test', 'erin@small.test'], 'Subject: three\r\n\r\nx\r\n')
tryit(['ghost@small.test'], 'Subject: ghost\r\n\r\nx\r\n')
tryit(['ghost@example.org'], 'Subject: ghost\r\n\r\nx\r\n')
s.quit()
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10)
s.helo('client.test')                # no ESMTP: no SIZE= announced, checked at the end
tryit(['carol@small.test'], 'Subject: big\r\n\r\n' + big + '\r\n')
s.quit()
EOF2
is($rc, 0, 'per-domain policy session') or diag($out);
my @lines = split /\n/, $out;
like($lines[0] // '', qr/^REFUSED \[\('carol\@small\.test', \(552, b"5\.3\.4 /,
     'small.test: SIZE= over its 2k limit is refused at RCPT');
like($lines[5] // '', qr/^DATA 552 5\.3\.4 /,
     'small.test: without SIZE=, a 3 KB message is refused at the end of DATA');
like($lines[1] // '', qr/^OK \[\]/, 'example.org: the server limit applies (accepted)');
like($lines[2] // '', qr/^OK \[\('erin\@small\.test', \(452, b'4\.5\.3 /,
     'small.test: max_recipients 2, the third gets 452 4.5.3');
like($lines[3] // '', qr/^OK \[\]/, 'small.test: unknown_users accept takes an unknown user');
like($lines[4] // '', qr/^REFUSED \[\('ghost\@example\.org', \(550, b'5\.1\.1 /,
     'example.org: an unknown user is refused');
($rc, $out) = $m->ctl(qw(queue list));
like($out, qr/-> <ghost\@small\.test> \(unknown user\)$/m, 'the unknown user waits in the queue, for a bounce')
    or diag($out);
unlike($out, qr/ghost\@example\.org/, 'the refused one does not');

$t->done_testing;

#!/usr/bin/perl

# SMTP, submission and LMTP delivering into the store: python3 smtplib
# sends to a user made with facteurctl over plain SMTP, STARTTLS with AUTH
# on submission, implicit TLS, and LMTP; what is stored is checked through
# facteurctl (Return-Path, Received, the body byte for byte), and so are
# aliases, user+detail filing, the queue for relayed mail, the log line
# and the counters.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp lmdb ssl/);
system('python3 -c "import smtplib, ssl" 2>/dev/null') == 0
    or plan(skip_all => 'python3 with smtplib and ssl is needed');

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 2;
auth_directory var/auth;
storage lmdb { path var/mail; }
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
hostname mx.test;
smtp {
    server { listen 127.0.0.1:%%PORT_1%%; }
    server {
        listen 127.0.0.1:%%PORT_2%%;
        listen 127.0.0.1:%%PORT_3%% ssl;
        submission on;
    }
}
lmtp { listen 127.0.0.1:%%PORT_4%%; listen unix:lmtp.sock; }
metrics { listen 127.0.0.1:%%PORT_5%%; }
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$m->add_user('bob@example.org', 'bob secret');
$m->ctl(qw(alias add team@example.org alice@example.org bob@example.org));
$m->ctl(qw(mailbox create alice@example.org Lists));
$t->run;

my $PY = <<'EOF';
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def show(r): print(repr(r))
EOF

# ---- plain SMTP to a local user, an alias and user+detail -----------------

my ($rc, $out) = $m->python($PY . <<'EOF');
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10)
code, text = s.ehlo('client.test')
print('EHLO', code, text.decode().replace('\n', '|'))
show(s.sendmail('sender@remote.test', ['alice@example.org'],
     b'Subject: one\r\nFrom: sender@remote.test\r\n\r\nhello\r\n.leading dot\r\n'))
show(s.sendmail('sender@remote.test', ['team@example.org', 'alice+Lists@example.org'],
     b'Subject: two\r\n\r\nto the team\r\n'))
s.quit()
EOF
is($rc, 0, 'smtplib sends over plain SMTP') or diag($out);
like($out, qr/EHLO 250 mx\.test\|PIPELINING\|SIZE \d+\|STARTTLS\|8BITMIME\|ENHANCEDSTATUSCODES\|SMTPUTF8\|CHUNKING\|DSN/,
     'EHLO lists the extensions, STARTTLS but no AUTH before TLS') or diag($out);

my @inbox = $m->mailbox('alice@example.org');
is(scalar @inbox, 2, 'alice has two messages in INBOX (direct, and through the alias)')
    or diag(explain(\@inbox));
like($inbox[0] // '', qr/\AReturn-Path: <sender\@remote\.test>\nReceived: from client\.test \(\[127\.0\.0\.1\]\)\n\tby mx\.test \(Facteur\) with ESMTP id [0-9A-F]+\n\tfor <alice\@example\.org>; .+\nSubject: one\nFrom: sender\@remote\.test\n\nhello\n\.leading dot\n\z/,
     'Return-Path and Received are added, the message is stored as sent (dot unstuffed)')
    or diag($inbox[0]);
my @lists = $m->mailbox('alice@example.org', 'Lists');
is(scalar @lists, 1, 'alice+Lists@ is filed into the folder Lists');
like($lists[0] // '', qr/Subject: two/, 'the right message');
my @bob = $m->mailbox('bob@example.org');
is(scalar @bob, 1, 'bob got the alias copy');

# ---- submission: STARTTLS then AUTH; implicit TLS --------------------------

($rc, $out) = $m->python($PY . <<'EOF');
s = smtplib.SMTP('127.0.0.1', %%PORT_2%%, timeout=10)
s.ehlo()
try:
    s.sendmail('alice@example.org', ['bob@example.org'], b'Subject: x\r\n\r\nx\r\n')
except smtplib.SMTPSenderRefused as e: print('NOAUTH', e.smtp_code, e.smtp_error.decode())
try:
    s.login('alice@example.org', 'alice secret')
except smtplib.SMTPException as e: print('PLAINTEXT', e)
s.starttls(context=ctx); s.ehlo()
print('AUTH', s.esmtp_features.get('auth'))
s.login('alice@example.org', 'alice secret')
show(s.sendmail('alice@example.org', ['bob@example.org', 'someone@elsewhere.test'],
     b'Subject: submitted\r\n\r\nover STARTTLS\r\n'))
s.quit()
s = smtplib.SMTP_SSL('127.0.0.1', %%PORT_3%%, timeout=10, context=ctx)
s.login('bob@example.org', 'bob secret')
show(s.sendmail('bob@example.org', ['alice@example.org'], b'Subject: tls\r\n\r\nimplicit\r\n'))
s.quit()
EOF
is($rc, 0, 'submission with STARTTLS and AUTH, and implicit TLS') or diag($out);
like($out, qr/NOAUTH 530 5\.7\.0 Authentication required/, 'MAIL before AUTH: 530 5.7.0');
like($out, qr/PLAINTEXT/, 'no AUTH offered before TLS');
like($out, qr/AUTH  ?PLAIN LOGIN/, 'AUTH PLAIN LOGIN after STARTTLS');
@bob = $m->mailbox('bob@example.org');
like($bob[-1] // '', qr/with ESMTPSA id .*\n\t\(using TLSv1\.[23] with cipher /,
     'Received says ESMTPSA and the TLS cipher') or diag($bob[-1]);
@inbox = $m->mailbox('alice@example.org');
like($inbox[-1] // '', qr/Subject: tls\n\nimplicit\n\z/, 'implicit TLS delivered');

# ---- LMTP: one reply per recipient, TCP and unix socket --------------------

($rc, $out) = $m->python($PY . <<'EOF');
l = smtplib.LMTP('127.0.0.1', %%PORT_4%%)
show(l.sendmail('z@remote.test', ['alice@example.org', 'nobody@example.org', 'bob@example.org'],
     b'Subject: lmtp\r\n\r\nby lmtp\r\n'))
l.quit()
l = smtplib.LMTP('%%TESTDIR%%/lmtp.sock')
show(l.sendmail('z@remote.test', ['bob@example.org'], b'Subject: unix\r\n\r\nsocket\r\n'))
l.quit()
EOF
is($rc, 0, 'smtplib.LMTP delivers') or diag($out);
like($out, qr/'nobody\@example\.org': \(550, b'5\.1\.1/, 'an unknown recipient is refused at RCPT');
@bob = $m->mailbox('bob@example.org');
like(join('', @bob), qr/Subject: lmtp\n\nby lmtp\n.*Subject: unix\n\nsocket\n/s,
     'both LMTP messages are stored') or diag(explain(\@bob));

# ---- the log line and the counters ---------------------------------------

my $log = $t->read_file('error.log');
like($log, qr/\[notice\] .* [0-9A-F]{18}: from=<alice\@example\.org>, to=<bob\@example\.org>,<someone\@elsewhere\.test>, size=\d+, tls=TLSv1\.[23], delay=[0-9.]+, status=sent/,
     'one log line per message: queue id, from, to, size, TLS, delay') or diag($log);
my $metrics = $t->http_get('/metrics', port => 5);
my $n = Facteur::Test::metric($metrics, 'facteur_smtp_messages_total');
is($n, 6, 'facteur_smtp_messages_total counts the messages') or diag($metrics);
like($metrics, qr/facteur_smtp_rejects_total\{reason="unknown_user"\} 1/,
     'rejects are counted by reason');

$t->stop;
($rc, $out) = $m->ctl(qw(queue list));
like($out, qr/^[0-9A-F]{18}\s+\d+\s+\S+ \S+\s+<alice\@example\.org> -> <someone\@elsewhere\.test>$/m,
     'the relayed recipient waits in the outbound queue (facteurctl queue list)') or diag($out);

$t->done_testing;

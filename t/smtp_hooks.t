#!/usr/bin/perl

# The SMTP phase chains, as a hook module (later the Lua engine) uses
# them, driven by the test-only module t/modules/smtp_hooks: a refusal at
# every phase with the hook's own code and text, WAIT answered from a
# timer (the session reads nothing meanwhile, then goes on), header edits
# and routing that reach the store, DISCARD, and the relay rule that no
# hook can lift.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp lmdb smtp_hooks/);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
load_module %%MODULES%%/fa_test_smtp_hooks_module.so;
auth_directory var/auth;
storage lmdb { path var/mail; }
hostname mx.test;

test_smtp_hook connect reject 554 "5.7.1 not you" match=never;
test_smtp_hook helo reject 550 "5.7.1 bad helo name" match=evil;
test_smtp_hook mail defer 451 "4.7.1 greylisted, come back" match=grey;
test_smtp_hook mail continue wait=300 match=slow;
test_smtp_hook rcpt reject 550 "5.7.1 not this one" match=blocked;
test_smtp_hook rcpt accept match=remote.test;
test_smtp_hook data_headers reject 550 "5.7.1 no spam here" match=SPAM;
test_smtp_header data_headers X-Hooked "yes";
test_smtp_hook data_end discard match=DROP;
test_smtp_hook data_end defer 451 "4.7.1 later" wait=200 match=LATER;
test_smtp_folder Filed;

smtp { server { listen 127.0.0.1:%%PORT_1%%; } }
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$m->add_user('blocked@example.org', 'blocked secret');
$m->ctl(qw(mailbox create alice@example.org Filed));
$t->run;

my ($rc, $out) = $m->python(<<'EOF');
import smtplib, time
def attempt(helo, sender, rcpts, body):
    s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10)
    try:
        code, text = s.ehlo(helo)
        if code != 250:
            print('HELO', code, text.decode()); s.quit(); return
        t0 = time.time()
        r = s.sendmail(sender, rcpts, body)
        print('OK', sorted(r.items()), round(time.time() - t0, 2))
    except smtplib.SMTPHeloError as e: print('HELO', e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPSenderRefused as e: print('MAIL', e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPRecipientsRefused as e: print('RCPT', sorted(e.recipients.items()))
    except smtplib.SMTPDataError as e: print('DATA', e.smtp_code, e.smtp_error.decode())
    try: s.quit()
    except Exception: pass
attempt('evil.test', 'a@x.test', ['alice@example.org'], 'Subject: 1\r\n\r\nx\r\n')
attempt('good.test', 'grey@x.test', ['alice@example.org'], 'Subject: 2\r\n\r\nx\r\n')
attempt('good.test', 'slow@x.test', ['alice@example.org'], 'Subject: slow\r\n\r\nx\r\n')
attempt('good.test', 'a@x.test', ['blocked@example.org', 'alice@example.org'], 'Subject: 4\r\n\r\nx\r\n')
attempt('good.test', 'a@x.test', ['alice@example.org'], 'Subject: SPAM\r\n\r\nx\r\n')
attempt('good.test', 'a@x.test', ['alice@example.org'], 'Subject: DROP\r\n\r\nx\r\n')
attempt('good.test', 'a@x.test', ['alice@example.org'], 'Subject: LATER\r\n\r\nx\r\n')
attempt('good.test', 'a@x.test', ['user@remote.test'], 'Subject: relay\r\n\r\nx\r\n')
attempt('good.test', 'a@x.test', ['alice@example.org'], 'Subject: kept\r\n\r\nkept body\r\n')
EOF
is($rc, 0, 'the hooked sessions ran') or diag($out);
my @r = split /\n/, $out;
is($r[0], 'HELO 550 5.7.1 bad helo name', 'helo: the hook refuses with its own code and text');
is($r[1], 'MAIL 451 4.7.1 greylisted, come back', 'mail: a deferral');
like($r[2] // '', qr/^OK \[\] (0\.[3-9]|[1-9])/, 'mail: WAIT holds the session until the timer, then goes on')
    or diag($r[2]);
like($r[3] // '', qr/^OK \[\('blocked\@example\.org', \(550, b'5\.7\.1 not this one'\)\)\]/,
     'rcpt: a refusal for one recipient, the other one accepted');
is($r[4], 'DATA 550 5.7.1 no spam here', 'data_headers: the message is refused after DATA');
like($r[5] // '', qr/^OK \[\]/, 'data_end: DISCARD answers 250');
is($r[6], 'DATA 451 4.7.1 later', 'data_end: a WAIT that ends in a deferral');
like($r[7] // '', qr/^RCPT \[\('user\@remote\.test', \(554, b'5\.7\.1 <user\@remote\.test>: Relay access denied'\)\)\]/,
     'rcpt: a hook that accepts everything cannot lift the relay rule');
like($r[8] // '', qr/^OK \[\]/, 'a message nobody refuses is accepted');

my @filed = $m->mailbox('alice@example.org', 'Filed');
is(scalar @filed, 3, 'route: the hook filed the accepted messages into Filed (slow, 4, kept)')
    or diag(explain(\@filed));
like($filed[-1] // '', qr/\nX-Hooked: yes\nSubject: kept\n\nkept body\n\z/,
     'data_headers: the added header is stored in front of the message\'s own');
is(scalar($m->mailbox('alice@example.org')), 0, 'nothing went to INBOX (nor the discarded one)');

# a session that goes away while its hook waits: the timer is cancelled,
# the worker goes on
my $c = $t->connect(port => 1);
$c->check(qr/^220 /, 'greeting');
$c->cmd('HELO good.test');
$c->check(qr/^250 /, 'HELO');
$c->cmd('MAIL FROM:<slow@x.test>');
$c->close;
select undef, undef, undef, 0.5;
($rc, $out) = $m->python(<<'EOF');
import smtplib
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10); s.ehlo('good.test')
print(s.sendmail('a@x.test', ['alice@example.org'], 'Subject: after\r\n\r\nx\r\n')); s.quit()
EOF
like($out, qr/^\{\}$/m, 'the server still serves after a session vanished during WAIT') or diag($out);

$t->done_testing;

#!/usr/bin/perl

# Lua hooks over real SMTP sessions: every phase (connect, helo, auth, mail,
# rcpt, data_headers, data_end, route) answering each verdict -- reject and
# defer with the hook's own code and text, disconnect, accept, discard,
# quarantine(folder) and nothing -- with what the client hears and what the
# store holds; which hooks run for which role (smtp { } for MX and
# submission, lmtp { } for LMTP) and for which domain (domain { }); several
# hooks on one phase in configuration order; an object kept past its call;
# a hook that fails (421 at connect, 451 elsewhere, logged with its line);
# texts made safe for a reply line; and a hook that sleeps while another
# session is served, or whose client leaves or pipelines meanwhile.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp lmdb lua/);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
hostname mx.test;

domain hooked.test {
    lua_hook rcpt lua/domain_rcpt.lua;
    lua_hook data_end lua/domain_data.lua;
    lua_hook mail lua/domain_mail.lua;
    lua_hook auth lua/domain_auth.lua;
}

smtp {
    auth_plaintext on;
    auth_failure_delay 10ms;
    max_errors 100;
    lua_hook connect lua/connect.lua;
    lua_hook helo lua/helo.lua;
    lua_hook helo lua/role.lua;
    lua_hook auth lua/auth.lua;
    lua_hook mail lua/mail.lua;
    lua_hook mail lua/order1.lua;
    lua_hook mail lua/order2.lua;
    lua_hook mail lua/stale.lua;
    lua_hook mail lua/sleepy.lua;
    lua_hook rcpt lua/rcpt.lua;
    lua_hook data_headers lua/data_headers.lua;
    lua_hook data_end lua/data_end.lua;
    lua_hook route lua/route.lua;
    server { listen 127.0.0.1:%%PORT_1%%; }
    server { listen 127.0.0.1:%%PORT_2%%; submission on; }
}
lmtp {
    lua_hook helo lua/lmtp_role.lua;
    listen 127.0.0.1:%%PORT_3%%;
}
EOF
mkdir $t->testdir . '/var';

# the verdict a phase's hook gives comes from the file "mode": "PHASE WORD"
$t->write_file_expand('lua/verdict.lua', <<'EOF');
local M = {}
local reject_code = { connect = 554, auth = 535 }
local defer_code = { connect = 421, auth = 454 }

local function mode()
    local f = io.open("%%TESTDIR%%/mode")
    if not f then return "" end
    local m = f:read("*l") or ""
    f:close()
    return m
end

function M.decide(phase)
    local p, word = mode():match("^(%S+) (%S+)$")
    if p ~= phase then return nil end
    if word == "reject" then
        return facteur.reject(reject_code[phase] or 550, "5.7.1 " .. phase .. " refuses")
    elseif word == "defer" then
        return facteur.defer(defer_code[phase] or 451, "4.7.1 " .. phase .. " defers")
    elseif word == "disconnect" then
        return facteur.disconnect(421, "4.7.0 " .. phase .. " hangs up")
    elseif word == "accept" then
        return facteur.accept()
    elseif word == "discard" then
        return facteur.discard()
    elseif word == "quarantine" then
        return facteur.quarantine("Held")
    elseif word == "bare" then
        return facteur.reject("no status given")
    elseif word == "disconnect5" then
        return facteur.disconnect(554, "go away")
    elseif word == "defer5" then
        return facteur.defer(550, "4.7.1 a 5xx code with defer")
    elseif word == "inject" then
        return facteur.reject(550, "5.7.1 one line\r\n250 2.0.0 injected")
    elseif word == "notverdict" then
        return "yes"
    elseif word == "plainreject" then
        return facteur.reject()
    elseif word == "plaindefer" then
        return facteur.defer()
    elseif word == "error" then
        error("the script broke")
    end
    return nil                                  -- "nothing"
end
return M
EOF
for my $phase (qw(connect helo auth mail rcpt data_headers data_end route)) {
    $t->write_file("lua/$phase.lua", <<"EOF");
local verdict = require("verdict")
return function(session, txn) return verdict.decide("$phase") end
EOF
}
$t->write_file('lua/role.lua', <<'EOF');
return function(session) facteur.log("info", "smtp-helo role=" .. session.role) end
EOF
$t->write_file('lua/lmtp_role.lua', <<'EOF');
return function(session) facteur.log("info", "lmtp-helo role=" .. session.role) end
EOF
$t->write_file('lua/order1.lua', <<'EOF');
return function(session, txn)
    local who = txn.sender:match("^(.-)@")
    if who == "order" then facteur.log("info", "order1 ran") return nil end
    if who == "first" then return facteur.reject(550, "5.7.1 first hook") end
    if who == "acceptfirst" then return facteur.accept() end
end
EOF
$t->write_file('lua/order2.lua', <<'EOF');
return function(session, txn)
    local who = txn.sender:match("^(.-)@")
    if who == "order" then facteur.log("info", "order2 ran") end
    if who == "order" or who == "first" or who == "acceptfirst" then
        return facteur.reject(550, "5.7.1 second hook")
    end
end
EOF
# keeps the objects of one call, uses them in a later one
$t->write_file('lua/stale.lua', <<'EOF');
return function(session, txn)
    local who = txn.sender:match("^(.-)@")
    if who == "stash" then
        stashed_txn, stashed_session = txn, session
    elseif who == "usetxn" then
        local s = stashed_txn.sender
        return facteur.reject(550, "5.7.1 stale txn worked: " .. tostring(s))
    elseif who == "usesession" then
        local ip = stashed_session.ip
        return facteur.reject(550, "5.7.1 stale session worked: " .. tostring(ip))
    end
end
EOF
$t->write_file('lua/sleepy.lua', <<'EOF');
return function(session, txn)
    if txn.sender:match("^sleepy@") then
        facteur.sleep(2)
        facteur.log("info", "sleepy woke up")
    end
end
EOF
$t->write_file('lua/domain_rcpt.lua', <<'EOF');
return function(session, txn)
    facteur.log("info", "domain rcpt hook: " .. txn.recipient.address)
    if txn.recipient.address:match("^blocked@") then
        return facteur.reject(550, "5.7.1 hooked.test does not want you")
    end
    txn:deliver("Domain")
end
EOF
$t->write_file('lua/domain_mail.lua', <<'EOF');
return function(session, txn)
    return facteur.reject(550, "5.7.1 hooked.test senders go through submission")
end
EOF
$t->write_file('lua/domain_auth.lua', <<'EOF');
return function(session)
    return facteur.reject(535, "5.7.8 hooked.test logins are closed")
end
EOF
$t->write_file('lua/domain_data.lua', <<'EOF');
return function(session, txn)
    txn:add_header("X-Domain-Hook", "hooked.test")
end
EOF

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$m->add_user('bob@example.org', 'bob secret');
$m->add_user('blocked@example.org', 'x');
$m->add_user('carol@hooked.test', 'x');
$m->add_user('blocked@hooked.test', 'x');
$m->ctl(qw(mailbox create bob@example.org Held));
$m->ctl(qw(mailbox create carol@hooked.test Domain));
$m->ctl(qw(mailbox create bob@example.org Domain));
$t->run;

# ---- every phase, every verdict --------------------------------------------

my @phases = qw(connect helo auth mail rcpt data_headers data_end route);
my @words = qw(reject defer disconnect accept discard quarantine nothing);

my $lib = <<'EOF';
import smtplib, os, sys, time, threading, base64
def setmode(m):
    with open('%%TESTDIR%%/mode.tmp', 'w') as f: f.write(m + '\n')
    os.rename('%%TESTDIR%%/mode.tmp', '%%TESTDIR%%/mode')
def still_open(s):
    try:
        code, _ = s.noop()
        return 'open' if code == 250 else 'closed'
    except Exception:
        return 'closed'
def session(port, sender, rcpts, subject, login=None, helo='client.test', body='body\r\n'):
    try:
        s = smtplib.SMTP('127.0.0.1', port, timeout=15)
    except smtplib.SMTPConnectError as e:
        return 'CONNECT %d %s' % (e.smtp_code, e.smtp_error.decode())
    except Exception as e:
        return 'CONNECT ' + type(e).__name__
    def fail(step, code, text):
        return '%s %d %s %s' % (step, code, text.decode() if isinstance(text, bytes) else text,
                                still_open(s))
    try:
        code, text = s.ehlo(helo)
        if code != 250: return fail('HELO', code, text)
        if login:
            # one AUTH PLAIN, so the answer is the server's, not smtplib's next attempt
            cred = base64.b64encode(('\0%s\0%s' % login).encode()).decode()
            code, text = s.docmd('AUTH', 'PLAIN ' + cred)
            if code != 235: return fail('AUTH', code, text)
        code, text = s.mail(sender)
        if code != 250: return fail('MAIL', code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250: return fail('RCPT', code, text)
        msg = 'From: <%s>\r\nSubject: %s\r\n\r\n%s' % (sender, subject, body)
        try: code, text = s.data(msg)
        except smtplib.SMTPDataError as e: return fail('DATA', e.smtp_code, e.smtp_error)
        if code != 250: return fail('DATA', code, text)
        return 'OK %d %s' % (code, still_open(s))
    except smtplib.SMTPServerDisconnected:
        return 'DISCONNECTED'
    finally:
        try: s.close()
        except Exception: pass
EOF

my $script = $lib . "for phase in " . join(',', map { "'$_'" } @phases) . ",:\n"
    . "    for word in " . join(',', map { "'$_'" } @words) . ",:\n" . <<'EOF';
        setmode(phase + ' ' + word)
        print(phase, word, '|', session(%%PORT_2%%, 'alice@example.org', ['bob@example.org'],
              phase + ' ' + word, login=('alice@example.org', 'alice secret')))
setmode('none none')
EOF
my ($rc, $out) = $m->python($script);
is($rc, 0, 'the phase sessions ran') or diag($out);
my %got = map { /^(\S+ \S+) \| (.*)$/ ? ($1 => $2) : () } split /\n/, $out;

my %step = (connect => 'CONNECT', helo => 'HELO', auth => 'AUTH', mail => 'MAIL',
            rcpt => 'RCPT', data_headers => 'DATA', data_end => 'DATA', route => 'DATA');
my %reject_code = (connect => 554, auth => 535);
my %defer_code = (connect => 421, auth => 454);
my (@inbox, @held);
for my $p (@phases) {
    my $st = $step{$p};
    my $r = $got{"$p reject"} // '(no result)';
    my $want = "$st " . ($reject_code{$p} // 550) . " 5.7.1 $p refuses";
    $want .= ' open' unless $p eq 'connect';
    is($r, $want, "$p: reject, with the hook's code and text");
    $r = $got{"$p defer"} // '(no result)';
    $want = "$st " . ($defer_code{$p} // 451) . " 4.7.1 $p defers";
    $want .= ' open' unless $p eq 'connect';
    is($r, $want, "$p: defer, with the hook's code and text");
    $r = $got{"$p disconnect"} // '(no result)';
    $want = "$st 421 4.7.0 $p hangs up";
    $want .= ' closed' unless $p eq 'connect';
    is($r, $want, "$p: disconnect replies, then closes");
    for my $w (qw(accept discard quarantine nothing)) {
        like($got{"$p $w"} // '(no result)', qr/^OK 250 open$/, "$p: $w: the message is taken");
    }
    push @inbox, "$p accept", "$p nothing";
    push @held, "$p quarantine";
}

sub subjects {
    my @msgs = @_;
    return [sort map { /^Subject: (.*)$/m ? $1 : '?' } @msgs];
}
is_deeply(subjects($m->mailbox('bob@example.org', 'INBOX')), [sort @inbox],
          'INBOX: the accepted messages and those no hook decided, nothing discarded or '
          . 'refused') or diag($out);
is_deeply(subjects($m->mailbox('bob@example.org', 'Held')), [sort @held],
          'Held: the quarantined messages, whatever the phase that said so');
my $log = $t->read_file('error.log');
unlike($log, qr/lua hook .* failed/, 'no hook failed in these sessions')
    or diag(join "\n", grep { /lua hook/ } split /\n/, $log);

# ---- texts: a status is added when the hook gave none, of the code's class;
#      no line breaks; a code that does not go with the verdict is a failure

$script = $lib . <<'EOF';
for word in ('bare', 'disconnect5', 'defer5', 'inject', 'notverdict'):
    setmode('mail ' + word)
    print(word, '|', session(%%PORT_1%%, 'x@remote.test', ['bob@example.org'], 'texts'))
for phase in ('connect', 'auth', 'mail', 'data_end'):
    for word in ('plainreject', 'plaindefer'):
        setmode(phase + ' ' + word)
        print(word + '-' + phase, '|', session(%%PORT_2%%, 'alice@example.org', ['bob@example.org'],
              'defaults', login=('alice@example.org', 'alice secret')))
for phase in ('connect', 'helo', 'mail', 'rcpt', 'data_headers', 'data_end', 'route'):
    setmode(phase + ' error')
    print('error-' + phase, '|', session(%%PORT_1%%, 'x@remote.test', ['bob@example.org'], 'error'))
setmode('none none')
EOF
($rc, $out) = $m->python($script);
%got = map { /^(\S+) \| (.*)$/ ? ($1 => $2) : () } split /\n/, $out;
is($got{bare}, 'MAIL 550 5.7.1 no status given open', 'a text without a status gets 5.7.1');
is($got{disconnect5}, 'MAIL 554 5.7.0 go away closed',
   'disconnect with a 5xx code: a 5.x.x status, not 4.7.0');
is($got{defer5}, 'MAIL 451 4.3.0 Temporary policy failure, try again later open',
   'defer with a 5xx code: the hook failed, 451');
is($got{inject}, 'MAIL 550 5.7.1 one line  250 2.0.0 injected open',
   'CR LF in a hook\'s text cannot start a second reply');
is($got{notverdict}, 'MAIL 451 4.3.0 Temporary policy failure, try again later open',
   'a hook that returns something that is no verdict: 451');
my %defaults = (
    'plainreject-connect' => 'CONNECT 554 5.7.1 Access denied',
    'plaindefer-connect' => 'CONNECT 421 4.3.0 Try again later',
    'plainreject-auth' => 'AUTH 535 5.7.8 Authentication credentials invalid open',
    'plaindefer-auth' => 'AUTH 454 4.7.0 Temporary authentication failure open',
    'plainreject-mail' => 'MAIL 550 5.7.1 Sender refused open',
    'plaindefer-mail' => 'MAIL 451 4.7.1 Try again later open',
    'plainreject-data_end' => 'DATA 550 5.7.1 Message refused open',
    'plaindefer-data_end' => 'DATA 451 4.7.1 Try again later open',
);
is($got{$_}, $defaults{$_}, "$_: without a code or text, the verdict's code and the phase's text")
    for sort keys %defaults;
is($got{'error-connect'}, 'CONNECT 421 4.3.0 Temporary policy failure, try again later',
   'a hook that fails at connect: 421 (a greeting is 220, 421 or 554), then the end');
my %estep = (helo => 'HELO', mail => 'MAIL', rcpt => 'RCPT', data_headers => 'DATA',
             data_end => 'DATA', route => 'DATA');
for my $p (sort keys %estep) {
    is($got{"error-$p"}, "$estep{$p} 451 4.3.0 Temporary policy failure, try again later open",
       "a hook that fails at $p: 451 4.3.0");
}
ok(!(grep { /Subject: error/ } $m->mailbox('bob@example.org')), 'nothing accepted because a hook failed');
$log = $t->read_file('error.log');
like($log, qr/lua hook \S*data_end\.lua failed: \S*verdict\.lua:\d+: the script broke/,
     'each failure logged with the script and line');
like($log, qr/lua hook \S*mail\.lua failed: .*(?:defer.*400\.\.499|550 does not go with defer)/,
     'logged');
like($log, qr/lua hook \S*mail\.lua failed: the hook returned a string, not a verdict/, 'logged');

# ---- roles ---------------------------------------------------------------

($rc, $out) = $m->python(<<'EOF');
import smtplib
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10); s.ehlo('mx.client'); s.quit()
s = smtplib.SMTP('127.0.0.1', %%PORT_2%%, timeout=10); s.ehlo('sub.client'); s.quit()
s = smtplib.LMTP('127.0.0.1', %%PORT_3%%); s.sock.settimeout(10)
s.ehlo('lmtp.client')
print(s.sendmail('x@remote.test', ['bob@example.org'], 'Subject: by lmtp\r\n\r\nx\r\n'))
s.quit()
EOF
like($out, qr/^\{\}$/m, 'LMTP delivers') or diag($out);
$log = $t->read_file('error.log');
like($log, qr/smtp-helo role=mx/, 'smtp { } hooks run for MX sessions');
like($log, qr/smtp-helo role=submission/, 'and for submission sessions');
like($log, qr/lmtp-helo role=lmtp/, 'lmtp { } hooks run for LMTP sessions');
unlike($log, qr/smtp-helo role=lmtp/, 'smtp { } hooks do not run for LMTP');
unlike($log, qr/lmtp-helo role=(mx|submission)/, 'lmtp { } hooks do not run for SMTP');

# ---- domain hooks --------------------------------------------------------

$script = $lib . <<'EOF';
print(session(%%PORT_1%%, 'x@remote.test', ['carol@hooked.test', 'bob@example.org'], 'two domains'))
print(session(%%PORT_1%%, 'x@remote.test', ['bob@example.org'], 'one domain'))
print(session(%%PORT_1%%, 'x@remote.test', ['blocked@hooked.test'], 'blocked 1'))
print(session(%%PORT_1%%, 'x@remote.test', ['blocked@example.org'], 'blocked 2'))
print(session(%%PORT_1%%, 'carol@hooked.test', ['bob@example.org'], 'from hooked'))
print(session(%%PORT_2%%, 'carol@hooked.test', ['bob@example.org'], 'login hooked',
              login=('carol@hooked.test', 'x')))
EOF
($rc, $out) = $m->python($script);
my @r = split /\n/, $out;
is($r[0], 'OK 250 open', 'a message for two domains, one with hooks');
is($r[1], 'OK 250 open', 'a message for the domain without hooks');
is($r[2], 'RCPT 550 5.7.1 hooked.test does not want you open',
   'the domain\'s rcpt hook refuses its own recipient');
is($r[3], 'OK 250 open', 'the same local part in the other domain: no hook, accepted');
is($r[4], 'MAIL 550 5.7.1 hooked.test senders go through submission open',
   'the domain\'s mail hook runs for a sender of the domain (and not for the others: '
   . 'every other sender above got through)');
is($r[5], 'AUTH 535 5.7.8 hooked.test logins are closed open',
   'the domain\'s auth hook runs for a login of the domain (alice\'s above were not refused)');
my @carol = $m->mailbox('carol@hooked.test', 'Domain');
is(scalar @carol, 1, 'the domain\'s rcpt hook filed its recipient in Domain');
like($carol[0] // '', qr/^X-Domain-Hook: hooked\.test$/m, 'its data_end hook ran');
my @bob = grep { /Subject: (two|one) domain/ } $m->mailbox('bob@example.org', 'INBOX');
is(scalar @bob, 2, 'the other domain\'s recipient: INBOX, not filed by the other domain\'s hook');
my ($two) = grep { /Subject: two domains/ } @bob;
like($two // '', qr/^X-Domain-Hook: hooked\.test$/m,
     'data_end is about the whole message: a recipient in the domain runs its hook');
my ($one) = grep { /Subject: one domain/ } @bob;
unlike($one // '', qr/X-Domain-Hook/, 'a message without the domain\'s recipients: not run');
is(scalar $m->mailbox('bob@example.org', 'Domain'), 0, 'nothing of bob\'s filed in Domain');
$log = $t->read_file('error.log');
is(scalar(() = $log =~ /domain rcpt hook: /g), 2,
   'the domain\'s rcpt hook ran for its two recipients only');

# ---- several hooks on one phase ----------------------------------------------

$script = $lib . <<'EOF';
for who in ('order', 'first', 'acceptfirst'):
    print(who, session(%%PORT_1%%, who + '@remote.test', ['bob@example.org'], who))
EOF
($rc, $out) = $m->python($script);
like($out, qr/^order MAIL 550 5\.7\.1 second hook open$/m,
     'the first hook returned nothing: the second one\'s verdict');
like($out, qr/^first MAIL 550 5\.7\.1 first hook open$/m, 'the first verdict wins');
like($out, qr/^acceptfirst OK 250 open$/m, 'an accept stops the chain too');
$log = $t->read_file('error.log');
like($log, qr/order1 ran.*\n(?:.*\n)*?.*order2 ran/, 'in configuration order');

# ---- objects kept past their call --------------------------------------------

$script = $lib . <<'EOF';
print(session(%%PORT_1%%, 'stash@remote.test', ['bob@example.org'], 'stash'))
print(session(%%PORT_1%%, 'usetxn@remote.test', ['bob@example.org'], 'use txn'))
print(session(%%PORT_1%%, 'usesession@remote.test', ['bob@example.org'], 'use session'))
EOF
($rc, $out) = $m->python($script);
@r = split /\n/, $out;
is($r[0], 'OK 250 open', 'the hook keeps its objects in globals');
is($r[1], 'MAIL 451 4.3.0 Temporary policy failure, try again later open',
   'a transaction used in a later call: an error, the transaction deferred');
is($r[2], 'MAIL 451 4.3.0 Temporary policy failure, try again later open',
   'a session used in a later session: the same');
$log = $t->read_file('error.log');
like($log, qr/lua hook \S*stale\.lua failed: \S*stale\.lua:6: a txn object is valid only during the hook call/,
     'logged with the script and its line');
like($log, qr/stale\.lua:9: a session object is valid only during the hook call/,
     'for the session too');

# ---- a hook that sleeps does not stop the others -------------------------------

$script = $lib . <<'EOF';
done = {}
def run(name, sender):
    r = session(%%PORT_1%%, sender, ['bob@example.org'], name)
    done[name] = (time.time(), r)
a = threading.Thread(target=run, args=('sleeper', 'sleepy@remote.test'))
t0 = time.time()
a.start()
time.sleep(0.3)
run('quick', 'quick@remote.test')
a.join()
print('quick', done['quick'][1], 'before' if done['quick'][0] < done['sleeper'][0] else 'after')
print('sleeper', done['sleeper'][1], round(done['sleeper'][0] - t0, 1))
EOF
($rc, $out) = $m->python($script);
like($out, qr/^quick OK 250 open before$/m,
     'a session is served from start to end while another one\'s hook sleeps') or diag($out);
like($out, qr/^sleeper OK 250 open (1\.[89]|[2-9])/m, 'the sleeper goes on after its sleep')
    or diag($out);

# a client that leaves while its hook sleeps; one that pipelines behind a sleeping hook
my $c = $t->connect(port => 1);
$c->check(qr/^220 /, 'greeting');
$c->cmd('HELO c.test');
$c->check(qr/^250 /, 'HELO');
$c->cmd('MAIL FROM:<sleepy@remote.test>');
select undef, undef, undef, 0.3;          # the hook sleeps by now: the FIN comes on its own
$c->close;
$c = $t->connect(port => 1);
$c->check(qr/^220 /, 'another session');
$c->cmd('HELO c.test');
$c->check(qr/^250 /, 'HELO');
$c->send("MAIL FROM:<sleepy\@remote.test>\r\nRCPT TO:<bob\@example.org>\r\nDATA\r\n");
$c->check(qr/^250 2\.1\.0 /, 'pipelined: MAIL answered after the hook\'s sleep', 10);
$c->check(qr/^250 2\.1\.5 /, 'RCPT read only then');
$c->check(qr/^354 /, 'DATA');
$c->send("Subject: pipelined\r\n\r\nx\r\n.\r\nQUIT\r\n");
$c->check(qr/^250 2\.0\.0 Ok: queued/, 'the message');
$c->check(qr/^221 /, 'QUIT');
$c->close;
($rc, $out) = $m->python($lib . <<'EOF');
print(session(%%PORT_1%%, 'x@remote.test', ['bob@example.org'], 'after'))
EOF
is($out, "OK 250 open\n", 'the worker still serves after a session left during a sleep');
ok((grep { /Subject: pipelined/ } $m->mailbox('bob@example.org')), 'the pipelined message is stored');
$log = $t->read_file('error.log');
is(scalar(() = $log =~ /lua: sleepy woke up/g), 2,
   'the sleep of the session that left was cancelled, the others woke up');
like($log, qr/client closed the connection while a mail hook waited/, 'and logged');

$t->done_testing;

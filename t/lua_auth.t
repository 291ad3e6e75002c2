#!/usr/bin/perl

# Custom authentication from Lua and the IMAP/POP3 login and logout hooks,
# over real SMTP AUTH, IMAP and POP3 sessions (python3 smtplib, imaplib,
# poplib, and raw clients where a client must misbehave).
#
# lua_auth: accept(user) logs a legacy login ("alice", a password only the
# script knows) in as that directory user -- IMAP sees her INBOX, POP3
# counts her messages, SMTP AUTH lets her submit; accept() with no user
# keeps the login; the accepted user must be an enabled user of the
# directory (a name that is not an address, an unknown user, an over-long
# name: refused as a temporary failure, logged); reject() and disconnect()
# are the protocol's auth failure, delayed and counted towards
# max_auth_failures; defer(), a script error, a budget exceeded and a
# nonsense result are a temporary failure (not counted), logged with the
# script and line; nil lets the directory decide; the client table
# (protocol, ip); a script that sleeps; clients that disconnect while the
# script sleeps (the worker lives on); a fast stop while scripts sleep (the
# logins are cancelled, the scripts never resume).
#
# imap/pop3 login hooks refuse a login the directory accepted ("outside
# the allowed hours"): the session stays unauthenticated; disconnect()
# refuses too; defer, quarantine() and a failing hook are temporary
# failures; a hook that sleeps; clients that leave while it sleeps.  Logout hooks run at LOGOUT/QUIT and when
# the client just drops, never for a refused login; one that sleeps runs to
# its end after the session is gone.  domain NAME { lua_hook login/logout }
# runs for that domain's users only, and only over IMAP and POP3.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/lua imap pop3 smtp lmdb/);
plan(skip_all => 'python3 is not installed') unless Facteur::Test::_which('python3');

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
lua_auth lua/auth.lua;
lua_hook_timeout 1000000;
imap {
    auth_plaintext on;
    auth_failure_delay 300ms;
    max_auth_failures 3;
    lua_hook login lua/login.lua;
    lua_hook logout lua/logout.lua;
    server { listen 127.0.0.1:%%PORT_1%%; }
}
pop3 {
    auth_plaintext on;
    auth_failure_delay 300ms;
    max_auth_failures 3;
    lua_hook login lua/login.lua;
    lua_hook logout lua/logout.lua;
    server { listen 127.0.0.1:%%PORT_2%%; }
}
smtp {
    auth_plaintext on;
    auth_failure_delay 300ms;
    max_auth_failures 3;
    server { listen 127.0.0.1:%%PORT_3%%; submission on; }
    server { listen 127.0.0.1:%%PORT_4%%; }
}
domain other.test {
    lua_hook login lua/other_login.lua;
    lua_hook logout lua/other_logout.lua;
}
EOF

# the line of a script that holds MARK, for the log's "file:line"
my %line_of;
sub script {
    my ($name, $text) = @_;
    my $n = 0;
    for (split /\n/, $text) {
        $n++;
        $line_of{"$name:$1"} = $n if /-- LINE:(\w+)/;
    }
    $t->write_file("lua/$name", $text);
}

script('auth.lua', <<'LUA');
-- logins only this script knows, each mapped to a user of the directory
local legacy = {
    alice = { password = "legacy pw", user = "alice@example.org" },
}

return function(login, password, client)
    facteur.log("auth: login=" .. login .. " protocol=" .. client.protocol
                .. " ip=" .. client.ip)
    local l = legacy[login]
    if l then
        if password == l.password then
            return facteur.accept(l.user)
        end
        return facteur.reject()
    end
    if login == "reject@example.org" then return facteur.reject() end
    if login == "defer@example.org" then return facteur.defer() end
    if login == "error@example.org" then
        error("deliberate failure")                -- LINE:error
    end
    if login == "loop@example.org" then
        local n = 0
        while true do n = n + 1 end                -- LINE:loop
    end
    if login == "number" then return 42 end
    if login == "bye@example.org" then return facteur.disconnect() end
    if login == "slow" then
        facteur.sleep(0.2)
        return facteur.accept("bob@example.org")
    end
    if login == "slower" then
        facteur.sleep(1)
        facteur.log("auth: slower woke up")
        return facteur.accept("bob@example.org")
    end
    if login == "notaddr" then return facteur.accept("not an address") end
    if login:sub(1, 4) == "evil" then return facteur.accept("not an address") end
    if login == "ghost" then return facteur.accept("ghost@example.org") end
    if login == "toolong" then
        return facteur.accept(string.rep("b", 64) .. "@" .. string.rep("x", 60) .. "."
                              .. string.rep("y", 60) .. "." .. string.rep("z", 60) .. "."
                              .. string.rep("w", 60) .. ".org" .. string.rep("q", 100))
    end
    if login == "carol@example.org" and password == "lua pw" then
        return facteur.accept()                    -- as herself
    end
    return nil                                     -- the directory decides
end
LUA

script('login.lua', <<'LUA');
-- when each user may log in, hours in UTC, [from, to)
local hours = {
    ["dave@example.org"] = { 0, 0 },               -- never
}

return function(client)
    facteur.log("login hook: protocol=" .. client.protocol .. " user=" .. client.user
                .. " ip=" .. client.ip)
    local h = hours[client.user]
    if h then
        local now = tonumber(os.date("!%H"))
        if now < h[1] or now >= h[2] then
            facteur.log("login hook: " .. client.user .. " outside the allowed hours")
            return facteur.reject()
        end
    end
    if client.user == "erin@example.org" then return facteur.defer() end
    if client.user == "frank@example.org" then facteur.sleep(0.2) end
    if client.user == "henry@example.org" then
        facteur.sleep(1)
        facteur.log("login hook: henry woke up")
    end
    if client.user == "jack@example.org" then return facteur.disconnect() end
    if client.user == "kate@example.org" then return facteur.quarantine() end
    if client.user == "ivan@example.org" then
        local x = nil
        return x.field                             -- LINE:hookerror
    end
end
LUA

script('logout.lua', <<'LUA');
return function(client)
    if client.user == "frank@example.org" then facteur.sleep(0.1) end
    local n = facteur.kv.incr("logouts:" .. client.protocol .. ":" .. client.user)
    facteur.log("logout hook: protocol=" .. client.protocol .. " user=" .. client.user
                .. " ip=" .. client.ip .. " n=" .. n)
end
LUA

script('other_login.lua', <<'LUA');
return function(client)
    facteur.log("other.test login: protocol=" .. client.protocol .. " user=" .. client.user)
    if client.user == "gina@other.test" then return facteur.reject() end
end
LUA

script('other_logout.lua', <<'LUA');
return function(client)
    facteur.log("other.test logout: protocol=" .. client.protocol .. " user=" .. client.user)
end
LUA

mkdir $t->testdir . '/var';
my $m = Facteur::Mail->new($t);
# one import rather than a facteurctl per user: SHA512-CRYPT, made here
$m->ctl(qw(domain add), $_) for qw(example.org other.test);
my $passwd = join '', map {
    my ($name) = /^(\w+)/;
    "$_:{SHA512-CRYPT}" . crypt("$name secret", '$6$' . substr("${name}saltsalt", 0, 8) . '$')
        . "\n"
} (map { "$_\@example.org" } qw(alice bob carol dave erin frank henry ivan jack kate)),
  (map { "$_\@other.test" } qw(gina hank));
my ($rc, $imported) = $m->ctl(qw(import passwd-file -), \$passwd);
is($rc, 0, 'users imported') or diag($imported);
$t->run;

# ---- helpers -------------------------------------------------------------------

sub log_text { $t->read_file('error.log') }

# wait until the log matches RE; true if it did
sub log_has {
    my ($re, $secs) = @_;
    return $t->wait_for(sub { log_text() =~ $re }, $secs // 5);
}

# like() and unlike() on the log, without printing the whole log on failure
sub log_like {
    my ($re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok(log_text() =~ $re, $name) or diag("the log does not match $re");
}

sub log_unlike {
    my ($re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @hit = log_text() =~ /^(.*$re.*)$/m;
    ok(!@hit, $name) or diag("in the log: $hit[0]");
}

sub count_log {
    my ($re) = @_;
    my $n = () = log_text() =~ /$re/g;
    return $n;
}

my $tag = 'a000';

# an IMAP command's lines, up to its tagged reply
sub imap_cmd {
    my ($c, $line, $timeout) = @_;
    my $tg = ++$tag;
    $c->cmd("$tg $line");
    my @lines;
    while (defined(my $l = $c->line($timeout // 10))) {
        push @lines, $l;
        last if $l =~ /^\Q$tg\E /;
    }
    return @lines;
}

sub imap_connect {
    my $c = $t->connect(port => 1);
    $c->line;
    return $c;
}

# a fresh IMAP session and LOGIN: (client, tagged reply, seconds it took)
sub imap_login {
    my ($user, $pass) = @_;
    my $c = imap_connect();
    my $t0 = time;
    my @r = imap_cmd($c, qq{LOGIN "$user" "$pass"});
    return ($c, $r[-1] // '<nothing>', time - $t0);
}

sub pop3_connect {
    my $c = $t->connect(port => 2);
    $c->line;
    return $c;
}

# a fresh POP3 session, USER and PASS: (client, reply to PASS, seconds)
sub pop3_login {
    my ($user, $pass) = @_;
    my $c = pop3_connect();
    $c->cmd("USER $user");
    $c->line;
    my $t0 = time;
    $c->cmd("PASS $pass");
    return ($c, $c->line(10) // '<nothing>', time - $t0);
}

sub python {
    my ($script) = @_;
    my ($rc, $out) = $m->python($script);
    diag("python exited $rc: $out") if $rc;
    return $out;
}

# SMTP AUTH through smtplib on the submission port, one fresh session per
# [login, password, mechanism] (python starts once: it is slow to start);
# returns { "login/password/MECH" => "CODE text" }
sub smtp_auths {
    my (@cases) = @_;
    my $list = join ",\n", map {
        my ($u, $p, $mech) = @$_;
        "    ('$u', '$p', '" . ($mech // 'PLAIN') . "')"
    } @cases;
    my $out = python(<<"PY");
import smtplib
for user, password, mech in [
$list
]:
    s = smtplib.SMTP('127.0.0.1', %%PORT_3%%, timeout=20)
    s.ehlo('client.test')
    s.user, s.password = user, password
    try:
        code, resp = s.auth(mech, getattr(s, 'auth_' + mech.lower()))
    except smtplib.SMTPAuthenticationError as e:
        code, resp = e.smtp_code, e.smtp_error
    print('%s/%s/%s=%d %s' % (user, password, mech, code, resp.decode()))
    try:
        s.quit()
    except Exception:
        pass
PY
    my %r = $out =~ /^(\S+\/[^=]*\/\w+)=(.*)$/mg;
    return \%r;
}

my %smtp_cases = (
    legacy_login => ['alice', 'legacy pw', 'LOGIN'],
    reject => ['reject@example.org', 'x'],
    defer => ['defer@example.org', 'x'],
    error => ['error@example.org', 'x'],
    loop => ['loop@example.org', 'x'],
    ghost => ['ghost', 'x'],
    evil => ['evil\r\n1999/01/01 00:00:00 [notice] forged', 'x'],
    bob => ['bob@example.org', 'bob secret'],
    bob_wrong => ['bob@example.org', 'wrong'],
    slow => ['slow', 'x'],
    dave => ['dave@example.org', 'dave secret'],
    gina => ['gina@other.test', 'gina secret'],
);
my $smtp_results;

# the answer to one of %smtp_cases (all are tried at the first call)
sub smtp_auth {
    my ($case) = @_;
    $smtp_results //= smtp_auths(values %smtp_cases);
    my ($u, $p, $mech) = @{$smtp_cases{$case}};
    return $smtp_results->{"$u/$p/" . ($mech // 'PLAIN')} // '<no answer>';
}

# ---- mail for alice, through the MX -------------------------------------------------

my $out = python(<<'PY');
import smtplib
s = smtplib.SMTP('127.0.0.1', %%PORT_4%%, timeout=20)
for i in (1, 2):
    s.sendmail('sender@remote.test', ['alice@example.org'],
               'From: sender@remote.test\r\nSubject: for alice %d\r\n\r\nhello\r\n' % i)
s.quit()
print('sent')
PY
like($out, qr/^sent$/m, 'two messages delivered to alice');

# ---- lua_auth: accept(user) -------------------------------------------------------

$out = python(<<'PY');
import imaplib
c = imaplib.IMAP4('127.0.0.1', %%PORT_1%%)
typ, data = c.login('alice', 'legacy pw')
print('login', typ)
typ, data = c.select('INBOX')
print('exists', data[0].decode())
typ, data = c.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print('subjects', sorted(p[1].decode().strip() for p in data if isinstance(p, tuple)))
c.logout()
PY
like($out, qr/^login OK$/m, 'IMAP: the legacy login "alice" with the password only Lua knows');
like($out, qr/^exists 2$/m, 'IMAP: the session sees alice@example.org\'s INBOX');
like($out, qr/for alice 1.*for alice 2/, 'IMAP: her messages');
ok(log_has(qr/imap login: user=<alice\@example\.org>/), 'IMAP: logged in as alice@example.org');
log_like(qr/auth: login=alice protocol=imap ip=127\.0\.0\.1/,
     'lua_auth gets the login and client.protocol "imap", client.ip');

$out = python(<<'PY');
import poplib
p = poplib.POP3('127.0.0.1', %%PORT_2%%, timeout=20)
p.user('alice')
print('pass', p.pass_('legacy pw').decode())
print('stat', p.stat())
p.quit()
PY
like($out, qr/^pass \+OK/m, 'POP3: the legacy login "alice"');
like($out, qr/^stat \(2, \d+\)$/m, 'POP3: STAT counts alice@example.org\'s two messages');
log_like(qr/auth: login=alice protocol=pop3 ip=127\.0\.0\.1/,
     'lua_auth: client.protocol "pop3"');

$out = python(<<'PY');
import smtplib
s = smtplib.SMTP('127.0.0.1', %%PORT_3%%, timeout=20)
s.ehlo('client.test')
s.user, s.password = 'alice', 'legacy pw'
code, resp = s.auth('PLAIN', s.auth_plain)
print('auth', code)
s.sendmail('alice@example.org', ['bob@example.org'],
           'From: alice@example.org\r\nSubject: submitted by the legacy login\r\n\r\nhi\r\n')
s.quit()
print('submitted')
PY
like($out, qr/^auth 235$/m, 'SMTP AUTH PLAIN: the legacy login "alice"');
like($out, qr/^submitted$/m, 'SMTP: and she submits');
ok(log_has(qr/authenticated as alice\@example\.org/), 'SMTP: authenticated as alice@example.org');
my @bob = $m->mailbox('bob@example.org', 'INBOX');
ok((grep { /Subject: submitted by the legacy login/ } @bob), 'the submitted message arrived');
log_like(qr/auth: login=alice protocol=smtp ip=127\.0\.0\.1/,
     'lua_auth: client.protocol "smtp"');
like(smtp_auth('legacy_login'), qr/^235 /, 'SMTP AUTH LOGIN: the same');

# accept() without a user: the login itself
my ($c, $r) = imap_login('carol@example.org', 'lua pw');
like($r, qr/^a\d+ OK/, 'accept() with no user: logged in as the login');
like(join("\n", imap_cmd($c, 'SELECT INBOX')), qr/^a\d+ OK/m, '... and authenticated');
($c, $r) = imap_login('carol@example.org', 'carol secret');
like($r, qr/^a\d+ OK/, 'nil: the directory accepts her own password');

# ---- lua_auth: reject ------------------------------------------------------------------

my $secs;
($c, $r, $secs) = imap_login('reject@example.org', 'x');
like($r, qr/^a\d+ NO \[AUTHENTICATIONFAILED\]/, 'IMAP: reject() is NO [AUTHENTICATIONFAILED]');
cmp_ok($secs, '>=', 0.25, 'IMAP: after auth_failure_delay');
like(join("\n", imap_cmd($c, 'SELECT INBOX')), qr/^a\d+ (BAD|NO)/m, '... not logged in');
# counted: the third refusal ends the session
imap_cmd($c, 'LOGIN alice "wrong"');
my @l = imap_cmd($c, 'LOGIN reject@example.org x');
like(join("\n", @l), qr/^\* BYE Too many authentication failures/m,
     'IMAP: Lua refusals count towards max_auth_failures');
ok($c->wait_eof(5), '... and the session ends');

($c, $r, $secs) = pop3_login('reject@example.org', 'x');
like($r, qr/^-ERR \[AUTH\] Authentication failed/, 'POP3: reject() is -ERR [AUTH]');
cmp_ok($secs, '>=', 0.25, 'POP3: after auth_failure_delay');
$c->cmd('STAT');
like($c->line // '', qr/^-ERR/, 'POP3: not logged in');

like(smtp_auth('reject'), qr/^535 5\.7\.8 /, 'SMTP: reject() is 535 5.7.8');
($c, $r) = imap_login('alice', 'not the legacy pw');
like($r, qr/NO \[AUTHENTICATIONFAILED\]/, 'a legacy login with a wrong password');

# ---- lua_auth: defer and failures ---------------------------------------------------

($c, $r) = imap_login('defer@example.org', 'x');
like($r, qr/^a\d+ NO \[UNAVAILABLE\]/, 'IMAP: defer() is NO [UNAVAILABLE]');
for (1 .. 3) { imap_cmd($c, 'LOGIN defer@example.org x') }
@l = imap_cmd($c, 'NOOP');
like($l[-1] // '', qr/^a\d+ OK/, 'IMAP: temporary failures do not count as auth failures');
($c, $r) = pop3_login('defer@example.org', 'x');
like($r, qr/^-ERR \[SYS\/TEMP\]/, 'POP3: defer() is -ERR [SYS/TEMP]');
like(smtp_auth('defer'), qr/^454 4\.7\.0 /, 'SMTP: defer() is 454 4.7.0');

my $auth_lua = $t->testdir . '/lua/auth.lua';
for my $case (['error@example.org', 'error', qr/deliberate failure/, 'a script error'],
              ['loop@example.org', 'loop', qr/time budget exceeded/, 'the budget exceeded'])
{
    my ($login, $mark, $what, $name) = @$case;
    ($c, $r) = imap_login($login, 'x');
    like($r, qr/^a\d+ NO \[UNAVAILABLE\]/, "IMAP: $name is a temporary failure");
    like(join("\n", imap_cmd($c, 'SELECT INBOX')), qr/^a\d+ (BAD|NO)/m, '... not logged in');
    ($c, $r) = pop3_login($login, 'x');
    like($r, qr/^-ERR \[SYS\/TEMP\]/, "POP3: $name");
    like(smtp_auth($mark), qr/^454 4\.7\.0 /, "SMTP: $name");
    my $line = $line_of{"auth.lua:$mark"};
    log_like(qr/\[error\].*lua hook \Q$auth_lua\E failed: \S*auth\.lua:$line: $what/,
         "$name: logged with the script and line $line");
}
($c, $r) = imap_login('bye@example.org', 'x');
like($r, qr/^a\d+ NO \[AUTHENTICATIONFAILED\]/, 'lua_auth: disconnect() refuses like reject()');
($c, $r) = imap_login('number', 'x');
like($r, qr/^a\d+ NO \[UNAVAILABLE\]/, 'a result that is not a verdict: temporary failure');
log_like(qr/lua hook \Q$auth_lua\E failed: the hook returned a number/, '... logged');

# accept(user) that names no user
for my $case (['notaddr', qr/accepted "notaddr" as "not an address", which is not an address/],
              ['ghost', qr/accepted "ghost" as "ghost\@example\.org", which is not a user/],
              ['toolong', qr/lua_auth \S*auth\.lua: accept\(\) of "toolong" names a user of \d+ bytes/])
{
    my ($login, $why) = @$case;
    ($c, $r) = imap_login($login, 'x');
    like($r, qr/^a\d+ NO \[UNAVAILABLE\]/, "accept() of $login: refused");
    like(join("\n", imap_cmd($c, 'SELECT INBOX')), qr/^a\d+ (BAD|NO)/m, '... not logged in');
    log_like(qr/\[error\].*$why/, "... and logged");
}
like(smtp_auth('ghost'), qr/^454 /, 'SMTP: accept() of an unknown user refused');
log_like(qr/accepted "evil\\x0d\\x0a1999\/01\/01 00:00:00 \[notice\] forged" as "not an address"/,
         'a login with CR LF: logged with them escaped');
unlike($t->read_file('error.log'), qr/^1999\/01\/01 /m, 'so it cannot forge a log line');

# ---- lua_auth: nil, the directory decides -----------------------------------------

($c, $r) = imap_login('bob@example.org', 'bob secret');
like($r, qr/^a\d+ OK/, 'nil: a directory user with the right password');
($c, $r) = imap_login('bob@example.org', 'wrong');
like($r, qr/NO \[AUTHENTICATIONFAILED\]/, 'nil: a wrong password fails');
($c, $r) = pop3_login('bob@example.org', 'bob secret');
like($r, qr/^\+OK/, 'POP3: nil and the right password');
$c->cmd('QUIT');
$c->wait_eof(5);
like(smtp_auth('bob'), qr/^235 /, 'SMTP: nil and the right password');
like(smtp_auth('bob_wrong'), qr/^535 /, 'SMTP: nil and a wrong password');

# ---- lua_auth that sleeps -------------------------------------------------------------

($c, $r) = imap_login('slow', 'x');
like($r, qr/^a\d+ OK/, 'IMAP: a lua_auth that sleeps, then accepts');
($c, $r) = pop3_login('slow', 'x');
like($r, qr/^\+OK/, 'POP3: the same');
$c->cmd('QUIT');
$c->wait_eof(5);
like(smtp_auth('slow'), qr/^235 /, 'SMTP: the same');

# clients that leave while the script sleeps: the session hears of it when
# the login is answered (IMAP and POP3 do not read while a command runs)
my @workers = $t->workers;
{
    my $ci = imap_connect();
    $ci->cmd('a1 LOGIN slower x');
    my $cp = pop3_connect();
    $cp->cmd('USER slower');
    $cp->cmd('PASS x');
    my $cs = $t->connect(port => 3);
    $cs->line;
    $cs->cmd('EHLO client.test');
    $cs->cmd('AUTH PLAIN AHNsb3dlcgB4');                  # \0slower\0x
    ok(log_has(qr/(?s:auth: login=slower protocol=(imap|pop3|smtp).*){3}/, 5),
       'three clients wait in a sleeping lua_auth');
    $_->close for $ci, $cp, $cs;
}
ok(log_has(qr/(?s:auth: slower woke up.*){3}/, 5), 'the scripts ran to their end');
is_deeply([$t->workers], \@workers, 'clients gone while lua_auth slept: the worker lives on');
($c, $r) = imap_login('bob@example.org', 'bob secret');
like($r, qr/^a\d+ OK/, '... and serves the next login');

# ---- login hooks --------------------------------------------------------------------

($c, $r, $secs) = imap_login('dave@example.org', 'dave secret');
like($r, qr/^a\d+ NO \[AUTHENTICATIONFAILED\]/,
     'IMAP login hook: a login the directory accepted, refused outside the allowed hours');
cmp_ok($secs, '>=', 0.25, '... after auth_failure_delay');
log_like(qr/login hook: dave\@example\.org outside the allowed hours/, '... by the hook');
like(join("\n", imap_cmd($c, 'SELECT INBOX')), qr/^a\d+ (BAD|NO)/m,
     '... the session stays unauthenticated');
($c, $r) = pop3_login('dave@example.org', 'dave secret');
like($r, qr/^-ERR \[AUTH\]/, 'POP3 login hook: refused');
$c->cmd('STAT');
like($c->line // '', qr/^-ERR/, '... the session stays unauthenticated');
$c->cmd('QUIT');
$c->wait_eof(5);
like(smtp_auth('dave'), qr/^235 /,
     'the imap and pop3 login hooks do not apply to SMTP AUTH');
log_like(qr/login hook: protocol=imap user=dave\@example\.org ip=127\.0\.0\.1/,
     'a login hook gets client.protocol, client.user, client.ip');
log_unlike(qr/login hook: protocol=smtp/, 'no login hook for smtp');

($c, $r) = imap_login('erin@example.org', 'erin secret');
like($r, qr/^a\d+ NO \[UNAVAILABLE\]/, 'IMAP login hook: defer() is NO [UNAVAILABLE]');
($c, $r) = pop3_login('erin@example.org', 'erin secret');
like($r, qr/^-ERR \[SYS\/TEMP\]/, 'POP3 login hook: defer() is -ERR [SYS/TEMP]');
$c->cmd('QUIT');
$c->wait_eof(5);

($c, $r) = imap_login('ivan@example.org', 'ivan secret');
like($r, qr/^a\d+ NO \[UNAVAILABLE\]/, 'a login hook that fails: temporary failure');
like(join("\n", imap_cmd($c, 'SELECT INBOX')), qr/^a\d+ (BAD|NO)/m, '... not logged in');
my $hook_line = $line_of{'login.lua:hookerror'};
log_like(qr/lua hook \S*login\.lua failed: \S*login\.lua:$hook_line: /,
     "... logged with the script and line $hook_line");

($c, $r) = imap_login('jack@example.org', 'jack secret');
like($r, qr/^a\d+ NO \[AUTHENTICATIONFAILED\]/, 'a login hook\'s disconnect() refuses');
like(join("\n", imap_cmd($c, 'SELECT INBOX')), qr/^a\d+ (BAD|NO)/m, '... not logged in');
($c, $r) = pop3_login('kate@example.org', 'kate secret');
like($r, qr/^-ERR \[SYS\/TEMP\]/, 'a login hook\'s quarantine() means nothing: temporary failure');
log_like(qr/\[error\].*lua hook \S*login\.lua: a login is answered with accept, reject/,
         '... logged');

($c, $r) = imap_login('frank@example.org', 'frank secret');
like($r, qr/^a\d+ OK/, 'a login hook that sleeps, then lets in');
like(join("\n", imap_cmd($c, 'SELECT INBOX')), qr/^a\d+ OK/m, '... authenticated');
imap_cmd($c, 'LOGOUT');
$c->wait_eof(5);

{
    my $ci = imap_connect();
    $ci->cmd('a1 LOGIN henry@example.org "henry secret"');
    my $cp = pop3_connect();
    $cp->cmd('USER henry@example.org');
    $cp->cmd('PASS henry secret');
    ok(log_has(qr/login hook: protocol=pop3 user=henry/, 5), 'henry\'s login hooks wait');
    $_->close for $ci, $cp;
}
ok(log_has(qr/(?s:henry woke up.*){2}/, 5), 'the hooks ran to their end');
is_deeply([$t->workers], \@workers, 'clients gone while a login hook slept: the worker lives on');
ok(log_has(qr/(?s:logout hook: protocol=imap user=henry.*)/, 5)
   && log_has(qr/(?s:logout hook: protocol=pop3 user=henry.*)/, 5),
   '... the sessions logged in, then saw the clients gone: logout hooks');

# ---- logout hooks ----------------------------------------------------------------------

my $before = count_log(qr/logout hook: protocol=imap user=bob\@example\.org/);
($c, $r) = imap_login('bob@example.org', 'bob secret');
imap_cmd($c, 'LOGOUT');
$c->wait_eof(5);
ok(log_has(qr/(?s:logout hook: protocol=imap user=bob\@example\.org.*){@{[$before + 1]}}/),
   'IMAP LOGOUT runs the logout hook');
log_like(qr/logout hook: protocol=imap user=bob\@example\.org ip=127\.0\.0\.1 n=\d+/,
     'the logout hook gets protocol, user, ip (and facteur.kv works there)');

($c, $r) = imap_login('carol@example.org', 'carol secret');
$before = count_log(qr/logout hook: protocol=imap user=carol/);
$c->close;
ok(log_has(qr/(?s:logout hook: protocol=imap user=carol\@example\.org.*){@{[$before + 1]}}/),
   'IMAP: a client that just drops runs the logout hook');

$before = count_log(qr/logout hook: protocol=pop3 user=bob/);
($c, $r) = pop3_login('bob@example.org', 'bob secret');
$c->cmd('QUIT');
$c->wait_eof(5);
ok(log_has(qr/(?s:logout hook: protocol=pop3 user=bob\@example\.org.*){@{[$before + 1]}}/),
   'POP3 QUIT runs the logout hook');
($c, $r) = pop3_login('carol@example.org', 'carol secret');
like($r, qr/^\+OK/, 'POP3 login');
$c->close;
ok(log_has(qr/logout hook: protocol=pop3 user=carol\@example\.org/),
   'POP3: a client that just drops runs the logout hook');
log_like(qr/logout hook: protocol=imap user=frank\@example\.org ip=127\.0\.0\.1 n=1/,
     'a logout hook that sleeps finishes after the session is gone');
log_unlike(qr/logout hook: \S+ user=(dave|erin|ivan|jack|kate)/,
       'no logout hook for a refused login');
log_unlike(qr/logout hook: protocol=smtp/, 'no logout hook for smtp');

# ---- domain hooks ------------------------------------------------------------------

($c, $r) = imap_login('gina@other.test', 'gina secret');
like($r, qr/NO \[AUTHENTICATIONFAILED\]/, 'domain other.test login hook refuses gina (IMAP)');
($c, $r) = pop3_login('gina@other.test', 'gina secret');
like($r, qr/^-ERR \[AUTH\]/, '... and over POP3');
like(smtp_auth('gina'), qr/^235 /, '... not over SMTP');
($c, $r) = imap_login('hank@other.test', 'hank secret');
like($r, qr/^a\d+ OK/, 'domain other.test login hook lets hank in');
imap_cmd($c, 'LOGOUT');
$c->wait_eof(5);
ok(log_has(qr/other\.test logout: protocol=imap user=hank\@other\.test/),
   'the domain\'s logout hook runs for hank');
log_like(qr/other\.test login: protocol=imap user=gina\@other\.test/, 'ran for gina');
log_unlike(qr/other\.test (login|logout): \S+ user=(?!\w+\@other\.test)/,
       'the domain hooks never ran for another domain\'s user');

# ---- a fast stop while scripts wait: the logins are cancelled ----------------------

{
    my $woke = count_log(qr/woke up/);
    my $in_auth = count_log(qr/auth: login=slower protocol=imap/);
    my $in_hook = count_log(qr/login hook: protocol=pop3 user=henry/);
    my $ci = imap_connect();
    $ci->cmd('a1 LOGIN slower x');
    my $cp = pop3_connect();
    $cp->cmd('USER henry@example.org');
    $cp->cmd('PASS henry secret');
    ok($t->wait_for(sub { count_log(qr/auth: login=slower protocol=imap/) > $in_auth
                          && count_log(qr/login hook: protocol=pop3 user=henry/) > $in_hook }, 5),
       'lua_auth and a login hook wait');
    $t->signal('TERM');
    ok($t->wait_exit(10), 'a fast stop while they wait: the server exits');
    is(count_log(qr/woke up/), $woke, 'the waiting scripts were dropped, not resumed');
    $ci->close;
    $cp->close;
}

$t->stop_and_check;
done_testing;

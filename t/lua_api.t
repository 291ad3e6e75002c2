#!/usr/bin/perl

# The facteur.* library a hook calls (docs/lua.md), over real SMTP
# sessions: log at each level with the session id (and no forged lines),
# counter on the metrics endpoint, now, sleep (only the session waits),
# regex (find with captures and init, the flags, the cache, errors, the
# match limit), kv (get/set/del, TTL to the millisecond, values' types,
# incr exact across two workers, kept across a restart), require() from
# lua_package_path and require("facteur").
#
# The hook runs at MAIL: the sender's local part picks what it does, and
# the result comes back as the text of a 550 reply.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp lmdb lua metrics/);

sub conf {
    my ($workers) = @_;
    $t->write_file_expand('facteur.conf', <<"EOF");
pid facteur.pid;
error_log error.log debug;
worker_processes $workers;
auth_directory var/auth;
storage lmdb { path var/mail; }
hostname mx.test;
lua_package_path "lua/lib/?.lua";
lua_io_timeout 3s;
lua_kv_path var/kv;

metrics { listen 127.0.0.1:%%PORT_2%%; }
smtp {
    lua_hook mail lua/api.lua;
    server { listen 127.0.0.1:%%PORT_1%%; }
}
EOF
}
conf(1);

$t->write_file('lua/lib/mylib.lua', <<'EOF');
local M = {}
function M.answer() return 42 end
return M
EOF

$t->write_file('lua/api.lua', <<'EOF');
local mylib = require("mylib")
local same_facteur = require("facteur") == facteur
-- who answers: a worker's own token, made when its state was
local token = string.format("%.6f", facteur.now())

-- more than half the patterns a worker may keep: the master's
-- check of this script must not count against the workers
for i = 1, 600 do facteur.regex("pattern number " .. i) end

local function show(...)
    local out = {}
    for i = 1, select("#", ...) do out[#out + 1] = tostring((select(i, ...))) end
    return table.concat(out, " ")
end

local cases = {}

function cases.log(session)
    for _, level in ipairs({ "debug", "info", "notice", "warn", "err", "warning", "error" }) do
        facteur.log(level, "m-" .. level)
    end
    facteur.log("m-default")
    facteur.log("info", "forged\n2026/01/01 00:00:00 [alert] 1#0: not a real line\r")
    return session.id
end

function cases.counter()
    facteur.counter("api_hits")
    facteur.counter("api_hits", 4)
    return "counted"
end

function cases.now() return string.format("%.3f", facteur.now()) end

function cases.sleep()
    local t0 = facteur.now()
    facteur.sleep(1.5)
    return string.format("slept %.2f", facteur.now() - t0)
end

function cases.who() return token end

function cases.find()
    local re = facteur.regex([[(\w+)@(\w+)]])
    return show(re:find("mail to bob@example now"))
        .. " / " .. show(re:find("a@b c@d", 4))
        .. " / " .. show(re:find("a@b c@d", -3))
        .. " / " .. show(re:find("a@b c@d", 9))
        .. " / " .. show(re:find("nothing here"))
        .. " / " .. show(facteur.regex("(x)?y"):find("y"))
end

function cases.flags()
    return show(facteur.regex("hello", "i"):match("HeLLo"), facteur.regex("hello"):match("HeLLo"),
                facteur.regex("^b$", "m"):match("a\nb\nc"), facteur.regex("^b$"):match("a\nb\nc"),
                facteur.regex("a.b", "s"):match("a\nb"), facteur.regex("a.b"):match("a\nb"),
                facteur.regex("a b c # c", "x"):match("abc"), facteur.regex("a b c"):match("abc"),
                facteur.regex("^.$", "u"):match("\195\169"), facteur.regex("^.$"):match("\195\169"),
                facteur.regex("^A.B$", "imsxu"):match("a\226\130\172b"))
end

function cases.cache()
    local a, b = facteur.regex("x+"), facteur.regex("x+")
    local c = facteur.regex("x+", "i")
    local n1, n2 = facteur.regex("a\0b"), facteur.regex("a\0c")
    return show(a == b, a == c, n1 == n2, n2:match("a\0c"), n2:match("a\0b"))
end

function cases.badpattern()
    local ok, err = pcall(facteur.regex, "ab(c")
    return show(ok, err)
end

function cases.backtrack()
    local re = facteur.regex("^(a+)+$")
    local t0 = facteur.now()
    local ok, err = pcall(re.match, re, string.rep("a", 5000) .. "b")
    return show(ok, err, string.format("%.1f", facteur.now() - t0))
end

function cases.kv()
    local kv = facteur.kv
    kv.set("a", "one")
    local r = { kv.get("a") }
    kv.del("a")
    r[#r + 1] = tostring(kv.get("a"))
    kv.del("never-set")
    kv.set("n", 42)
    r[#r + 1] = type(kv.get("n")) .. ":" .. kv.get("n")
    kv.set("bin", "x\0y")
    r[#r + 1] = #kv.get("bin")
    r[#r + 1] = tostring((pcall(kv.set, "t", {})))
    r[#r + 1] = tostring((pcall(kv.set, "b", true)))
    r[#r + 1] = tostring((pcall(kv.set, "neg", "v", -1)))
    r[#r + 1] = kv.incr("c") .. "," .. kv.incr("c", 5) .. "," .. kv.incr("c", -2)
    kv.set("short", "x", 0.3)
    kv.set("second", "y", 1)
    kv.set("window", "0", 1)
    kv.incr("window", 1, 3600)           -- an existing window keeps its end
    r[#r + 1] = tostring(kv.get("short")) .. tostring(kv.get("second"))
    return table.concat(r, " ")
end

function cases.kvlater()
    return show(facteur.kv.get("short"), facteur.kv.get("second"), facteur.kv.get("window"))
end

function cases.incr()
    local n
    for i = 1, 50 do n = facteur.kv.incr("shared") end
    return token
end

function cases.total() return tostring(facteur.kv.get("shared")) end

function cases.persist() facteur.kv.set("persist", "kept " .. token) return "set" end
function cases.persisted() return tostring(facteur.kv.get("persist")) end

function cases.require() return show(mylib.answer(), same_facteur, package.loaded.mylib == mylib) end

return function(session, txn)
    local name = txn.sender:match("^([^@]+)@")
    local f = cases[name]
    if f then
        return facteur.reject(550, "5.7.1 " .. f(session, txn))
    end
end
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$t->run;

# ask(NAME, ...): one session, MAIL from each name; the texts of the replies
sub ask {
    my @names = @_;
    my $t0 = time;
    my $list = join ', ', map { "'$_'" } @names;
    my ($rc, $out) = $m->python(<<"EOF");
import smtplib
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=20, local_hostname='client.test')
s.ehlo('client.test')
for name in [$list]:
    code, text = s.mail(name + '\@x.test')
    print(code, text.decode('latin-1').replace('\\n', ' '))
    s.rset()
s.quit()
EOF
    my @r = map { /^550 5\.7\.1 (.*)$/ ? $1 : "unexpected: $_" } grep { /^\d{3} / } split /\n/, $out;
    diag($out) if @r != @names;
    diag(sprintf "ask @names: %.1fs", time - $t0) if $ENV{LUA_API_TIMES};
    return wantarray ? @r : $r[0];
}

sub scrape {
    my ($status, $h, $body) = Facteur::Test::parse_http($t->http_get('/metrics', port => 2));
    return $status == 200 ? $body : '';
}

# most answers in one session: a python3 start is slow on a loaded machine
my %a;
my $asked = time;
@a{qw(log now find flags cache badpattern backtrack kv require)}
    = ask(qw(log now find flags cache badpattern backtrack kv require));
my $answered = time;

# ---- log ----
my $id = $a{log};
like($id, qr/^\d+$/, 'session.id is a number');
my $log = $t->read_file('error.log');
for my $level (qw(debug info notice warn err warning error)) {
    my $shown = { err => 'error', warning => 'warn' }->{$level} // $level;
    like($log, qr/^\S+ \S+ \[$shown\] \d+#\d+: \*$id lua: m-$level(?:,|$)/m,
         "facteur.log $level, with the session id");
}
like($log, qr/\[notice\] \d+#\d+: \*$id lua: m-default/, 'facteur.log(msg) is a notice');
like($log, qr/lua: forged\\x0a2026\/01\/01 00:00:00 \[alert\] 1#0: not a real line\\x0d/,
     'a message with CR LF stays one line, escaped');
unlike($log, qr/^2026\/01\/01 00:00:00/m, 'no forged line');
$t->expect_log(qr/lua: forged\\x0a/);        # its "[alert]" is the script's text

# ---- counter ----
my $before = Facteur::Test::metric(scrape(), 'facteur_lua_api_hits_total') // 0;
is(ask('counter'), 'counted', 'facteur.counter');
is(Facteur::Test::metric(scrape(), 'facteur_lua_api_hits_total'), $before + 5,
   'facteur_lua_api_hits_total on the metrics endpoint');
ask('counter');
is(Facteur::Test::metric(scrape(), 'facteur_lua_api_hits_total'), $before + 10, 'and counts on');

# ---- now, sleep ----
my $now = $a{now};
ok($now >= $asked - 1 && $now <= $answered + 1, 'facteur.now() is the epoch, in seconds')
    or diag("$now not in $asked .. $answered");
like($now, qr/^\d+\.\d{3}$/, 'with a fraction');

my ($rc, $out) = $m->python(<<'EOF');
import smtplib, threading, time
res = {}
def session(name, key):
    s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=20, local_hostname='client.test')
    s.ehlo('client.test')
    t0 = time.time()
    code, text = s.mail(name + '@x.test')
    res[key] = (time.time() - t0, time.time(), text.decode())
    s.quit()
a = threading.Thread(target=session, args=('sleep', 'sleeper'))
a.start()
time.sleep(0.3)
for i in range(3):
    session('who', 'other%d' % i)
a.join()
print('sleeper %.2f %f %s' % res['sleeper'])
for i in range(3):
    print('other %.2f %f %s' % res['other%d' % i])
EOF
my ($slept, $slept_end, $slept_text) = $out =~ /^sleeper (\S+) (\S+) 5\.7\.1 (.*)$/m;
my @others = $out =~ /^other \S+ (\S+) 5\.7\.1 \S+$/mg;
ok(defined $slept && $slept >= 1.45, 'the sleeping session waits') or diag($out);
like($slept_text // '', qr/^slept 1\.[45]\d$/, 'facteur.sleep(1.5) resumes the hook');
is(scalar @others, 3, 'other sessions meanwhile') or diag($out);
ok(!grep({ $_ >= ($slept_end // 0) } @others), 'are answered while it sleeps (one worker)')
    or diag($out);

# ---- regex ----
is($a{find}, '9 19 bob example / 5 7 c d / 5 7 c d / nil / nil / 1 1 nil',
   'find: positions and captures, init, negative init, past the end, no match, '
   . 'an unset group');
is($a{flags}, 'true false true false true false true false true false true',
   'flags i m s x u');
is($a{cache}, 'true false false true false',
   'the same pattern and flags give the same object; a NUL in a pattern counts');
like($a{badpattern}, qr/^false .*facteur\.regex: .* at offset 4$/,
     'a bad pattern is an error with the offset');
my ($ok, $err, $took) = $a{backtrack} =~ /^(\S+) (.*) (\S+)$/;
is($ok, 'false', 'catastrophic backtracking is an error');
like($err // '', qr/limit/i, 'the match limit') or diag($err);
ok(defined $took && $took < 5, 'not a stalled worker');

# ---- kv ----
is($a{kv}, 'one nil string:42 3 false false false 1,6,4 xy',
   'set get del, numbers as strings, binary values, tables and booleans refused, '
   . 'a negative ttl refused, incr');
select(undef, undef, undef, 1.3);
is(ask('kvlater'), 'nil nil nil', 'a 0.3 s and a 1 s TTL expired; incr kept a window\'s end');

# ---- require ----
is($a{require}, '42 true true', 'require() from lua_package_path, and require("facteur")');

# ---- incr across two workers ----
conf(2);
my @gen1 = $t->workers;
ok($t->signal('HUP'), 'reload with two workers');
ok($t->wait_for(sub { my @w = $t->workers; @w == 2 && !grep { my $o = $_; grep { $_ == $o } @w } @gen1 },
                15), 'two new workers');

($rc, $out) = $m->python(<<'EOF', timeout => 60);
import smtplib, threading
tokens = []
def session():
    s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=30, local_hostname='client.test')
    s.ehlo('client.test')
    for i in range(2):
        code, text = s.mail('incr@x.test')
        tokens.append(text.decode())
        s.rset()
    s.quit()
ts = [threading.Thread(target=session) for i in range(20)]
for x in ts: x.start()
for x in ts: x.join()
print('calls', len(tokens))
print('workers', len(set(tokens)))
EOF
like($out, qr/^calls 40$/m, '40 calls of 50 increments each') or diag($out);
my ($served) = $out =~ /^workers (\d+)$/m;
cmp_ok($served // 0, '>=', 2, 'served by both workers');
is(ask('total'), 2000, 'the count is exact');

# ---- persistence across a restart ----
is(ask('persist'), 'set', 'a value set');
$t->stop;
$t->run;
like(ask('persisted'), qr/^kept \d+\.\d+$/, 'is there after a restart');
is(ask('total'), 2000, 'and the counter too');

# ---- facteur.log at a script's top level, at the first load (no cycle yet) ----
$t->write_file('lua/toplog.lua', "facteur.log('notice', 'the top level speaks')\n"
               . "return function() end\n");
$t->write_file('toplog.conf', "pid toplog.pid;\nerror_log stderr;\nstorage lmdb { path var/mail; }\n"
               . "smtp { lua_hook rcpt lua/toplog.lua; server { listen 127.0.0.1:1; } }\n");
my ($trc, $tout) = $t->run_config_test('toplog.conf');
is($trc, 0, 'facteur -t: a script that logs at its top level loads') or diag($tout);
like($tout, qr/lua: the top level speaks/, 'its line goes to stderr');

$t->done_testing;

#!/usr/bin/perl

# Hostile and broken Lua hooks (docs/lua.md, "Isolation"): each one, over
# a real SMTP session, is a 451 4.3.0 with an error.log line naming the
# script and a line, never an accept; the worker lives on and its next
# transaction goes through.  Errors of every kind, loops (also in C:
# string.rep), memory bombs, coroutine.yield, API misuse, nonsense
# results, reply injection, the escape hatches (debug.sethook, jit, ffi,
# os.exit); scripts that do not load are configuration errors with both
# file:line; a reload with a broken script keeps the old one serving.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(decode_json);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp lmdb lua/);
$t->expect_log(qr/\[emerg\].*facteur\.conf:\d+: the Lua script does not load/);

# ---- the cases: one function each, chosen by the sender's local part ----
#
# [name, lua body, expectation]: 'fail' = 451 4.3.0 and a log line of the
# case's session naming bad.lua and one of the lines marked "--@"; "--@tail"
# also accepts the hook function's line, all LuaJIT can say when tail calls
# ("return facteur.reject(250)") replaced every frame (Lua 5.4 keeps the
# line); unmarked: the hook function's line (a result that is no verdict).
# Otherwise [code, text regex].

my @CASES = (
    ['runtime', 'local x = nil
     return x.field --@', 'fail'],
    ['errtable', 'error({ code = 1 }) --@', 'fail'],
    ['errnil', 'error(nil) --@', 'fail'],
    ['errlevel', 'error("deep", 2) --@', 'fail'],
    ['loop', 'while true do end --@', 'fail'],
    ['callloop', 'local function f(n) return n + 1 end --@
     local i = 0
     while true do i = f(i) end --@', 'fail'],
    ['reploop', 'while true do local s = string.rep("x", 4000000) end --@', 'fail'],
    ['pcallloop', 'while true do pcall(function() while true do end end) end --@', 'fail'],
    ['tablegrow', 'local t = {}
     for i = 1, 1e9 do t[i] = string.rep("x", 1000) .. i end --@', 'fail'],
    ['giantrep', 'local s = string.rep("x", 2^30) --@
     return facteur.reject(550, "5.7.1 got " .. #s)', 'fail'],
    ['yield', 'coroutine.yield() --@', 'fail'],
    ['owncoro', 'local gen = coroutine.wrap(function()
         for i = 1, 3 do coroutine.yield(i) end
     end)
     local co = coroutine.create(function(a) local b = coroutine.yield(a * 2); return b + 1 end)
     local _, x = coroutine.resume(co, 5)
     local _, y = coroutine.resume(co, 10)
     return facteur.reject(550, "5.7.1 coroutines " .. gen() + gen() + gen() .. " " .. x .. " " .. y)',
     [550, qr/^5\.7\.1 coroutines 6 10 11$/]],
    ['pcallsleep', 'local ok = pcall(facteur.sleep, 0.05)
     return facteur.reject(550, "5.7.1 slept " .. tostring(ok))', [550, qr/^5\.7\.1 slept true$/]],
    ['corosleep', 'local ok, err = coroutine.resume(coroutine.create(function()
         facteur.sleep(0.05) --@
     end))
     error(err, 0)', 'fail'],
    ['wrapsleep', 'coroutine.wrap(function() facteur.sleep(0.05) end)() --@', 'fail'],
    ['rejecttext', 'return facteur.reject("no thanks")', [550, qr/^5\.7\.1 no thanks$/]],
    ['reject250', 'return facteur.reject(250, "ok") --@tail', 'fail'],
    ['reject700', 'return facteur.reject(700) --@tail', 'fail'],
    ['rejecthuge', 'return facteur.reject(1e300) --@tail', 'fail'],
    ['rejectnan', 'return { verdict = "reject", code = 0/0 }', 'fail'],
    ['rejectfrac', 'return facteur.reject(550.5) --@tail', 'fail'],
    ['defer550', 'return facteur.defer(550, "5.7.1 not a deferral") --@tail', 'fail'],
    ['accept550', 'return facteur.accept(550) --@tail', 'fail'],
    ['defertable', 'return facteur.defer({}) --@tail', 'fail'],
    ['quarantinetable', 'return facteur.quarantine({}) --@tail', 'fail'],
    ['lognil', 'facteur.log(nil) --@', 'fail'],
    ['loglevel', 'facteur.log("loud", "x") --@', 'fail'],
    ['counterempty', 'facteur.counter("") --@', 'fail'],
    ['counterbad', 'facteur.counter("bad name!") --@', 'fail'],
    ['counterdown', 'facteur.counter("ok_name", -5) --@', 'fail'],
    ['sleepneg', 'facteur.sleep(-1) --@', 'fail'],
    ['sleepbig', 'facteur.sleep(1e9) --@', 'fail'],
    ['sleepnan', 'facteur.sleep(0/0) --@', 'fail'],
    ['sleephuge', 'facteur.sleep(1e300) --@', 'fail'],
    ['regexnil', 'facteur.regex(nil) --@', 'fail'],
    ['regexflag', 'facteur.regex("a", "q") --@', 'fail'],
    ['kvnil', 'facteur.kv.set(nil, 1) --@', 'fail'],
    ['kvlongkey', 'facteur.kv.set(string.rep("k", 481), "v") --@', 'fail'],
    ['kvlongval', 'facteur.kv.set("k", string.rep("v", 65537)) --@', 'fail'],
    ['kvtable', 'facteur.kv.set("k", {}) --@', 'fail'],
    ['kvincrtext', 'facteur.kv.set("text", "abc")
     facteur.kv.incr("text") --@', 'fail'],
    ['retnumber', 'return 42', 'fail'],
    ['retstring', 'return "accept"', 'fail'],
    ['rettable', 'return {}', 'fail'],
    ['retfunction', 'return function() end', 'fail'],
    ['rettwo', 'return facteur.accept(), facteur.reject()', 'fail'],
    ['rethandmade', 'return { verdict = "reject", code = 250, text = "2.0.0 fine" }', 'fail'],
    ['retmeta', 'return setmetatable({}, { __index = function() error("boom") end })', 'fail'],
    ['retwait', 'return { verdict = "wait" }', 'fail'],
    ['crlf', 'return facteur.reject(550, "5.7.1 bad\r\n250 2.1.0 injected")',
     [550, qr/^5\.7\.1 bad  250 2\.1\.0 injected$/]],
    ['nul', 'return facteur.reject(550, "5.7.1 bad\0\r\n250 2.1.0 injected")',
     [550, qr/^5\.7\.1 bad$/]],
    ['sethook', 'local ok, err = pcall(debug.sethook)
     assert(not ok and err:find("not available"))
     while true do end --@', 'fail'],
    ['jit', 'local ok = pcall(require, "jit")
     local ffi = pcall(require, "ffi")
     return facteur.reject(550, "5.7.1 jit " .. tostring(jit) .. " " .. tostring(ok)
                           .. " ffi " .. tostring(ffi))',
     [550, qr/^5\.7\.1 jit nil false ffi false$/]],
    ['exit', 'os.exit(0) --@', 'fail'],
);

my $lua = "-- generated by t/lua_bad.t\nlocal cases = {}\n";
my (%lines, %tail);
for my $c (@CASES) {
    my ($name, $body) = @$c;
    $lua .= "cases[\"$name\"] = function(session, txn)\n";
    for my $l (split /\n/, $body) {
        $lua .= "$l\n";
        my $n = () = $lua =~ /\n/g;
        push @{$lines{$name}}, $n if $l =~ /--@/;
        $tail{$name} = 1 if $l =~ /--\@tail/;
    }
    $lua .= "end\n";
}
my $hook_line = (() = $lua =~ /\n/g) + 2;
$lua .= <<'EOF';
local calls = 0
return function(session, txn)
    calls = calls + 1
    local name = txn.sender:match("^([^@]+)@")
    if name == "calls" then
        return facteur.reject(550, "5.7.1 call " .. calls)
    end
    local f = cases[name]
    if f then
        facteur.log("info", "case " .. name)
        return f(session, txn)
    end
end
EOF
$t->write_file('lua/bad.lua', $lua);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
hostname mx.test;
lua_hook_timeout 1000000;
lua_memory_limit 32m;
lua_io_timeout 2s;

smtp {
    lua_hook mail lua/bad.lua;
    server { listen 127.0.0.1:%%PORT_1%%; }
}
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$t->run;
$t->wait_for(sub { $t->workers == 1 }, 10);
my ($worker) = $t->workers;

# Each case in its own session: MAIL from the case, then the same session's
# next transaction (RSET, MAIL, RCPT, DATA) must go through.
my $names = join ', ', map { "'$_->[0]'" } @CASES;
my ($rc, $out) = $m->python(<<"EOF", timeout => 120);
import smtplib, json
for name in [$names]:
    r = {'name': name}
    try:
        s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=20)
        s.ehlo('client.test')
        code, text = s.mail(name + '\@x.test')
        r['code'], r['text'] = code, text.decode('latin-1')
        s.rset()
        s.sendmail('after\@x.test', ['alice\@example.org'], 'Subject: after ' + name + '\\r\\n\\r\\nx\\r\\n')
        r['after'] = 'ok'
        r['noop'] = s.noop()[0]
        s.quit()
    except Exception as e:
        r['error'] = repr(e)
    print(json.dumps(r))
EOF
is($rc, 0, 'the sessions ran') or diag($out);

my %res = map { my $r = decode_json($_); ($r->{name} => $r) } grep { /^\{/ } split /\n/, $out;

# each case's session, by the line the dispatcher logs before calling it
my @log = split /\n/, $t->read_file('error.log');
my %session = map { /\*(\d+) lua: case (\w+),/ ? ($2 => $1) : () } @log;
for my $c (@CASES) {
    my ($name, undef, $want) = @$c;
    my $r = $res{$name} // {};
    subtest $name => sub {
        if ($want eq 'fail') {
            is($r->{code}, 451, 'a temporary failure');
            like($r->{text} // '', qr/^4\.3\.0 /, 'with 4.3.0');
            my @l = @{$lines{$name} // []};
            push @l, $hook_line if !@l || $tail{$name};
            my $where = join '|', @l;
            my $id = $session{$name} // 'none';
            ok(scalar(grep { /\*$id lua hook \S*\/bad\.lua failed: .*bad\.lua:(?:$where)\b/ } @log),
               'the log names the script and the line');
        } else {
            is($r->{code}, $want->[0], "code $want->[0]");
            like($r->{text} // '', $want->[1], 'text');
        }
        is($r->{after}, 'ok', 'the next transaction of the session is delivered')
            or diag($r->{error});
        is($r->{noop}, 250, 'and nothing was injected into the replies');
    };
}

is(scalar $t->workers, 1, 'one worker');
is(($t->workers)[0], $worker, 'the same worker served every case');
unlike($t->read_file('error.log'), qr/worker process \d+ exited/, 'no worker ended');
my @delivered = $m->mailbox('alice@example.org', 'INBOX');
is(scalar @delivered, scalar @CASES, 'one message per case, the ones after');

# state kept in the script's upvalues lives as long as the worker's state
($rc, $out) = $m->python(<<'EOF');
import smtplib
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10)
s.ehlo('client.test')
for i in range(2):
    print(s.mail('calls@x.test')[1].decode()); s.rset()
s.quit()
EOF
my @n = $out =~ /call (\d+)/g;
is(scalar @n, 2, 'two calls') or diag($out);
is($n[1], $n[0] + 1, 'an upvalue counts the calls of the worker');
ok($n[0] > scalar @CASES, 'since the worker started') or diag("@n");

# ---- scripts that do not load: facteur -t names both places ----

sub conf_with {
    my ($file) = @_;
    $t->write_file_expand("load.conf", <<"EOF");
pid facteur.pid;
error_log error.log info;
lua_hook_timeout 1000000;
lua_memory_limit 32m;
smtp {
    server { listen 127.0.0.1:%%PORT_1%%; }
    lua_hook rcpt $file;
}
EOF
    return 'load.conf';
}

my @LOAD = (
    ['syntax.lua', "local x = 1\nreturn function( end\n", qr/syntax\.lua:2:/],
    ['toperror.lua', "local x = 1\nerror('at the top')\nreturn function() end\n",
     qr/toperror\.lua:2: at the top/],
    ['toptable.lua', "local x = 1\nerror({})\nreturn function() end\n", qr/toptable\.lua:2\b/],
    ['number.lua', "return 42\n", qr/number\.lua: the script returns a number, not the hook/],
    ['nothing.lua', "local x = 1\n", qr/nothing\.lua: the script returns a nil/],
    ['toploop.lua', "local x = 1\nwhile true do x = x + 1 end\n",
     qr/toploop\.lua:2: time budget exceeded/],
    ['topmem.lua', "local x = 1\nlocal s = string.rep('y', 2^30)\nreturn function() end\n",
     qr/not enough memory.*topmem\.lua:2\b/],
    ['missing.lua', undef, qr/cannot open \S*missing\.lua/],
);
for my $l (@LOAD) {
    my ($file, $text, $re) = @$l;
    $t->write_file("lua/$file", $text) if defined $text;
    my ($lrc, $lout) = $t->run_config_test(conf_with("lua/$file"));
    isnt($lrc, 0, "$file: facteur -t fails");
    like($lout, qr/load\.conf:7\b/, "$file: the directive's file:line") or diag($lout);
    like($lout, $re, "$file: the script's reason and line") or diag($lout);
}

# ---- reload: a broken script keeps the old configuration serving ----

sub mail_reply {
    my ($r, $o) = $m->python(<<'EOF');
import smtplib
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10)
s.ehlo('client.test')
code, text = s.mail('calls@x.test')
print(code, text.decode())
s.quit()
EOF
    chomp $o;
    return $o;
}

my $before = mail_reply();
like($before, qr/^550 5\.7\.1 call \d+$/, 'the first script serves');
my $good = $lua;
my @gen1 = $t->workers;
$t->write_file('lua/bad.lua', "return function( end\n");
ok($t->signal('HUP'), 'HUP with a broken script');
ok($t->wait_for(sub { $t->read_file('error.log') =~ /bad\.lua:1:.*near/ }, 10),
   'the broken script is logged at reload') or diag($t->read_file('error.log'));
like(mail_reply(), qr/^550 5\.7\.1 call \d+$/, 'the old script still serves');
is(join(',', $t->workers), join(',', @gen1), 'in the same worker');

(my $fixed = $good) =~ s/"5\.7\.1 call "/"5.7.1 second call "/;
$t->write_file('lua/bad.lua', $fixed);
($rc, $out) = $t->reload;
is($rc, 0, 'reload with the fixed script') or diag($out);
my $reply = '';
ok($t->wait_for(sub { ($reply = mail_reply()) =~ /second call/ }, 10),
   'the fixed script serves after the reload') or diag($reply);
like($reply, qr/^550 5\.7\.1 second call 1$/, 'its top level ran afresh in the new worker');

$t->done_testing;

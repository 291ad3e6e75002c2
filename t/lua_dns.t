#!/usr/bin/perl

# facteur.dns over real SMTP sessions, against t/lib/dnsd.py (a small
# authoritative server on loopback): every record type, NXDOMAIN, NODATA,
# SERVFAIL, a TXT answer too big for UDP (TCP fallback), reverse lookups
# (IPv4, IPv6, and session.ip at connect), wrong arguments (451 4.3.0 and
# a log line naming the script and line), a name the server never answers
# (a timeout for that session only: the others sharing the worker are
# served meanwhile), a client that leaves while its lookup is in flight,
# 20 lookups at once, lua_dns_server checked at its own config line, and
# a graceful stop while a lookup waits.  Last, a server without
# lua_dns_server uses /etc/resolv.conf and not our server.
#
# The hook probe.lua reads the sender: MAIL FROM:<KIND+NAME@probe.test>
# runs facteur.dns.KIND(NAME) and refuses the mail with what it returned
# ("OK a,b", "EMPTY", "EMPTY not found", "ERR reason"); a plain sender
# goes on and the mail is delivered.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp lmdb lua/);
my $dir = $t->testdir;

# ---- the DNS server ----------------------------------------------------------

# the ip6.arpa name of 2001:db8::1
my $v6ptr = join('.', reverse split //, '20010db8' . '0' x 23 . '1') . '.ip6.arpa';
my $big = join ' ', map { '"' . ($_ x 250) . '"' } qw(a b c);     # 750 bytes: TCP

$t->write_file('zone', <<"EOF");
www.zone.test           A      192.0.2.2
www.zone.test           A      192.0.2.1
v6.zone.test            AAAA   2001:db8::1
v6.zone.test            AAAA   2001:db8:0:0:1:0:0:53
zone.test               MX     20 mx2.zone.test
zone.test               MX     10 mx1.zone.test
mx1.zone.test           A      192.0.2.11
mx2.zone.test           A      192.0.2.12
mx2.zone.test           A      192.0.2.13
zone.test               TXT    "v=spf1 " "-all"
zone.test               TXT    "second record"
big.zone.test           TXT    $big
1.0.0.127.in-addr.arpa  PTR    localhost.test
2.0.0.127.in-addr.arpa  PTR    one.zone.test
2.0.0.127.in-addr.arpa  PTR    two.zone.test
$v6ptr PTR v6host.zone.test
fail.test               SERVFAIL
hang.test               HANG
slow.test               DELAY  1.5
slow.test               A      192.0.2.99
EOF
$t->write_file('zone', $t->read_file('zone')
    . join('', map { "h$_.zone.test A 192.0.2." . (100 + $_) . "\n" } 1 .. 20));

my $dns_pid = start_dnsd($t->port(2), "$dir/zone", "$dir/queries.log");
END { local $?; kill 'TERM', $dns_pid if $dns_pid; waitpid($dns_pid, 0) if $dns_pid; }

sub start_dnsd {
    my ($port, $zone, $log) = @_;
    my $ready = "$dir/dnsd.ready";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/dnsd.out";
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec 'python3', "$FindBin::Bin/lib/dnsd.py", '--port', $port, '--zone', $zone,
            '--log', $log, '--ready', $ready; }
        POSIX::_exit(127);
    }
    $t->wait_for(sub { -s $ready || waitpid($pid, POSIX::WNOHANG()) }, 10)
        && -s $ready or die "dnsd did not start: " . $t->read_file('dnsd.out');
    return $pid;
}

sub queries {
    my ($re) = @_;
    return scalar grep { $_ =~ $re } split /\n/, $t->read_file('queries.log');
}

# ---- the server and its hooks --------------------------------------------------

$t->write_file('probe.lua', <<'EOF');
-- MAIL FROM:<KIND+NAME@probe.test>: facteur.dns.KIND(NAME), reported in a 550
local function show(res, err)
  if res == nil then return "ERR " .. tostring(err) end
  if #res == 0 then return "EMPTY" .. (err and " " .. err or "") end
  local out = {}
  for i, r in ipairs(res) do
    if type(r) == "table" then
      out[i] = r.priority .. ":" .. r.host
    elseif #r > 40 then
      out[i] = #r .. ":" .. r:sub(1, 3) .. ".." .. r:sub(-3)
    else
      out[i] = r
    end
  end
  table.sort(out)
  return "OK " .. table.concat(out, ",") .. (err and " " .. err or "")
end

local bad = {
  ["nil"] = function() return facteur.dns.a(nil) end,
  num = function() return facteur.dns.mx(42) end,
  long = function() return facteur.dns.txt(string.rep("a", 300)) end,
  empty = function() return facteur.dns.a("") end,
  nul = function() return facteur.dns.a("www\0.zone.test") end,
  notip = function() return facteur.dns.ptr("zone.test") end,
  tbl = function() return facteur.dns.aaaa({}) end,
}

return function(session, txn)
  local kind, name = txn.sender:match("^(%w+)%+([^@]*)@")
  if not kind then
    return
  end
  if kind == "conn" then
    return facteur.reject(550, "5.7.1 conn " .. tostring(session.vars.ptr))
  end
  if kind == "mxa" then                      -- one lookup after another in one call
    local mx, err = facteur.dns.mx(name)
    if not mx then
      return facteur.reject(550, "5.7.1 mxa ERR " .. err)
    end
    local out = {}
    for _, m in ipairs(mx) do
      local a = facteur.dns.a(m.host) or { "?" }
      table.sort(a)
      out[#out + 1] = m.host .. "=" .. table.concat(a, "/")
    end
    table.sort(out)
    return facteur.reject(550, "5.7.1 mxa " .. table.concat(out, " "))
  end
  if kind == "bad" then
    return facteur.reject(550, "5.7.1 bad " .. show(bad[name]()))
  end
  if kind == "ptr" then
    name = name:gsub("%-", ":")
  elseif name == "longlabel" then
    name = string.rep("x", 100) .. ".test"        -- too long for the sender's local part
  end
  local res, err = facteur.dns[kind](name)
  local text = show(res, err)
  facteur.log("info", "probe: " .. kind .. " " .. name .. " -> " .. text)
  return facteur.reject(550, "5.7.1 " .. kind .. " " .. text)
end
EOF

$t->write_file('connect.lua', <<'EOF');
-- the usual reverse check of the client's address, kept for later
return function(session)
  local names, err = facteur.dns.ptr(session.ip)
  session.vars.ptr = names and (names[1] or "none") or ("error " .. err)
end
EOF

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
hostname mx.test;
lua_dns_server 127.0.0.1:%%PORT_2%%;
lua_io_timeout 2s;
lua_kv_path var/lua-kv;

smtp {
    lua_hook connect %%TESTDIR%%/connect.lua;
    lua_hook mail %%TESTDIR%%/probe.lua;
    server { listen 127.0.0.1:%%PORT_1%%; }
}
EOF
mkdir "$dir/var";

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$t->run(wait_ports => [1]);

# MAIL FROM:<KIND+NAME@probe.test> for each KIND+NAME, each in its own session;
# KIND+NAME => "code text"
sub probe {
    my (@senders) = @_;
    my $list = join ', ', map { "'$_'" } @senders;
    my ($rc, $out) = $m->python(<<"EOF");
import smtplib
for sender in [$list]:
    s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=15)
    s.ehlo('probe.test')
    code, text = s.mail(sender + '\@probe.test')
    print(sender, '=>', code, text.decode())
    s.quit()
EOF
    is($rc, 0, 'the probe sessions ran') or diag($out);
    return map { /^(\S+) => (.*)$/ ? ($1 => $2) : () } split /\n/, $out;
}

# ---- each record type ------------------------------------------------------------

my %r = probe('a+www.zone.test', 'aaaa+v6.zone.test', 'mx+zone.test', 'txt+zone.test',
    'txt+big.zone.test', 'ptr+127.0.0.1', 'ptr+2001-db8--1', 'ptr+--ffff-127.0.0.1', 'ptr+127.0.0.2',
    'a+nope.test', 'mxa+zone.test',
    'mx+www.zone.test', 'a+fail.test', 'a+longlabel', 'conn+x');

is($r{'a+www.zone.test'}, '550 5.7.1 a OK 192.0.2.1,192.0.2.2', 'a: both addresses');
is($r{'aaaa+v6.zone.test'}, '550 5.7.1 aaaa OK 2001:db8::1,2001:db8::1:0:0:53',
   'aaaa: the addresses in their text form');
is($r{'mx+zone.test'}, '550 5.7.1 mx OK 10:mx1.zone.test,20:mx2.zone.test',
   'mx: preference and host of each');
is($r{'txt+zone.test'}, '550 5.7.1 txt OK second record,v=spf1 -all',
   'txt: one string per record, its character-strings joined');
is($r{'txt+big.zone.test'}, '550 5.7.1 txt OK 750:aaa..ccc',
   'txt: an answer too big for UDP comes whole, over TCP');
ok(queries(qr/^tcp big\.zone\.test TXT$/), 'dnsd saw the TCP retry of the truncated answer');
is($r{'ptr+127.0.0.1'}, '550 5.7.1 ptr OK localhost.test', 'ptr of an IPv4 address');
is($r{'ptr+127.0.0.2'}, '550 5.7.1 ptr OK one.zone.test,two.zone.test',
   'ptr: two names, each once');
is($r{'ptr+2001-db8--1'}, '550 5.7.1 ptr OK v6host.zone.test', 'ptr of an IPv6 address');
ok(queries(qr/^udp \Q$v6ptr\E PTR$/), 'the IPv6 reverse name is asked nibble by nibble');
is($r{'ptr+--ffff-127.0.0.1'}, '550 5.7.1 ptr OK localhost.test',
   'ptr of an IPv4-mapped IPv6 address is the IPv4 one');
is($r{'mxa+zone.test'}, '550 5.7.1 mxa mx1.zone.test=192.0.2.11 '
   . 'mx2.zone.test=192.0.2.12/192.0.2.13', 'lookups one after another in one hook call');
is($r{'a+nope.test'}, '550 5.7.1 a EMPTY not found',
   'NXDOMAIN: an empty list, and "not found" to tell it from no record');
is($r{'mx+www.zone.test'}, '550 5.7.1 mx EMPTY', 'NODATA: an empty list and nothing else');
is($r{'a+fail.test'}, '550 5.7.1 a ERR server failure', 'SERVFAIL: nil and "server failure"');
like($r{'a+longlabel'} // '', qr/^550 5\.7\.1 a ERR \S/,
     'a label longer than 63 bytes: nil and a reason, at once');
is($r{'conn+x'}, '550 5.7.1 conn localhost.test',
   'connect: the PTR of session.ip, kept in session.vars');

# ---- wrong arguments --------------------------------------------------------------

my %bad = probe(map { "bad+$_" } qw(nil num long empty nul notip tbl));
my $log = $t->read_file('error.log');
for my $k (qw(nil num long empty nul notip tbl)) {
    like($bad{"bad+$k"} // '', qr/^451 4\.3\.0 /, "wrong argument ($k): 451 4.3.0");
}
my @errs = $log =~ /lua hook \S*probe\.lua failed: \S*probe\.lua:\d+: (facteur\.dns.*?), client: /g;
is_deeply(\@errs, [
    'facteur.dns.a: the name must be a string, not nil',
    'facteur.dns.mx: the name must be a string, not number',
    'facteur.dns.txt: a name is 1 to 253 bytes, not 300',
    'facteur.dns.a: a name is 1 to 253 bytes, not 0',
    'facteur.dns.a: a NUL byte in the name',
    'facteur.dns.ptr: "zone.test" is not an IP address',
    'facteur.dns.aaaa: the name must be a string, not table',
], 'each wrong argument is logged with the script, its line and what was wrong')
    or diag($log);

# ---- a silent server delays only the session that asked --------------------------

my ($rc, $out) = $m->python(<<'EOF');
import smtplib, threading, time
res = {}
start = time.time()
def session(key, sender, rcpt=None, delay=0):
    time.sleep(delay)
    t0 = time.time()
    s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=15)
    s.ehlo('probe.test')
    if rcpt:
        r = s.sendmail(sender, [rcpt], 'Subject: plain\r\n\r\nplain mail\r\n')
        out = 'sent %r' % (r,)
    else:
        code, text = s.mail(sender)
        out = '%d %s' % (code, text.decode())
    s.quit()
    res[key] = (time.time() - t0, time.time() - start, out)
threads = [threading.Thread(target=session, args=('hang', 'a+hang.test@p.test'))]
for i in range(4):
    threads.append(threading.Thread(target=session,
                   args=('www%d' % i, 'a+www.zone.test@p.test', None, 0.3 + 0.1 * i)))
    threads.append(threading.Thread(target=session,
                   args=('plain%d' % i, 'bob@p.test', 'alice@example.org', 0.3 + 0.1 * i)))
for th in threads: th.start()
for th in threads: th.join()
for k in sorted(res): print(k, '%.2f %.2f' % res[k][:2], res[k][2])
EOF
is($rc, 0, 'the concurrent sessions ran') or diag($out);
# key => [seconds it took, when it ended, what it got]
my %h = map { /^(\S+) (\S+) (\S+) (.*)$/ ? ($1 => [$2, $4, $3]) : () } split /\n/, $out;
like($h{hang}[1] // '', qr/^550 5\.7\.1 a ERR timeout$/, 'the unanswered lookup ends in "timeout"')
    or diag($out);
cmp_ok($h{hang}[0] // 0, '>=', 1.8, 'after lua_io_timeout (2s)');
cmp_ok($h{hang}[0] // 99, '<', 4, 'and not much later');
for my $i (0 .. 3) {
    is($h{"www$i"}[1], '550 5.7.1 a OK 192.0.2.1,192.0.2.2', "lookup $i answered meanwhile");
    cmp_ok($h{"www$i"}[0], '<', 1.2, "lookup $i not held up by the silent one");
    is($h{"plain$i"}[1], 'sent {}', "mail $i delivered meanwhile");
    cmp_ok($h{"plain$i"}[0], '<', 1.2, "mail $i not held up by the silent one");
    ok($h{"www$i"}[2] < $h{hang}[2] && $h{"plain$i"}[2] < $h{hang}[2],
       "session pair $i ended while the silent lookup still waited");
}
ok(queries(qr/^udp hang\.test A$/) >= 1, 'dnsd was asked for hang.test');
is(scalar($m->mailbox('alice@example.org')), 4, 'the four plain mails are in the mailbox');

# ---- 20 lookups at once -------------------------------------------------------------

($rc, $out) = $m->python(<<'EOF');
import smtplib, threading
res = {}
start = threading.Barrier(20)
def session(i):
    s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=15)
    s.ehlo('probe.test')
    start.wait()
    code, text = s.mail('a+h%d.zone.test@p.test' % i)
    res[i] = '%d %s' % (code, text.decode())
    s.quit()
threads = [threading.Thread(target=session, args=(i,)) for i in range(1, 21)]
for th in threads: th.start()
for th in threads: th.join()
for i in sorted(res): print(i, res[i])
EOF
my @wrong = grep { !/^(\d+) 550 5\.7\.1 a OK 192\.0\.2\.(\d+)$/ || $2 != 100 + $1 }
    split /\n/, $out;
ok($rc == 0 && !@wrong && ($out =~ tr/\n//) == 20, '20 parallel lookups, each its own answer')
    or diag($out);

# ---- a client that leaves while its lookup is in flight -------------------------------

my $c = $t->connect(port => 1);
$c->check(qr/^220 /, 'greeting');
$c->cmd('HELO probe.test');
$c->check(qr/^250 /, 'HELO');
$c->cmd('MAIL FROM:<a+slow.test@p.test>');
$t->wait_for(sub { queries(qr/^udp slow\.test A$/) }, 5);
$c->close;
ok($t->wait_for(sub { queries(qr/^answered-late slow\.test A$/) }, 5),
   'dnsd answered the abandoned lookup later');
sleep 0.3;
unlike($t->read_file('error.log'), qr/probe: a slow\.test/,
       'the session left: its lookup was cancelled, the script never went on');
like($t->read_file('error.log'), qr/client closed the connection while a mail hook waited/,
     'the session saw its client go while the hook waited');
%r = probe('a+www.zone.test');
is($r{'a+www.zone.test'}, '550 5.7.1 a OK 192.0.2.1,192.0.2.2', 'the worker still serves lookups');

# lua_dns_server is checked with the configuration
for my $bad ('127.0.0.1:53x', '127.0.0.1:', 'dns.example:53', '[::1]:70000') {
    $t->write_file('bad.conf', $t->read_file('facteur.conf')
        =~ s/lua_dns_server [^;]*;/lua_dns_server $bad;/r);
    my ($crc, $cout) = $t->run_config_test('bad.conf');
    ok($crc && $cout =~ /lua_dns_server "\Q$bad\E": an address and an optional port/
       && $cout =~ /bad\.conf:7: lua_dns_server/,
       "lua_dns_server $bad is refused by facteur -t") or diag($cout);
}

# a graceful stop while a lookup waits: the lookup ends (timeout), the
# session goes on to its end, then the worker exits
my $hangs = queries(qr/^udp hang\.test A$/);
my $q = $t->connect(port => 1);
$q->check(qr/^220 /, 'greeting');
$q->cmd('HELO probe.test');
$q->check(qr/^250 /, 'HELO');
$q->cmd('MAIL FROM:<a+hang.test@p.test>');
$t->wait_for(sub { queries(qr/^udp hang\.test A$/) > $hangs }, 5);
$t->signal('QUIT');
$q->check(qr/^550 5\.7\.1 a ERR timeout$/, 'a graceful stop lets the waiting lookup end');
$q->cmd('QUIT');
$q->check(qr/^221 /, 'and the session goes on to its end');
ok($t->wait_exit(10), 'then the server stops');

$t->stop_and_check;

# ---- no lua_dns_server: /etc/resolv.conf, not our server --------------------------------

my $t2 = Facteur::Test->new;
$t2->write_file('probe.lua', $t->read_file('probe.lua'));
$t2->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
hostname mx.test;
lua_io_timeout 1s;
lua_kv_path lua-kv;
smtp {
    lua_hook mail %%TESTDIR%%/probe.lua;
    server { listen 127.0.0.1:%%PORT_1%%; }
}
EOF
$t2->run;
my $before = queries(qr/^(udp|tcp) /);
my $m2 = Facteur::Mail->new($t2);
($rc, $out) = $m2->python(<<'EOF');
import smtplib
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=15)
s.ehlo('probe.test')
code, text = s.mail('a+www.zone.test@p.test')
print(code, text.decode())
s.quit()
EOF
like($out, qr/^550 5\.7\.1 a (ERR|EMPTY)/m,
     'without lua_dns_server a lookup runs, with the system resolver') or diag($out);
is(queries(qr/^(udp|tcp) /), $before, 'and our DNS server was not asked')
    or diag($t->read_file('queries.log'));
$t2->stop_and_check;

done_testing;

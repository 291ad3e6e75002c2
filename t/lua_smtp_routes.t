#!/usr/bin/perl

# What an SMTP hook sees and changes: the session's fields (ip, ports, id,
# helo, user, role, tls with SNI, esmtp, relay_client, vars) and the
# transaction's (id, sender, size, recipient, recipients()), recipients
# added, removed, rewritten, redirected, filed (deliver) and relayed
# through a smarthost, headers read and edited, the body read whole,
# capped and in chunks -- each checked on the stored message or the
# queue.  And LMTP, where a hook that adds or removes recipients must not
# change the number of replies the client waits for.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp lmdb lua ssl/);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
hostname mx.test;
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;

smtp {
    auth_plaintext on;
    smarthost upstream 127.0.0.1:2525;
    lua_hook connect lua/connect.lua;
    lua_hook helo lua/helo.lua;
    lua_hook auth lua/auth.lua;
    lua_hook mail lua/mail.lua;
    lua_hook rcpt lua/rcpt.lua;
    lua_hook data_headers lua/data_headers.lua;
    lua_hook data_end lua/data_end.lua;
    lua_hook route lua/route.lua;
    server { listen 127.0.0.1:%%PORT_1%%; }
    server { listen 127.0.0.1:%%PORT_2%%; submission on; }
    server { listen 127.0.0.1:%%PORT_4%%; relay_from 127.0.0.0/8; }
}
lmtp {
    lua_hook data_end lua/data_end.lua;
    listen 127.0.0.1:%%PORT_3%%;
}
EOF
mkdir $t->testdir . '/var';

$t->write_file('lua/hooks.lua', <<'EOF');
local M = {}

local function subject(txn) return txn:header("Subject") or "" end

function M.connect(session, txn)
    assert(txn == nil, "a transaction at connect")
    local v = session.vars
    v.fresh = v.marker == nil and "yes" or "no"
    v.marker = session.id
    v.phases = "connect"
end

function M.helo(session, txn)
    assert(txn == nil, "a transaction at helo")
    session.vars.phases = session.vars.phases .. ",helo"
end
function M.auth(session, txn)
    assert(txn == nil, "a transaction at auth")
    session.vars.phases = session.vars.phases .. ",auth"
    session.vars.auth_user = session.user
end

function M.mail(session, txn)
    session.vars.phases = session.vars.phases .. ",mail"
    if txn.recipient ~= nil then error("a recipient at mail") end
    if txn.sender:match("^q1@") then return facteur.quarantine("Held") end
end

function M.rcpt(session, txn)
    local v = session.vars
    local r = txn.recipient
    v.phases = v.phases .. ",rcpt"
    v.rcpt = string.format("%s/%s/%s/%s/%s", r.address, r.domain, r.route, r.user or "-",
                           r.mailbox or "-")
    v.rcpt_count = #txn:recipients()          -- those accepted before this one
    -- too early for headers and body; session fields are read-only
    v.early = table.concat({
        select(2, pcall(function() return txn:header("Subject") end)),
        select(2, pcall(function() return txn:body() end)),
        select(2, pcall(function() session.ip = "192.0.2.1" end)) }, "|"):gsub("[^|]*: ", "")
    if r.address == "dave@example.org" then
        assert(txn:redirect("carol@example.org") == 1)
    elseif r.address == "erin@example.org" then
        assert(txn:add_recipient("frank@example.org") == true)
        local ok, err = txn:add_recipient("nobody@example.org")
        v.add_err = tostring(ok) .. " " .. tostring(err)
    end
end

local function tls_text(session)
    local t = session.tls
    if not t then return "none" end
    return string.format("%s/%s/%s", t.version, t.cipher ~= "" and "cipher" or "",
                         t.servername or "-")
end

function M.data_headers(session, txn)
    local v = session.vars
    v.phases = v.phases .. ",data_headers"
    local s = subject(txn)
    if s == "fields" then
        txn:add_header("X-Fields", string.format(
            "ip=%s port=%d local_port=%d helo=%s user=%s role=%s tls=%s esmtp=%s relay=%s "
            .. "fresh=%s same_id=%s phases=%s rcpt=%s before=%d auth_user=%s",
            session.ip, session.port, session.local_port, session.helo,
            tostring(session.user), session.role, tls_text(session), tostring(session.esmtp),
            tostring(session.relay_client), v.fresh, tostring(v.marker == session.id),
            v.phases, v.rcpt, v.rcpt_count, tostring(v.auth_user)))
        txn:add_header("X-Session-Id", tostring(session.id))   -- an integer, also in Lua 5.4
        txn:add_header("X-Early", v.early)
    elseif s == "edit" then
        local multi2, multi1 = txn:header("X-Multi", 2), txn:header("x-multi")
        local missing, third = txn:header("X-Nope"), txn:header("X-Multi", 3)
        local fold = txn:header("X-Fold")
        local removed = txn:remove_header("X-Remove-Me")
        txn:replace_header("X-Replace", "new value")
        txn:add_header("X-Added", "first")
        txn:add_header("X-Added", "second")
        local names = {}
        for _, h in ipairs(txn:headers()) do names[#names + 1] = h.name end
        txn:add_header("X-Results", string.format("multi2=%s multi1=%s missing=%s third=%s "
            .. "removed=%d names=%s fold=%q", multi2, multi1, tostring(missing), tostring(third),
            removed, table.concat(names, ","), fold:gsub("\r", "CR"):gsub("\n", "LF")))
    elseif s == "added" then
        txn:add_header("X-Add-Err", v.add_err)
    elseif s == "reject-me" then
        return facteur.reject(550, "5.7.1 rejected by subject")
    end
end

function M.data_end(session, txn)
    local s = subject(txn)
    if s == "body" then
        local whole = txn:body()
        local parts, n = {}, 0
        for chunk in txn:body_chunks(65536) do
            n = n + 1
            parts[n] = chunk
        end
        local small = {}
        for chunk in txn:body_chunks(7) do small[#small + 1] = #chunk if #small > 3 then break end end
        txn:add_header("X-Body", string.format("size=%s len=%d cap=%d zero=%d chunks=%d same=%s "
            .. "first=%s small=%s sender=%s id=%s", tostring(txn.size), #whole, #txn:body(100),
            #txn:body(0), n, tostring(table.concat(parts) == whole), (whole:sub(1, 10):gsub("%c", "")),
            table.concat(small, ","), txn.sender, txn.id))
    elseif s == "empty body" then
        txn:add_header("X-Body", string.format("len=%d chunks=%d", #txn:body(),
            (function() local n = 0 for _ in txn:body_chunks() do n = n + 1 end return n end)()))
    elseif s == "lmtp-add" then
        txn:add_recipient("frank@example.org")
    elseif s == "lmtp-remove" then
        txn:remove_recipient("carol@example.org")
    elseif s == "lmtp-add-reject" then
        txn:add_recipient("frank@example.org")
        return facteur.reject(550, "5.7.1 not after all")
    end
end

local function list(txn)
    local out = {}
    for _, r in ipairs(txn:recipients()) do
        out[#out + 1] = r.address .. ":" .. r.route .. (r.mailbox and (":" .. r.mailbox) or "")
    end
    return table.concat(out, ",")
end

function M.route(session, txn)
    local s = subject(txn)
    if s == "route-ops" then
        local before = list(txn)
        local rw = txn:rewrite_recipient("bob@example.org", "carol@example.org")
        local rm = txn:remove_recipient("erin@example.org")
        local rm0 = txn:remove_recipient("nobody@example.org")
        local add = txn:add_recipient("dave@example.org")
        local filed = txn:deliver("Filed")
        local g, gerr = txn:redirect("ghost@example.org", "frank@example.org")
        local badfolder = select(2, pcall(function() txn:deliver("../x") end))
        txn:add_header("X-Route2", tostring(g) .. " " .. tostring(gerr) .. " | "
                       .. badfolder:gsub("^.*: txn", "txn"))
        txn:add_header("X-Route", string.format("before=%s rw=%d rm=%d rm0=%d add=%s filed=%d "
            .. "after=%s", before, rw, rm, rm0, tostring(add), filed, list(txn)))
    elseif s == "alias-filed" then
        txn:deliver("Filed")
    elseif s == "remove-all" then
        for _, r in ipairs(txn:recipients()) do txn:remove_recipient(r.address) end
    elseif s == "relay-me" then
        facteur.log("info", "relayed " .. tostring(txn:relay("upstream")) .. " recipient(s)")
    elseif s == "relay-unknown" then
        txn:relay("nowhere")
    elseif s == "deliver-one" then
        txn:deliver("Filed", "carol@example.org")
    end
end

return M
EOF
for my $phase (qw(connect helo auth mail rcpt data_headers data_end route)) {
    $t->write_file("lua/$phase.lua", <<"EOF");
local hooks = require("hooks")
return function(session, txn) return hooks.$phase(session, txn) end
EOF
}

my $m = Facteur::Mail->new($t);
$m->add_user($_, 'secret') for map { "$_\@example.org" } qw(alice bob carol dave erin frank);
$m->ctl(qw(mailbox create carol@example.org Filed));
$m->ctl(qw(mailbox create frank@example.org Filed));
$m->ctl(qw(mailbox create dave@example.org Filed));
$m->ctl(qw(mailbox create bob@example.org Held));
$m->ctl(qw(alias add team@example.org carol@example.org frank@example.org));
$t->run;

my $lib = <<'EOF';
import smtplib, ssl, base64
def send(s, sender, rcpts, subject, body='body\r\n', extra=''):
    msg = 'From: <%s>\r\nSubject: %s\r\n%s\r\n%s' % (sender, subject, extra, body)
    try:
        r = s.sendmail(sender, rcpts, msg)
        return 'OK %s' % sorted(r.items())
    except smtplib.SMTPRecipientsRefused as e: return 'RCPT %s' % sorted(e.recipients.items())
    except smtplib.SMTPSenderRefused as e: return 'MAIL %d %s' % (e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPDataError as e: return 'DATA %d %s' % (e.smtp_code, e.smtp_error.decode())
EOF

# ---- session fields ------------------------------------------------------------

my ($rc, $out) = $m->python($lib . <<'EOF');
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP('127.0.0.1', %%PORT_2%%, timeout=10)
s.ehlo('client.example')
s._host = 'mail.sni.test'                 # the name starttls sends (SNI)
s.starttls(context=ctx)
s.ehlo('client.example')
s.login('alice@example.org', 'secret')
print('port', s.sock.getsockname()[1])
print('tls', s.sock.version())
print(send(s, 'alice@example.org', ['bob@example.org'], 'fields'))
s.quit()
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10)
s.helo('plain.example')
print('port', s.sock.getsockname()[1])
print(send(s, 'x@remote.test', ['bob@example.org'], 'fields'))
s.quit()
s = smtplib.SMTP('127.0.0.1', %%PORT_4%%, timeout=10)
s.ehlo('relay.example')
print(send(s, 'x@remote.test', ['bob@example.org'], 'fields'))
s.quit()
EOF
is($rc, 0, 'the field sessions ran') or diag($out);
my @ports = $out =~ /^port (\d+)$/mg;
my ($tlsv) = $out =~ /^tls (\S+)$/m;
is(scalar(() = $out =~ /^OK \[\]$/mg), 3, 'three messages accepted') or diag($out);
my @fields = map { /^X-Fields: (.*)$/m ? $1 : () } $m->mailbox('bob@example.org');
my @ids = map { /^X-Session-Id: (\d+)$/m ? $1 : () } $m->mailbox('bob@example.org');
is(scalar @fields, 3, 'the hook saw the three sessions') or diag($out);
my $p2 = $t->port(2);
is($fields[0] // '',
   "ip=127.0.0.1 port=$ports[0] local_port=$p2 helo=client.example user=alice\@example.org "
   . "role=submission tls=$tlsv/cipher/mail.sni.test esmtp=true relay=false fresh=yes "
   . "same_id=true phases=connect,helo,helo,auth,mail,rcpt,data_headers "
   . "rcpt=bob\@example.org/example.org/local/bob\@example.org/INBOX before=0 "
   . "auth_user=alice\@example.org",
   'submission over STARTTLS with SNI: every field, vars kept across the phases');
my $p1 = $t->port(1);
is($fields[1] // '',
   "ip=127.0.0.1 port=$ports[1] local_port=$p1 helo=plain.example user=nil role=mx tls=none "
   . "esmtp=false relay=false fresh=yes same_id=true phases=connect,helo,mail,rcpt,data_headers "
   . "rcpt=bob\@example.org/example.org/local/bob\@example.org/INBOX before=0 auth_user=nil",
   'MX with HELO: no user, no TLS, not ESMTP; vars fresh for a new session');
like($fields[2] // '', qr/ role=mx tls=none esmtp=true relay=true fresh=yes /,
     'a relay_from client: relay_client is true');
is(scalar(@ids), 3, 'session.id is an integer (not 7.0 in Lua 5.4)') or diag(explain(\@ids));
is(scalar(keys %{{ map { $_ => 1 } @ids }}), 3, 'session.id differs between sessions');
my @early = map { /^X-Early: (.*)$/m ? $1 : () } $m->mailbox('bob@example.org');
is($early[0] // '', 'the headers are there from the data_headers phase on|the body is there '
   . 'from the data_end phase on|session fields are read-only (keep your own values in '
   . 'session.vars)', 'at rcpt: no headers, no body yet; the session cannot be written');
unlike($t->read_file('error.log'), qr/lua hook .* failed/, 'no hook failed (txn is nil at '
       . 'connect, helo and auth)');

# ---- recipients ------------------------------------------------------------------

($rc, $out) = $m->python($lib . <<'EOF');
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10); s.ehlo('c.test')
print(send(s, 'x@remote.test', ['dave@example.org'], 'redirected'))
print(send(s, 'x@remote.test', ['erin@example.org'], 'added'))
print(send(s, 'x@remote.test', ['bob@example.org', 'erin@example.org'], 'route-ops'))
print(send(s, 'x@remote.test', ['bob@example.org', 'carol@example.org'], 'deliver-one'))
print(send(s, 'gone@remote.test', ['bob@example.org', 'carol@example.org'], 'remove-all'))
print(send(s, 'x@remote.test', ['team@example.org'], 'alias-filed'))
s.quit()
EOF
like($out, qr/\AOK \[\]\nOK \[\]\nOK \[\]\nOK \[\]\nOK \[\]\nOK \[\]\n\z/, 'the recipient edits were accepted')
    or diag($out);
like($t->read_file('error.log'), qr/from=<gone\@remote\.test>, to=\(none\), size=\d+, tls=none, delay=[\d.]+, status=discarded, client: /m,
     'a route hook that removed every recipient: logged as discarded, to nobody');
my %box;
for my $u (qw(bob carol dave erin frank)) {
    for my $f (qw(INBOX Filed)) {
        $box{"$u/$f"} = [map { /^Subject: (.*)$/m ? $1 : '?' } $m->mailbox("$u\@example.org", $f)];
    }
}
ok((grep { $_ eq 'redirected' } @{$box{'carol/INBOX'}}), 'redirect at rcpt: the new address has it');
ok(!(grep { $_ eq 'redirected' } @{$box{'dave/INBOX'}}), 'and the old one not');
ok((grep { $_ eq 'added' } @{$box{'erin/INBOX'}}), 'add_recipient at rcpt: the client\'s recipient has it');
ok((grep { $_ eq 'added' } @{$box{'frank/INBOX'}}), 'and the added one');
my ($ops) = grep { /Subject: route-ops/ } $m->mailbox('carol@example.org', 'Filed');
like($ops // '', qr/^X-Route: before=bob\@example\.org:local:INBOX,frank\@example\.org:local:INBOX,erin\@example\.org:local:INBOX rw=1 rm=1 rm0=0 add=true filed=3 after=carol\@example\.org:local:Filed,frank\@example\.org:local:Filed,dave\@example\.org:local:Filed$/m,
     'route: recipients(), rewrite_recipient, remove_recipient (gone from recipients()), '
     . 'add_recipient, deliver') or diag($ops);
like($ops // '', qr/^X-Route2: nil 5\.1\.1 <ghost\@example\.org>: Recipient address rejected: User unknown \| txn:deliver: "\.\.\/x" is not a valid folder name$/m,
     'redirect to an unknown user: nil and the reason; deliver to a bad folder name: an error');
ok((grep { $_ eq 'route-ops' } @{$box{'dave/Filed'}}), 'the recipient added at route: filed in Filed too');
my ($added) = grep { /Subject: added/ } $m->mailbox('erin@example.org');
like($added // '', qr/^X-Add-Err: nil 5\.1\.1 <nobody\@example\.org>: Recipient address rejected: User unknown$/m,
     'add_recipient of an unknown user: nil and the reason');
ok((grep { $_ eq 'route-ops' } @{$box{'frank/Filed'}}), 'the one added at rcpt as well');
ok(!(grep { $_ eq 'route-ops' } @{$box{'bob/INBOX'}}, @{$box{'erin/INBOX'}}),
   'the rewritten and the removed recipients got nothing');
ok((grep { $_ eq 'deliver-one' } @{$box{'carol/Filed'}}), 'deliver(folder, rcpt): that one filed');
ok((grep { $_ eq 'deliver-one' } @{$box{'bob/INBOX'}}), 'the other one in INBOX');
ok((grep { $_ eq 'alias-filed' } @{$box{'carol/Filed'}}) && (grep { $_ eq 'alias-filed' } @{$box{'frank/Filed'}}),
   'deliver(folder) for an alias: each of its users gets it in that folder');
ok(!(grep { $_ eq 'alias-filed' } @{$box{'carol/INBOX'}}, @{$box{'frank/INBOX'}}),
   'and not in INBOX');
my $log = $t->read_file('error.log');

# ---- relay through a smarthost ------------------------------------------------------

($rc, $out) = $m->python($lib . <<'EOF');
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10); s.ehlo('c.test')
print(send(s, 'x@remote.test', ['bob@example.org'], 'relay-me'))
print(send(s, 'x@remote.test', ['bob@example.org'], 'relay-unknown'))
s.quit()
EOF
my @r = split /\n/, $out;
is($r[0], 'OK []', 'relay(smarthost): accepted');
is($r[1], 'DATA 451 4.3.0 Temporary policy failure, try again later',
   'relay to a smarthost nobody declared: the hook fails, 451');
like($t->read_file('error.log'), qr/route\.lua failed: .*hooks\.lua:\d+: txn:relay: no "smarthost nowhere \.\.\.;"/,
     'logged with the script and line');
($rc, $out) = $m->ctl(qw(queue list));
like($out, qr/<x\@remote\.test> -> <bob\@example\.org> \(relay via upstream \(127\.0\.0\.1:2525\)\)$/m,
     'the relayed message is in the queue, for the smarthost') or diag($out);
like($t->read_file('error.log'), qr/lua: relayed 1 recipient\(s\)/,
     'relay() returns how many recipients it routed');
ok(!(grep { /Subject: relay-me/ } $m->mailbox('bob@example.org')), 'not delivered locally');

# ---- headers and body ------------------------------------------------------------------

my $body = join '', map { sprintf "line %05d %s\r\n", $_, 'x' x 60 } 1 .. 2000;   # 146 KB
$t->write_file('big.txt', $body);
($rc, $out) = $m->python($lib . <<'EOF');
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10); s.ehlo('c.test')
print(send(s, 'x@remote.test', ['carol@example.org'], 'edit', extra=
    'X-Remove-Me: a\r\nX-Multi: one\r\nX-Replace: old value\r\nX-Fold: a\r\n  b\r\nX-Multi: two\r\nX-Remove-Me: b\r\nX-Replace: older\r\n'))
body = open('%%TESTDIR%%/big.txt').read().replace('\n', '\r\n').replace('\r\r\n', '\r\n')
msg = 'From: <x@remote.test>\r\nSubject: body\r\n\r\n' + body
print('msglen', len(msg.encode()), 'bodylen', len(body.encode()))
print(send(s, 'x@remote.test', ['carol@example.org'], 'body', body=body))
print(send(s, 'x@remote.test', ['carol@example.org'], 'empty body', body=''))
s.quit()
EOF
like($out, qr/\AOK \[\]\nmsglen \d+ bodylen \d+\nOK \[\]\nOK \[\]\n\z/, 'the header and body messages')
    or diag($out);
my ($msglen, $bodylen) = $out =~ /msglen (\d+) bodylen (\d+)/;
my @carol = $m->mailbox('carol@example.org');
my ($edit) = grep { /Subject: edit/ } @carol;
unlike($edit // '', qr/X-Remove-Me/, 'remove_header: every one of them is gone');
like($edit // '', qr/^X-Replace: new value$/m, 'replace_header: the new value');
unlike($edit // '', qr/old value|older/, 'and not the old ones (two of that name: one left)');
like($edit // '', qr/^X-Replace: new value\nX-Fold: a\n  b\nX-Multi: two\n/m, 'in the first one\'s place');
like($edit // '', qr/^X-Added: first\nX-Added: second\n/m, 'add_header: in order');
like($edit // '', qr/^X-Results: multi2=two multi1=one missing=nil third=nil removed=2 names=X-Added,X-Added,From,Subject,X-Multi,X-Replace,X-Fold,X-Multi fold="aCRLF  b"$/m,
     'header(name, n), header(name) without regard to case, headers() as they will be written')
    or diag($edit);
my ($big) = grep { /Subject: body/ } @carol;
my ($xb) = ($big // '') =~ /^X-Body: (.*)$/m;
like($xb // '', qr/^size=$msglen len=$bodylen cap=100 zero=0 chunks=3 same=true first=line 00001 small=7,7,7,7 sender=x\@remote\.test id=[0-9A-F]+$/,
     'data_end: txn.size, body(), body(max), body_chunks(size) over a 146 KB body, sender, id')
    or diag($xb);
my ($id) = ($xb // '') =~ /id=(\S+)$/;
like($t->read_file('error.log'), qr/\Q$id\E: from=<x\@remote\.test>/, 'txn.id is the queue id in the log')
    if $id;
(my $stored_body = $big // '') =~ s/^.*?\n\n//s;
(my $lf_body = $body) =~ s/\r\n/\n/g;
ok($stored_body eq $lf_body, 'the body is stored whole after reading it');
my ($empty) = grep { /Subject: empty body/ } @carol;
like($empty // '', qr/^X-Body: len=0 chunks=0$/m, 'an empty body: "" and no chunks');

# ---- quarantine of one transaction does not stay for the next ----------------

($rc, $out) = $m->python($lib . <<'EOF');
s = smtplib.SMTP('127.0.0.1', %%PORT_1%%, timeout=10); s.ehlo('c.test')
print(send(s, 'q1@remote.test', ['bob@example.org'], 'reject-me'))
print(send(s, 'plain@remote.test', ['bob@example.org'], 'after-quarantine'))
print(send(s, 'q1@remote.test', ['bob@example.org'], 'quarantined'))
print(send(s, 'plain@remote.test', ['bob@example.org'], 'after-quarantine 2'))
s.quit()
EOF
is($out, "DATA 550 5.7.1 rejected by subject\nOK []\nOK []\nOK []\n", 'quarantine sessions')
    or diag($out);
my @held = map { /^Subject: (.*)$/m ? $1 : '?' } $m->mailbox('bob@example.org', 'Held');
is_deeply(\@held, ['quarantined'],
          'only the quarantined transaction is in Held, not the ones after it');

# ---- LMTP: a hook that adds or removes recipients ------------------------------------

for my $case (['lmtp-add', 'frank'], ['lmtp-remove', 'carol']) {
    my ($subject, $who) = @$case;
    my $c = $t->connect(port => 3);
    $c->check(qr/^220 /, "$subject: greeting");
    $c->cmd('LHLO c.test');
    1 while ($c->line // '250 ') =~ /^250-/;
    $c->cmd('MAIL FROM:<x@remote.test>');
    $c->check(qr/^250 /, "$subject: MAIL");
    $c->cmd('RCPT TO:<bob@example.org>');
    $c->check(qr/^250 /, "$subject: RCPT bob");
    $c->cmd('RCPT TO:<carol@example.org>');
    $c->check(qr/^250 /, "$subject: RCPT carol");
    $c->cmd('DATA');
    $c->check(qr/^354 /, "$subject: DATA");
    $c->send("Subject: $subject\r\n\r\nx\r\n.\r\nNOOP\r\n");
    $c->check(qr/^250 2\.0\.0 <bob\@example\.org> /, "$subject: bob's reply");
    $c->check(qr/^250 2\.\d\.\d <carol\@example\.org> /, "$subject: carol's reply");
    $c->check(qr/^250 2\.0\.0 Ok$/, "$subject: then NOOP's: one reply per RCPT the client gave");
    $c->close;
}
{
    my $c = $t->connect(port => 3);
    $c->check(qr/^220 /, 'lmtp-add-reject: greeting');
    $c->send("LHLO c.test\r\n");
    1 while ($c->line // '250 ') =~ /^250-/;
    $c->send("MAIL FROM:<x\@remote.test>\r\nRCPT TO:<bob\@example.org>\r\n"
             . "RCPT TO:<carol\@example.org>\r\nDATA\r\n");
    $c->check(qr/^250 /, 'MAIL') for 1 .. 3;
    $c->check(qr/^354 /, 'DATA');
    $c->send("Subject: lmtp-add-reject\r\n\r\nx\r\n.\r\nNOOP\r\n");
    $c->check(qr/^550 5\.7\.1 not after all$/, 'a refusal after a hook added a recipient: '
              . 'one reply per RCPT') for 1 .. 2;
    $c->check(qr/^250 2\.0\.0 Ok$/, 'then NOOP\'s');
    $c->close;
}

# BDAT: the same body
{
    my $c = $t->connect(port => 1);
    $c->check(qr/^220 /, 'BDAT: greeting');
    $c->send("EHLO c.test\r\n");
    1 while ($c->line // '250 ') =~ /^250-/;
    my $msg = "Subject: body\r\n\r\nhello\r\n";
    $c->send("MAIL FROM:<x\@remote.test>\r\nRCPT TO:<frank\@example.org>\r\n"
             . "BDAT 10\r\n" . substr($msg, 0, 10) . "BDAT " . (length($msg) - 10) . " LAST\r\n"
             . substr($msg, 10) . "QUIT\r\n");
    $c->check(qr/^250 /, 'BDAT: reply') for 1 .. 4;
    $c->check(qr/^221 /, 'QUIT');
    my ($b) = grep { /Subject: body/ } $m->mailbox('frank@example.org');
    like($b // '', qr/^X-Body: size=24 len=7 cap=7 zero=0 chunks=1 same=true first=hello small=7 /m,
         'data_end over BDAT: the body after the empty line');
}

my %lmtp = map { my $u = $_; $u => [grep { /Subject: lmtp-/ } $m->mailbox("$u\@example.org")] }
    qw(bob carol frank);
is(scalar @{$lmtp{bob}}, 2, 'LMTP: bob has both');
is(scalar @{$lmtp{carol}}, 1, 'carol only the one she was not removed from');
is(scalar @{$lmtp{frank}}, 1, 'frank the one he was added to');

$t->done_testing;

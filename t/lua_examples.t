#!/usr/bin/perl

# The shipped Lua examples (lua/examples/, on the library lua/facteur/)
# running together under the shipped conf/examples/policy.conf, over real
# sessions: greylisting, a rate limit, header rewriting, a content filter,
# routing by domain, filing by List-Id and Subject, and legacy logins.
#
# The configuration is conf/examples/policy.conf itself, with only its
# loopback ports swapped for free ones; the examples are used as shipped
# (lua/examples and lua/facteur are symlinks into the tree), and the test's
# settings are lua/site/NAME.lua files, the way an operator sets them
# (greylist delay 1 s, small rate limits, the legacy logins).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/smtp imap pop3 lmdb lua metrics ssl/);
my $root = $t->root;
my $bin = $t->binary;
my $dir = $t->testdir;

# --- the shipped configuration passes facteur -t from the tree's root -------
# (it uses the development certificate, which make test and make run make)
system("cd '$root' && sh auto/devcert var/ssl >/dev/null") == 0
    or BAIL_OUT('auto/devcert failed');
my $check = `cd '$root' && '$bin' -t -p . -c conf/examples/policy.conf 2>&1`;
is($? >> 8, 0, 'conf/examples/policy.conf passes facteur -t from the tree root') or diag($check);

# --- the same file, on free ports ------------------------------------------
my %dev_port = (2525 => 1, 2587 => 2, 2465 => 3, 2143 => 4, 2993 => 5,
                2110 => 6, 2995 => 7, 9025 => 8);
my $conf = $t->read_file("$root/conf/examples/policy.conf");
my $swapped = $conf =~ s{127\.0\.0\.1:(\d+)}{
    '127.0.0.1:%%PORT_' . ($dev_port{$1} // die "policy.conf: unexpected port $1\n") . '%%'
}ge;
is($swapped, scalar keys %dev_port, 'policy.conf listens on the development ports');
$t->write_file_expand('facteur.conf', $conf);

mkdir "$dir/$_" for qw(var var/ssl lua lua/site);
symlink("$root/lua/$_", "$dir/lua/$_") or die "symlink lua/$_: $!" for qw(examples facteur);
system('cp', $t->cert('localhost'), "$dir/var/ssl/facteur.crt");
system('cp', $t->cert('localhost', 'KEY'), "$dir/var/ssl/facteur.key");

# the operator's settings, next to the shipped scripts
$t->write_file('lua/site/greylist.lua', "return { delay = 1 }\n");
$t->write_file('lua/site/ratelimit.lua',
               "return { limit = 5, limit_unauthenticated = 6, window = 86400 }\n");
$t->write_file('lua/site/header_rewrite.lua', "return { organization = \"Example Test Org\" }\n");
$t->write_file('lua/site/custom_auth.lua', <<'EOF');
return {
    logins = {
        jdoe = { user = "john.doe@example.org", password = "old secret" },
        ["legacy-pop"] = { user = "john.doe@example.org", password = "pop only",
                           protocols = { pop3 = true } },
    },
}
EOF

my $m = Facteur::Mail->new($t);
for (['alice', 'alice pw'], ['bob', 'bob pw'], ['postmaster', 'pm pw'], ['sub', 'sub pw'],
     ['rate', 'rate pw'], ['john.doe', 'dir secret']) {
    $m->add_user("$_->[0]\@example.org", $_->[1]);
}
for my $d (qw(example.net old.example.org)) {
    $m->ctl('domain', 'add', $d);
    my ($rc, $out) = $m->ctl('alias', 'add', "\@$d", 'postmaster@example.org');
    die "alias \@$d: $out" if $rc;
}
for my $box ('Lists', 'Lists/announce', 'Alerts', 'Special') {
    my ($rc, $out) = $m->ctl('mailbox', 'create', 'alice@example.org', $box);
    die "mailbox $box: $out" if $rc;
}
$m->ctl('mailbox', 'create', 'postmaster@example.org', 'example.net');

$t->run;

# smtplib helpers shared by the scripts: attempt() is one transaction,
# deliver() tries again after the greylisting delay, like an MTA
my $PY = <<'EOF';
import smtplib, ssl, time, sys
CTX = ssl._create_unverified_context()
MX, SUB = %%PORT_1%%, %%PORT_2%%

def attempt(sender, rcpts, msg, src='127.0.0.1', port=MX, login=None):
    s = smtplib.SMTP('127.0.0.1', port, source_address=(src, 0), timeout=15)
    s.ehlo('client.test')
    if login:
        s.starttls(context=CTX)
        s.ehlo('client.test')
        s.login(*login)
    out = {}
    code, text = s.mail(sender)
    if code != 250:
        out['MAIL'] = (code, text.decode())
    else:
        ok = False
        for r in rcpts:
            code, text = s.rcpt(r)
            out[r] = (code, text.decode())
            ok = ok or code == 250
        if ok:
            try:
                code, text = s.data(msg)
            except smtplib.SMTPDataError as e:
                code, text = e.smtp_code, e.smtp_error
            out['DATA'] = (code, text.decode())
    try:
        s.quit()
    except Exception:
        pass
    return out

def show(name, out):
    for k in sorted(out):
        print('%s %s %d %s' % (name, k, out[k][0], out[k][1].replace('\n', ' ')))

def deliver(items):
    # items: name -> (sender, rcpts, msg); greylisted recipients are retried
    pending = {n: list(it[1]) for n, it in items.items()}
    final = {n: {} for n in items}
    for round in range(3):
        if round:
            time.sleep(1.3)
        for n, (sender, rcpts, msg) in items.items():
            if not pending[n]:
                continue
            out = attempt(sender, pending[n], msg)
            final[n].update(out)
            pending[n] = [r for r in pending[n] if r in out and out[r][0] == 451
                          and 'Greylisted' in out[r][1]]
        if not any(pending.values()):
            break
    for n in sorted(final):
        show(n, final[n])
EOF

sub py {
    my ($script) = @_;
    my ($rc, $out) = $m->python($PY . $script);
    is($rc, 0, 'the script ran') or diag($out);
    my %r;
    for (split /\n/, $out) {
        $r{"$1 $2"} = $3 if /^(\S+) (\S+) (\d+ .*)$/;
    }
    return (\%r, $out);
}

sub subjects {
    my ($user, $box) = @_;
    return [map { /^Subject: ([^\n]*)/m ? $1 : '(none)' } $m->mailbox($user, $box)];
}

# --- greylist.lua ------------------------------------------------------------
my ($r, $out) = py(<<'EOF');
M = 'Subject: grey %d\r\n\r\nbody\r\n'
g = 'grey@outside.test'
show('first', attempt(g, ['alice@example.org'], M % 1))
show('early', attempt(g, ['alice@example.org'], M % 2, src='127.0.0.2'))
time.sleep(1.3)
show('retry', attempt(g, ['alice@example.org'], M % 3, src='127.0.0.3'))
show('othernet', attempt(g, ['alice@example.org'], M % 4, src='127.0.1.1'))
show('again', attempt(g, ['alice@example.org'], M % 5))
show('otherrcpt', attempt(g, ['bob@example.org'], M % 6))
show('auth', attempt('sub@example.org', ['alice@example.org'], M % 7, port=SUB,
                     login=('sub@example.org', 'sub pw')))
EOF
like($r->{'first alice@example.org'} // '', qr/^451 4\.7\.1 Greylisted, please try again in 1 seconds/,
     'greylist: a new triplet is deferred with 451 4.7.1') or diag($out);
like($r->{'early alice@example.org'} // '', qr/^451 4\.7\.1 Greylisted/,
     'greylist: a retry before the delay is deferred again (same /24)');
like($r->{'retry alice@example.org'} // '', qr/^250 /,
     'greylist: a retry after the delay passes, from another address of the /24');
like($r->{'retry DATA'} // '', qr/^250 /, 'greylist: and the message is accepted');
like($r->{'othernet alice@example.org'} // '', qr/^451 4\.7\.1 Greylisted/,
     'greylist: another /24 is another triplet');
like($r->{'again alice@example.org'} // '', qr/^250 /,
     'greylist: a triplet that passed passes at once afterwards');
like($r->{'otherrcpt bob@example.org'} // '', qr/^451 4\.7\.1 Greylisted/,
     'greylist: another recipient is another triplet');
like($r->{'auth alice@example.org'} // '', qr/^250 /,
     'greylist: an authenticated client is not greylisted');
my $alice = subjects('alice@example.org');
is_deeply([grep { /grey/ } @$alice], ['[EXT] grey 3', '[EXT] grey 5', 'grey 7'],
          'greylist: only the accepted attempts reached the mailbox');

# --- ratelimit.lua -----------------------------------------------------------
($r, $out) = py(<<'EOF');
M = 'Subject: rl\r\n\r\nbody\r\n'
for i in range(7):
    show('mx%d' % i, attempt('rl@outside.test', [], M))
show('othernet', attempt('rl@outside.test', [], M, src='127.0.1.1'))
show('othersender', attempt('rl2@outside.test', [], M))
for i in range(6):
    show('user%d' % i, attempt('other%d@example.org' % i, [], M, port=SUB,
                               login=('rate@example.org', 'rate pw')))
EOF
is(scalar(grep { defined $r->{"mx$_ MAIL"} } 0 .. 5), 0,
   'ratelimit: 6 messages from one sender and network pass') or diag($out);
like($r->{'mx6 MAIL'} // '', qr/^450 4\.7\.1 Too many messages/,
     'ratelimit: the 7th is deferred with 450 4.7.1');
ok(!defined $r->{'othernet MAIL'},
   'ratelimit: the same sender from another network has its own count (no forged lockout)');
ok(!defined $r->{'othersender MAIL'}, 'ratelimit: another sender is not limited');
is(scalar(grep { defined $r->{"user$_ MAIL"} } 0 .. 4), 0,
   'ratelimit: an authenticated user sends 5');
like($r->{'user5 MAIL'} // '', qr/^450 4\.7\.1 /,
     'ratelimit: the 6th is deferred, counted by login whatever the sender address');

# --- content_filter.lua, header_rewrite.lua, route_domain.lua, file_by_list.lua
# over the MX, greylisted first like any newcomer
($r, $out) = py(<<'EOF');
A = 'alice@example.org'
exe = ('Subject: invoice\r\nMIME-Version: 1.0\r\n'
       'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
       '--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
       '--b\r\nContent-Type: application/octet-stream;\r\n name="invoice.pdf.exe"\r\n'
       'Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n')
pdf = exe.replace('invoice.pdf.exe', 'report.pdf').replace('Subject: invoice', 'Subject: report')
deliver({
    'cf_subject': ('cf1@outside.test', [A], 'Subject: cheap V1AGRA today\r\n\r\nx\r\n'),
    'cf_exe': ('cf2@outside.test', [A], exe),
    'cf_phish': ('cf3@outside.test', [A],
                 'Subject: notice\r\n\r\nPlease verify your account within 24 hours.\r\n'),
    'cf_clean': ('cf4@outside.test', [A], pdf),
    'hr_tagged': ('hr1@outside.test', [A], 'Subject: [EXTERNAL] Lunch?\r\n\r\nx\r\n'),
    'hr_once': ('hr2@outside.test', [A], 'Subject: [EXT] already\r\n\r\nx\r\n'),
    'rd_net': ('rd1@outside.test', ['sales@example.net'], 'Subject: for sales\r\n\r\nx\r\n'),
    'rd_old': ('rd2@outside.test', ['bob@old.example.org'], 'Subject: renamed\r\n\r\nx\r\n'),
    'rd_nouser': ('rd3@outside.test', ['carol@old.example.org'], 'Subject: no carol\r\n\r\nx\r\n'),
    'fl_announce': ('fl1@outside.test', [A],
                    'List-Id: Announcements <announce.example.org>\r\nSubject: news\r\n\r\nx\r\n'),
    'fl_other': ('fl2@outside.test', [A], 'List-Id: <misc.lists.test>\r\nSubject: misc\r\n\r\nx\r\n'),
    'fl_alert': ('fl3@outside.test', [A], 'Subject: [ALERT] disk full\r\n\r\nx\r\n'),
    'fl_detail': ('fl4@outside.test', ['alice+Special@example.org'],
                  'List-Id: <misc.lists.test>\r\nSubject: special\r\n\r\nx\r\n'),
    'fl_plain': ('fl5@outside.test', [A], 'Subject: plain\r\n\r\nx\r\n'),
    # nothing for the scripts to hold on to: no headers at all, a null sender
    'bare': ('bare@outside.test', [A], '\r\nno headers at all\r\n'),
    'bounce': ('', [A], 'Subject: bounce\r\n\r\nx\r\n'),
})
# submission: not filtered, internal headers stripped, relayed by domain
login = ('sub@example.org', 'sub pw')
show('cf_auth', attempt('sub@example.org', [A], 'Subject: viagra jokes\r\n\r\nx\r\n',
                        port=SUB, login=login))
show('hr_sub', attempt('sub@example.org', [A],
                       'Received: from laptop.internal (10.1.2.3) by gw.internal\r\n'
                       'X-Originating-IP: [10.1.2.3]\r\nX-Internal-Trace: abc\r\n'
                       'x-internal-trace: def\r\nX-Mailer: Foo 1.0\r\n'
                       'Subject: [EXTERNAL] from inside\r\nX-Kept: yes\r\n\r\nhello\r\n',
                       port=SUB, login=login))
show('rd_partner', attempt('sub@example.org', ['someone@partner.example'],
                           'Subject: to the partner\r\n\r\nx\r\n', port=SUB, login=login))
EOF

# content_filter.lua
like($r->{'cf_subject DATA'} // '', qr/^550 5\.7\.1 Message content rejected$/,
     'content_filter: a Subject rule refuses with 550 5.7.1 and the rule\'s text') or diag($out);
like($r->{'cf_exe DATA'} // '', qr/^550 5\.7\.1 Executable attachments are not accepted here/,
     'content_filter: an executable attachment (folded MIME header) is refused');
like($r->{'cf_phish DATA'} // '', qr/^550 5\.7\.1 Message content rejected as phishing/,
     'content_filter: a body rule');
like($r->{'cf_clean DATA'} // '', qr/^250 /, 'content_filter: a clean attachment passes');
like($r->{'cf_auth DATA'} // '', qr/^250 /,
     'content_filter: an authenticated client is not filtered');
$alice = subjects('alice@example.org');
ok((grep { $_ eq '[EXT] report' } @$alice) && !(grep { /invoice|V1AGRA|notice/ } @$alice),
   'content_filter: only the clean message was stored') or diag(explain($alice));

# header_rewrite.lua
ok((grep { $_ eq '[EXT] Lunch?' } @$alice),
   'header_rewrite: an outside Subject is tagged, the other system\'s tag replaced')
    or diag(explain($alice));
is(scalar(grep { $_ eq '[EXT] already' } @$alice), 1,
   'header_rewrite: an already tagged Subject is tagged once');
my ($sub) = grep { /^Subject: \[EXTERNAL\] from inside$/m } $m->mailbox('alice@example.org');
ok(defined $sub, 'header_rewrite: submitted mail is not tagged');
$sub //= '';
unlike($sub, qr/laptop\.internal|X-Originating-IP|X-Internal-Trace|X-Mailer/i,
       'header_rewrite: internal Received and X- headers are stripped on submission');
like($sub, qr/^Organization: Example Test Org$/m, 'header_rewrite: Organization is added');
like($sub, qr/^X-Kept: yes$/m, 'header_rewrite: other headers stay');
like($sub, qr/^Received: from client\.test /m, 'header_rewrite: the server\'s own Received stays');

# route_domain.lua
like($r->{'rd_net sales@example.net'} // '', qr/^250 /, 'route_domain: RCPT to the alias domain')
    or diag($out);
is_deeply(subjects('postmaster@example.org', 'example.net'), ['[EXT] for sales'],
          'route_domain: redirected to the user and filed in the domain\'s folder');
is_deeply([grep { /renamed/ } @{subjects('bob@example.org')}], ['[EXT] renamed'],
          'route_domain: bob@old.example.org is delivered to bob@example.org');
is_deeply(subjects('postmaster@example.org'), ['[EXT] no carol'],
          'route_domain: with no such user at the new domain, the catch-all keeps it');
like($t->read_file('stderr.log'),
     qr/route_domain: <carol\@old\.example\.org> -> <carol\@example\.org>: .*5\.1\.1/,
     'route_domain: and the log says why');
like($r->{'rd_partner DATA'} // '', qr/^250 /, 'route_domain: mail for the partner is accepted');
my ($qrc, $queue) = $m->ctl(qw(queue list));
like($queue, qr/<sub\@example\.org> -> <someone\@partner\.example> \(relay via partner \(mx\.partner\.example:25\)\)/,
     'route_domain: and queued for the partner\'s smarthost') or diag($queue);

# file_by_list.lua
is_deeply(subjects('alice@example.org', 'Lists/announce'), ['[EXT] news'],
          'file_by_list: a known List-Id goes to its folder');
is_deeply(subjects('alice@example.org', 'Lists'), ['[EXT] misc'],
          'file_by_list: another list goes to Lists');
is_deeply(subjects('alice@example.org', 'Alerts'), ['[EXT] [ALERT] disk full'],
          'file_by_list: a Subject rule (after the [EXT] tag)');
is_deeply(subjects('alice@example.org', 'Special'), ['[EXT] special'],
          'file_by_list: a +detail folder wins over the list rule');
ok((grep { $_ eq '[EXT] plain' } @$alice), 'file_by_list: other mail stays in INBOX');

# every script copes with what is not there
like($r->{'bare DATA'} // '', qr/^250 /, 'a message without headers goes through every hook');
like($r->{'bounce DATA'} // '', qr/^250 /, 'so does one from the null sender (greylisted first)');
like($r->{'bounce alice@example.org'} // '', qr/^250 /, '... which was retried and passed');
ok((grep { $_ eq '(none)' } @$alice) && (grep { $_ eq '[EXT] bounce' } @$alice),
   'both are in the mailbox') or diag(explain($alice));

# file_by_list over LMTP (no greylisting, no tag there)
($r, $out) = py(<<'EOF');
s = smtplib.LMTP('%%TESTDIR%%/var/lmtp.sock')
s.ehlo('mta.test')
print('lmtp', s.sendmail('list@lists.test', ['alice@example.org', 'john.doe@example.org'],
      'List-Id: <announce.example.org>\r\nSubject: via lmtp\r\n\r\nx\r\n'))
s.quit()
EOF
like($out, qr/^lmtp \{\}$/m, 'LMTP: the message is accepted for both') or diag($out);
is_deeply(subjects('alice@example.org', 'Lists/announce'), ['[EXT] news', 'via lmtp'],
          'file_by_list: the lmtp block files too');

# --- custom_auth.lua (lua_auth) -----------------------------------------------
($r, $out) = py(<<'EOF');
import imaplib, poplib, threading
def imap(user, pw):
    try:
        c = imaplib.IMAP4('127.0.0.1', %%PORT_4%%, timeout=20)
        c.starttls(ssl_context=CTX)
        c.login(user, pw)
        typ, data = c.select('INBOX')
        typ, found = c.search(None, 'SUBJECT', '"via lmtp"')
        c.logout()
        return (250, 'OK %s %d' % (data[0].decode(), len(found[0].split())))
    except imaplib.IMAP4.error as e:
        return (535, 'NO %s' % e)
def pop(user, pw):
    try:
        c = poplib.POP3('127.0.0.1', %%PORT_6%%, timeout=20)
        c.stls(context=CTX)
        c.user(user)
        c.pass_(pw)
        n, size = c.stat()
        c.quit()
        return (250, 'OK %d' % n)
    except poplib.error_proto as e:
        return (535, 'ERR %s' % e)
tries = {
    'imap_legacy': lambda: imap('jdoe', 'old secret'),
    'imap_case': lambda: imap('JDoe', 'old secret'),
    'imap_directory': lambda: imap('john.doe@example.org', 'dir secret'),
    'imap_wrong': lambda: imap('jdoe', 'wrong'),
    'imap_dirpw': lambda: imap('jdoe', 'dir secret'),
    'imap_popinly': lambda: imap('legacy-pop', 'pop only'),
}
# one POP3 session at a time per maildrop (the others would find it IN-USE)
res = {'pop_only': pop('legacy-pop', 'pop only'), 'pop_legacy': pop('jdoe', 'old secret')}
def run(k):
    res[k] = tries[k]()
threads = [threading.Thread(target=run, args=(k,)) for k in tries]
for th in threads: th.start()
for th in threads: th.join()
for k in sorted(res):
    show(k, {'login': res[k]})
show('smtp', attempt('john.doe@example.org', ['alice@example.org'], 'Subject: from jdoe\r\n\r\nx\r\n',
                     port=SUB, login=('jdoe', 'old secret')))
EOF
like($r->{'imap_legacy login'} // '', qr/^250 OK 1 1$/,
     'custom_auth: a legacy login opens its mailbox user\'s INBOX over IMAP') or diag($out);
like($r->{'imap_case login'} // '', qr/^250 OK/, 'custom_auth: logins ignore case');
like($r->{'imap_directory login'} // '', qr/^250 OK 1 1$/,
     'custom_auth: other logins go to the directory (nil)');
like($r->{'imap_wrong login'} // '', qr/^535 NO/, 'custom_auth: a wrong password is refused');
like($r->{'imap_dirpw login'} // '', qr/^535 NO/,
     'custom_auth: a legacy login is the table\'s alone (the directory password does not work)');
like($r->{'imap_popinly login'} // '', qr/^535 NO/,
     'custom_auth: a login limited to POP3 is refused over IMAP');
like($r->{'pop_only login'} // '', qr/^250 OK 1$/, 'custom_auth: ... and accepted over POP3');
like($r->{'pop_legacy login'} // '', qr/^250 OK 1$/, 'custom_auth: POP3 with a legacy login');
like($r->{'smtp DATA'} // '', qr/^250 /, 'custom_auth: SMTP AUTH with a legacy login, then mail');

# the examples' counters reach /metrics
my $metrics = $t->http_get('/metrics', port => 8);
like($metrics, qr/^facteur_lua_greylist_deferred_total \d+/m, 'metrics: greylisting is counted');
like($metrics, qr/^facteur_lua_ratelimit_deferred_total 2$/m, 'metrics: rate limiting is counted');
like($metrics, qr/^facteur_lua_content_filter_rejected_total 3$/m,
     'metrics: the content filter is counted');

# --- the library, where loopback cannot reach: IPv6 networks ----------------
SKIP: {
    my ($lua) = grep { -x } map { "/usr/bin/$_" } qw(luajit lua5.4);
    skip 'no stand-alone Lua interpreter', 2 unless $lua;
    my $got = `'$lua' -e 'package.path = "$root/lua/?.lua"
        local net = require("facteur.net")
        for _, ip in ipairs({ "2001:db8:1:2:3:4:5:6", "2001:DB8::1", "::ffff:192.0.2.77",
                              "fe80::1%eth0", "1::2::3", "unix:", "300.1.1.1" }) do
            io.write(net.prefix(ip), " ")
        end' 2>&1`;
    is($got, '2001:db8:1:2::/64 2001:db8:0:0::/64 192.0.2.0/24 fe80:0:0:0::/64 1::2::3 unix: 300.1.1.1 ',
       'facteur.net: /64 for IPv6, IPv4-mapped as IPv4, anything else unchanged');
    $got = `'$lua' -e 'package.path = "$dir/lua/?.lua"
        local ok, err = pcall(require("facteur.settings").load, "greylist", { delai = 1 })
        print(ok, err)' 2>&1`;
    like($got, qr/^false\t.*lua\/site\/greylist\.lua: unknown setting "delay" for greylist/,
         'facteur.settings: a site setting the script does not have is an error');
}

$t->done_testing;

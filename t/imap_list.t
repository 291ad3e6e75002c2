#!/usr/bin/perl

# IMAP LIST and LSUB: the default special-use folders of a first login, a
# tree made with CREATE and facteurctl, "*" and "%" with a reference,
# INBOX in any case, LIST "" "" (the separator), CHILDREN, several
# patterns, LIST-EXTENDED selection options (SUBSCRIBED, RECURSIVEMATCH
# with CHILDINFO, SPECIAL-USE) and return options, LIST-STATUS, \Noselect
# parents, LSUB, non-ASCII names in modified UTF-7 both ways and in UTF-8
# after ENABLE UTF8=ACCEPT, \Subscribed in IMAP4rev2, bad syntax, a hostile
# pattern, a long list with a STATUS for each name, and clients that
# reset the connection in the middle of one.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Socket qw(SOL_SOCKET SO_LINGER);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/imap lmdb/);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
imap {
    server { listen 127.0.0.1:%%PORT_1%%; }
    auth_plaintext on;
}
EOF
mkdir $t->testdir . '/var';
my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$m->add_user('bob@example.org', 'bob secret');
$t->run;

sub client {
    my ($user) = @_;
    my $c = $t->connect(port => 1);
    $c->check(qr/^\* OK /, 'greeting');
    my @r = cmd($c, 'l0', "LOGIN $user\@example.org \"$user secret\"");
    like($r[-1], qr/^l0 OK /, "$user logs in");
    return $c;
}

# send a command, read up to its tagged reply; returns all the lines
sub cmd {
    my ($c, $tag, $line) = @_;
    $c->cmd("$tag $line");
    my @lines;
    while (defined(my $l = $c->line(10))) {
        push @lines, $l;
        last if $l =~ /^\Q$tag\E /;
    }
    return @lines;
}

# the untagged responses of a command, without its tagged reply
sub untagged {
    my (@r) = @_;
    return grep { /^\* / } @r;
}

my $c = client('alice');

# ---- the first login made the special-use folders --------------------------------

my @r = cmd($c, 'a', 'LIST "" "*"');
is($r[-1], 'a OK LIST completed', 'LIST "" "*"');
is_deeply([untagged(@r)], [
    '* LIST (\HasNoChildren) "/" "INBOX"',
    '* LIST (\HasNoChildren \Archive) "/" "Archive"',
    '* LIST (\HasNoChildren \Drafts) "/" "Drafts"',
    '* LIST (\HasNoChildren \Junk) "/" "Junk"',
    '* LIST (\HasNoChildren \Sent) "/" "Sent"',
    '* LIST (\HasNoChildren \Trash) "/" "Trash"',
], 'a first login made Drafts, Sent, Trash, Junk and Archive, with their special use')
    or diag(explain(\@r));

@r = cmd($c, 'b', 'LIST "" ""');
is_deeply(\@r, ['* LIST (\Noselect) "/" ""', 'b OK LIST completed'],
          'LIST "" "" answers the separator');
@r = cmd($c, 'b2', 'LIST "Work/" ""');
is($r[0], '* LIST (\Noselect) "/" ""', 'with a reference too');

# ---- a tree -------------------------------------------------------------------------

for my $name ('Work', 'Work/Projects', 'Work/Projects/2026', 'Work/Notes', 'Caf&AOk-') {
    @r = cmd($c, 'c', "CREATE \"$name\"");
    like($r[-1], qr/^c OK /, "CREATE $name");
}
my ($rc, $out) = $m->ctl('mailbox', 'create', 'alice@example.org', "R\x{c3}\x{a9}unions/\x{c3}\x{a9}t\x{c3}\x{a9}");
is($rc, 0, 'facteurctl mailbox create with a UTF-8 name') or diag($out);
($rc, $out) = $m->ctl('mailbox', 'create', 'alice@example.org', 'Old/Sub');
is($rc, 0, 'facteurctl mailbox create Old/Sub') or diag($out);
@r = cmd($c, 'd', 'DELETE Old');
like($r[-1], qr/^d OK /, 'DELETE Old (it has a child: it stays as \Noselect)');

@r = cmd($c, 'e', 'LIST "" "*"');
is_deeply([untagged(@r)], [
    '* LIST (\HasNoChildren) "/" "INBOX"',
    '* LIST (\HasNoChildren \Archive) "/" "Archive"',
    '* LIST (\HasNoChildren) "/" "Caf&AOk-"',
    '* LIST (\HasNoChildren \Drafts) "/" "Drafts"',
    '* LIST (\HasNoChildren \Junk) "/" "Junk"',
    '* LIST (\Noselect \HasChildren) "/" "Old"',
    '* LIST (\HasNoChildren) "/" "Old/Sub"',
    '* LIST (\HasChildren) "/" "R&AOk-unions"',
    '* LIST (\HasNoChildren) "/" "R&AOk-unions/&AOk-t&AOk-"',
    '* LIST (\HasNoChildren \Sent) "/" "Sent"',
    '* LIST (\HasNoChildren \Trash) "/" "Trash"',
    '* LIST (\HasChildren) "/" "Work"',
    '* LIST (\HasNoChildren) "/" "Work/Notes"',
    '* LIST (\HasChildren) "/" "Work/Projects"',
    '* LIST (\HasNoChildren) "/" "Work/Projects/2026"',
], 'the whole tree: CHILDREN, \Noselect, names in modified UTF-7') or diag(explain(\@r));

# ---- wildcards and references ---------------------------------------------------------

sub names {
    my (@r) = @_;
    return [map { /^\* (?:LIST|LSUB) \([^)]*\) "\/" "(.*)"/ ? $1 : "?$_" } untagged(@r)];
}

is_deeply(names(cmd($c, 'f', 'LIST "" %')),
          [qw(INBOX Archive Caf&AOk- Drafts Junk Old R&AOk-unions Sent Trash Work)],
          '"%": the top level');
is_deeply(names(cmd($c, 'f', 'LIST "" Work/%')), [qw(Work/Notes Work/Projects)],
          '"Work/%": one level down');
is_deeply(names(cmd($c, 'f', 'LIST Work/ %')), [qw(Work/Notes Work/Projects)],
          'the reference "Work/" with "%"');
is_deeply(names(cmd($c, 'f', 'LIST Work/ *')),
          [qw(Work/Notes Work/Projects Work/Projects/2026)], 'the reference "Work/" with "*"');
is_deeply(names(cmd($c, 'f', 'LIST "" "Work/*/2026"')), ['Work/Projects/2026'],
          '"*" in the middle crosses levels');
is_deeply(names(cmd($c, 'f', 'LIST "" "%/2026"')), [], '"%" does not cross levels');
is_deeply(names(cmd($c, 'f', 'LIST "" "*o*"')),
          [qw(INBOX R&AOk-unions R&AOk-unions/&AOk-t&AOk- Work Work/Notes Work/Projects
              Work/Projects/2026)],
          '"*o*" (INBOX too: its name is "inbox" as well)');
is_deeply(names(cmd($c, 'f', 'LIST "" "*&AOk-*"')),
          [qw(Caf&AOk- R&AOk-unions R&AOk-unions/&AOk-t&AOk-)],
          'a modified UTF-7 pattern matches the UTF-8 names');
is_deeply(names(cmd($c, 'f', 'LIST "" "*A*"')), ['Archive'],
          'patterns match names, not their modified UTF-7 form');
is_deeply(names(cmd($c, 'f', 'LIST "" inbox')), ['INBOX'], 'INBOX in any case');
is_deeply(names(cmd($c, 'f', 'LIST "" "iN%"')), ['INBOX'], 'INBOX in any case, with "%"');
is_deeply(names(cmd($c, 'f', 'LIST "" work')), [], 'other names are case-sensitive');
is_deeply(names(cmd($c, 'f', 'LIST "" Nowhere')), [], 'a name that does not exist: nothing');
is_deeply(names(cmd($c, 'f', 'LIST "" "R&AOk-unions/%"')), ['R&AOk-unions/&AOk-t&AOk-'],
          'a modified UTF-7 pattern');
is_deeply(names(cmd($c, 'f', 'LIST () "" (INBOX "Work/*" Sent)')),
          [qw(INBOX Sent Work/Notes Work/Projects Work/Projects/2026)],
          'several patterns, each name once');
is_deeply(names(cmd($c, 'f', 'LIST "" "Work/Projects/2026"')), ['Work/Projects/2026'],
          'a plain name');

my $t0 = time;
@r = cmd($c, 'f', 'LIST "" "' . ('*a' x 500) . '*b"');
is($r[-1], 'f OK LIST completed', 'a pattern with 1000 wildcards');
ok(time - $t0 < 2, 'is answered in linear time') or diag(time - $t0);

# ---- subscriptions ----------------------------------------------------------------------

@r = cmd($c, 'g', 'SUBSCRIBE Work/Projects/2026');
like($r[-1], qr/^g OK /, 'SUBSCRIBE Work/Projects/2026');
@r = cmd($c, 'g', 'SUBSCRIBE Caf&AOk-');
like($r[-1], qr/^g OK /, 'SUBSCRIBE Caf&AOk-');

@r = cmd($c, 'h', 'LIST (SUBSCRIBED) "" "*"');
is_deeply([untagged(@r)], [
    '* LIST (\Subscribed \HasNoChildren) "/" "INBOX"',
    '* LIST (\Subscribed \HasNoChildren) "/" "Caf&AOk-"',
    '* LIST (\Subscribed \HasNoChildren) "/" "Work/Projects/2026"',
], 'LIST (SUBSCRIBED): only the subscribed, with \Subscribed') or diag(explain(\@r));
@r = cmd($c, 'h', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"');
is_deeply([untagged(@r)], [
    '* LIST (\Subscribed \HasNoChildren) "/" "INBOX"',
    '* LIST (\Subscribed \HasNoChildren) "/" "Caf&AOk-"',
    '* LIST (\HasChildren) "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))',
], 'RECURSIVEMATCH: a parent of subscribed names, with CHILDINFO') or diag(explain(\@r));
@r = cmd($c, 'h', 'LIST "" "Work*" RETURN (SUBSCRIBED CHILDREN)');
is_deeply([untagged(@r)], [
    '* LIST (\HasChildren) "/" "Work"',
    '* LIST (\HasNoChildren) "/" "Work/Notes"',
    '* LIST (\HasChildren) "/" "Work/Projects"',
    '* LIST (\Subscribed \HasNoChildren) "/" "Work/Projects/2026"',
], 'RETURN (SUBSCRIBED CHILDREN)') or diag(explain(\@r));
@r = cmd($c, 'h', 'LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)');
is_deeply(names(@r), [qw(Archive Drafts Junk Sent Trash)], 'LIST (SPECIAL-USE)');
@r = cmd($c, 'h', 'LIST (SUBSCRIBED SPECIAL-USE) "" "*"');
is_deeply(names(@r), [], 'SUBSCRIBED and SPECIAL-USE: both must hold');

@r = cmd($c, 'i', 'LSUB "" "*"');
is_deeply([untagged(@r)], [
    '* LSUB () "/" "INBOX"',
    '* LSUB () "/" "Caf&AOk-"',
    '* LSUB () "/" "Work/Projects/2026"',
], 'LSUB "" "*"') or diag(explain(\@r));
@r = cmd($c, 'i', 'LSUB "" "%"');
is_deeply([untagged(@r)], [
    '* LSUB () "/" "INBOX"',
    '* LSUB () "/" "Caf&AOk-"',
    '* LSUB (\Noselect) "/" "Work"',
], 'LSUB "" "%": an unsubscribed parent of subscribed names is \Noselect') or diag(explain(\@r));
@r = cmd($c, 'i', 'LSUB Work/ %');
is_deeply(names(@r), ['Work/Projects'], 'LSUB with a reference');

# ---- LIST-STATUS ----------------------------------------------------------------------------

$c->send("j APPEND INBOX (\\Seen) {21}\r\nSubject: a\r\n\r\nbody\r\n\r\n");
$c->check(qr/^\+ /, 'APPEND');
$c->check(qr/^j OK /, 'a first message');
@r = cmd($c, 'j', "APPEND INBOX {21+}\r\nSubject: b\r\n\r\nbody\r\n");
like($r[-1], qr/^j OK /, 'a second, unseen');
@r = cmd($c, 'j', "APPEND Work/Notes {21+}\r\nSubject: c\r\n\r\nbody\r\n");
like($r[-1], qr/^j OK /, 'one in Work/Notes');

@r = cmd($c, 'k', 'LIST "" "%" RETURN (STATUS (MESSAGES UNSEEN))');
is($r[-1], 'k OK LIST completed', 'LIST RETURN (STATUS ...)');
my @pairs;
for my $i (0 .. $#r - 1) {
    next unless $r[$i] =~ /^\* LIST \(([^)]*)\) "\/" (".*")$/;
    my ($attrs, $name) = ($1, $2);
    my $next = $r[$i + 1] // '';
    push @pairs, [$name, $next =~ /^\* STATUS \Q$name\E \((.*)\)$/ ? $1 : ''];
}
is_deeply(\@pairs, [
    ['"INBOX"', 'MESSAGES 2 UNSEEN 1'],
    ['"Archive"', 'MESSAGES 0 UNSEEN 0'],
    ['"Caf&AOk-"', 'MESSAGES 0 UNSEEN 0'],
    ['"Drafts"', 'MESSAGES 0 UNSEEN 0'],
    ['"Junk"', 'MESSAGES 0 UNSEEN 0'],
    ['"Old"', ''],
    ['"R&AOk-unions"', 'MESSAGES 0 UNSEEN 0'],
    ['"Sent"', 'MESSAGES 0 UNSEEN 0'],
    ['"Trash"', 'MESSAGES 0 UNSEEN 0'],
    ['"Work"', 'MESSAGES 0 UNSEEN 0'],
], 'each LIST line is followed by its STATUS, but for the \Noselect one') or diag(explain(\@r));
@r = cmd($c, 'k', 'LIST "" "Work/*" RETURN (STATUS (MESSAGES UIDNEXT SIZE))');
like(join("\n", @r), qr/^\* LIST \(\\HasNoChildren\) "\/" "Work\/Notes"\n\* STATUS "Work\/Notes" \(MESSAGES 1 UIDNEXT 2 SIZE \d+\)$/m,
     'STATUS with SIZE and UIDNEXT') or diag(explain(\@r));

# ---- bad syntax -------------------------------------------------------------------------------

for my $bad ('LIST', 'LIST ""', 'LIST (BOGUS) "" "*"', 'LIST (RECURSIVEMATCH) "" "*"',
             'LIST "" "*" RETURN (BOGUS)', 'LIST "" "*" RETURN (STATUS (NOTANITEM))',
             'LIST "" "*" RETURN', 'LIST "" "*" EXTRA', 'LSUB "" ("*")', 'LIST "" ()')
{
    @r = cmd($c, 'm', $bad);
    like($r[-1], qr/^m BAD /, "$bad: BAD");
}
@r = cmd($c, 'm', 'NOOP');
like($r[-1], qr/^m OK /, 'the session goes on');

# ---- UTF-8 names -------------------------------------------------------------------------------

my $u = client('alice');
@r = cmd($u, 'a', 'ENABLE UTF8=ACCEPT');
is($r[0], '* ENABLED UTF8=ACCEPT', 'ENABLE UTF8=ACCEPT');
@r = cmd($u, 'b', 'LIST "" "R*"');
is_deeply([untagged(@r)], [
    "* LIST (\\HasChildren) \"/\" \"R\xc3\xa9unions\"",
    "* LIST (\\HasNoChildren) \"/\" \"R\xc3\xa9unions/\xc3\xa9t\xc3\xa9\"",
], 'after UTF8=ACCEPT names are UTF-8') or diag(explain(\@r));
@r = cmd($u, 'c', "LIST \"\" \"*\xc3\xa9t\xc3\xa9\"");
is_deeply(names(@r), ["R\xc3\xa9unions/\xc3\xa9t\xc3\xa9"], 'a UTF-8 pattern');
@r = cmd($u, 'd', "CREATE \"\xe6\x97\xa5\xe6\x9c\xac/\xe5\xad\x90\"");
like($r[-1], qr/^d OK /, 'CREATE with a UTF-8 name');
@r = cmd($c, 'e', 'LIST "" "&ZeVnLA-*"');
is_deeply(names(@r), ['&ZeVnLA-', '&ZeVnLA-/&W1A-'],
          'the other session sees it in modified UTF-7 (and matches it so)') or diag(explain(\@r));
$u->close;

# ---- IMAP4rev2 --------------------------------------------------------------------------------------

my $v = client('alice');
@r = cmd($v, 'a', 'ENABLE IMAP4rev2');
is($r[0], '* ENABLED IMAP4rev2', 'ENABLE IMAP4rev2');
@r = cmd($v, 'b', 'LIST "" "*"');
like(join("\n", @r), qr/^\* LIST \(\\Subscribed \\HasNoChildren\) "\/" "INBOX"$/m,
     'IMAP4rev2: \Subscribed in a plain LIST');
like(join("\n", @r), qr/^\* LIST \(\\HasNoChildren \\Sent\) "\/" "Sent"$/m,
     'and not where it does not apply');
$v->close;

# ---- another user sees only their own -----------------------------------------------------------

my $b = client('bob');
@r = cmd($b, 'a', 'LIST "" "*"');
is_deeply(names(@r), [qw(INBOX Archive Drafts Junk Sent Trash)], 'bob has his own tree');

# ---- a long list ---------------------------------------------------------------------

my $n = 400;
$b->send(join('', map { sprintf "c%d CREATE \"Box/%04d\"\r\n", $_, $_ } 1 .. $n));
my $created = 0;
while (defined(my $l = $b->line(20))) {
    $created++ if $l =~ /^c\d+ OK /;
    last if $l =~ /^c$n /;
}
is($created, $n, "$n CREATEs pipelined");
$b->cmd('z LIST "" "Box/*" RETURN (STATUS (MESSAGES UIDVALIDITY))');
my ($lists, $statuses, $tagged) = (0, 0, '');
while (defined(my $l = $b->line(20))) {
    $lists++ if $l =~ /^\* LIST \(\\HasNoChildren\) "\/" "Box\/\d{4}"$/;
    $statuses++ if $l =~ /^\* STATUS "Box\/\d{4}" \(MESSAGES 0 UIDVALIDITY \d+\)$/;
    if ($l =~ /^z /) {
        $tagged = $l;
        last;
    }
}
is($lists, $n, "$n LIST lines");
is($statuses, $n, "and $n STATUS lines");
is($tagged, 'z OK LIST completed', 'then the tagged OK');
$b->close;

# clients that reset the connection in the middle of a LIST with STATUS: the
# session must outlive the store call in flight (under AddressSanitizer the
# teardown check catches a use after free)
for my $i (1 .. 60) {
    my $x = $t->connect(port => 1);
    $x->line(5);
    cmd($x, 'a', 'LOGIN bob@example.org "bob secret"');
    $x->cmd('b LIST "" "*" RETURN (STATUS (MESSAGES))');
    $x->line(5) if $i % 2;                  # some after the first line came
    setsockopt($x->sock, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    $x->close;
}
$b = client('bob');
@r = cmd($b, 'a', 'LIST "" "Box/0001"');
is($r[-1], 'a OK LIST completed', 'after 60 connections reset during LIST: still serving');
$b->close;

@r = cmd($c, 'y', 'LOGOUT');
like($r[-1], qr/^y OK /, 'LOGOUT');

$t->done_testing;

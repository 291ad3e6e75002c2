#!/usr/bin/perl

# facteurctl check [--repair]: a clean store says so; a store that lost a
# blob file and holds a stray one says what is wrong (exit 1), a repair
# fixes it (exit 0), the next check is clean and stats agree.  Then the same
# while the server runs on the store, and while an import writes to it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);
use Facteur::Test;

my $t = Facteur::Test->new;
my $ctl = $t->binary;
$ctl =~ s/facteur$/facteurctl/;
plan skip_all => 'facteurctl not built' unless -x $ctl;

my $dir = $t->testdir;
$t->write_file('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 2;
auth_directory var/auth;
storage lmdb { path var/mail; }
EOF
mkdir "$dir/var";
my ($trc) = $t->run_config_test;
plan skip_all => 'the LMDB store is not built' if $trc != 0;

# run facteurctl; returns (exit code, stdout + stderr)
sub ctl {
    my (@args) = @_;
    my $cmd = join ' ', map { "'$_'" } $ctl, '-p', "$dir/", '-c', "$dir/facteur.conf", @args;
    my $out = `$cmd < /dev/null 2>&1`;
    return ($? >> 8, $out);
}

sub blobs {
    opendir my $d, "$dir/var/mail/blobs" or return ();
    return sort grep { -f "$dir/var/mail/blobs/$_" } readdir $d;
}

my ($rc, $out);

ctl(qw(domain add example.org));
$t->write_file('pw', "a long passphrase\n");
`'$ctl' -p '$dir/' -c '$dir/facteur.conf' user add alice\@example.org --password-stdin < '$dir/pw'`;
is($? >> 8, 0, 'a user');

my $big = join '', map { "line $_ of a large attachment\n" } 1 .. 5_000;   # ~150 KB
my $mbox = "From MAILER-DAEMON Thu Nov 19 10:00:00 2026\nSubject: one\n\nsmall\n\n"
    . "From MAILER-DAEMON Thu Nov 19 10:01:00 2026\nSubject: big\n\n$big\n"
    . "From MAILER-DAEMON Thu Nov 19 10:02:00 2026\nSubject: three\n\nsmall too\n";
$t->write_file('in.mbox', $mbox);
($rc, $out) = ctl(qw(import mbox alice@example.org), "$dir/in.mbox");
like($out, qr/imported 3 messages/, 'three messages imported') or diag($out);

# ---- clean ----
($rc, $out) = ctl('check');
is($rc, 0, 'check of a healthy store: exit 0') or diag($out);
like($out, qr/^checked 1 users, 1 mailboxes, 3 messages, 3 bodies \(1 files\)$/m,
     'it says what it checked');
like($out, qr/^store lmdb: clean$/m, 'and that the store is clean');

# ---- damaged: a blob file gone, a stray one ----
my @files = blobs();
is(scalar @files, 1, 'the large message is a file in blobs/');
unlink "$dir/var/mail/blobs/$files[0]";
my $stray = '0123456789abcdef0123456789abcdef';
$t->write_file("var/mail/blobs/$stray", "nobody's body\n");

($rc, $out) = ctl('check');
is($rc, 1, 'check of the damaged store: exit 1') or diag($out);
like($out, qr/^mailbox \d+ \(alice\@example\.org INBOX\): UID 2: its body \Q$files[0]\E is missing \(no file in blobs\/\), the message is lost$/m,
     'names the message whose body is gone');
like($out, qr/^body $stray is used by no message \(a file of 14 bytes, left by an interrupted append\)$/m,
     'names the stray file, as a leftover, not a problem');
like($out, qr/^store lmdb: 1 problem \(facteurctl check --repair/m, 'and counts the problem');
ok(-f "$dir/var/mail/blobs/$stray", 'without --repair nothing changes');

($rc, $out) = ctl(qw(check --repair));
is($rc, 0, 'check --repair: exit 0') or diag($out);
like($out, qr/UID 2: .* the message is lost; its record is dropped: repaired$/m,
     'the lost message is dropped, and said to be lost');
like($out, qr/^body $stray .*: removed$/m, 'the stray file is removed');
like($out, qr/^store lmdb: 1 problem, 1 repaired, 0 not repaired$/m, 'the summary');
ok(!-e "$dir/var/mail/blobs/$stray", 'the stray file is gone');

($rc, $out) = ctl('check');
is($rc, 0, 'check after the repair: exit 0') or diag($out);
like($out, qr/^checked 1 users, 1 mailboxes, 2 messages, 2 bodies \(0 files\)$/m,
     'two messages left');
like($out, qr/^store lmdb: clean$/m, 'clean');

($rc, $out) = ctl('stats');
like($out, qr/^messages: 2$/m, 'stats agrees: 2 messages');
my $bytes = length("Subject: one\n\nsmall\n") + length("Subject: three\n\nsmall too\n");
like($out, qr/^bytes: (\d+)$/m, 'stats gives the bytes');
my ($b) = $out =~ /^bytes: (\d+)$/m;
ok(defined $b && $b >= $bytes && $b < $bytes + 64, "about the two small messages' bytes ($b)");
($rc, $out) = ctl(qw(export mbox alice@example.org), "$dir/out");
my $back = $t->read_file('out/INBOX.mbox');
ok($back =~ /^Subject: one\n\nsmall\n/m && $back =~ /^Subject: three\n\nsmall too\n/m
   && $back !~ /Subject: big/, 'the messages whose bodies are there read back') or diag($back);

# ---- what cannot be repaired ----
$t->write_file('var/mail/blobs/notes.txt', "an admin's note\n");
($rc, $out) = ctl(qw(check --repair));
is($rc, 1, 'a file that is not a body: exit 1 even with --repair') or diag($out);
like($out, qr/^blobs\/notes\.txt is not a body file: not repaired$/m, 'and why');
ok(-f "$dir/var/mail/blobs/notes.txt", 'it is left alone');
unlink "$dir/var/mail/blobs/notes.txt";

# ---- usage ----
($rc, $out) = ctl(qw(check nosuchstore));
is($rc, 1, 'an unknown store is refused');
like($out, qr/no store "nosuchstore"/, 'and named');
($rc, $out) = ctl(qw(check --repair lmdb));
is($rc, 0, 'check --repair STORE') or diag($out);

# ---- while the server runs on the same store ----
$t->run;
ok($t->wait_for(sub { scalar($t->workers) == 2 }, 10), 'the server runs, two workers');
($rc, $out) = ctl('check');
is($rc, 0, 'check while the server runs') or diag($out);
($rc, $out) = ctl(qw(check --repair));
is($rc, 0, 'and a repair') or diag($out);
like($out, qr/^store lmdb: clean$/m, 'clean');

# an import (large messages: files renamed into blobs/ before their commit)
# while repairs run, over and over: nothing of the import is taken for an orphan
my $many = join '', map {
    "From MAILER-DAEMON Thu Nov 19 10:00:00 2026\nSubject: big $_\n\n"
    . join('', map { "$_ " x 40 . "\n" } 1 .. 800) . "\n"
} 1 .. 100;
$t->write_file('many.mbox', $many);
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', "$dir/import.out";
    open STDERR, '>&', \*STDOUT;
    { no warnings 'exec'; exec $ctl, '-p', "$dir/", '-c', "$dir/facteur.conf",
          qw(import mbox alice@example.org), "$dir/many.mbox"; }
    POSIX::_exit(127);
}
my ($repairs, $dirty) = (0, 0);
while (waitpid($pid, WNOHANG) == 0) {
    ($rc, $out) = ctl(qw(check --repair));
    $repairs++;
    $dirty++ if $rc != 0 || $out !~ /^store lmdb: clean$/m;
    diag($out) if $rc != 0 || $out !~ /^store lmdb: clean$/m;
}
is($? >> 8, 0, 'the import finished') or diag($t->read_file('import.out'));
ok($repairs > 0, "$repairs repairs ran during it");
is($dirty, 0, 'every one found the store clean');
($rc, $out) = ctl('check');
like($out, qr/^checked 1 users, 1 mailboxes, 102 messages, 102 bodies \(100 files\)$/m,
     'everything imported is there') or diag($out);
($rc, $out) = ctl('stats');
like($out, qr/^messages: 102$/m, 'and stats counts it');

$t->done_testing;

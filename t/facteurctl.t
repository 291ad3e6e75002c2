#!/usr/bin/perl

# facteurctl and the directory: domains, users with hashed passwords read
# from standard input (never the command line), aliases and catch-alls;
# bad input is refused with a message and a non-zero exit.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

my $t = Facteur::Test->new;
my $ctl = $t->binary;
$ctl =~ s/facteur$/facteurctl/;
plan skip_all => 'facteurctl not built' unless -x $ctl;

my $dir = $t->testdir;
$t->write_file('facteur.conf', "pid facteur.pid;\nauth_directory var/auth;\n");
mkdir "$dir/var";

# run facteurctl; returns (exit code, stdout + stderr)
sub ctl {
    my ($stdin, @args) = @_;
    my $in = "$dir/stdin";
    open my $fh, '>', $in or die;
    print $fh $stdin // '';
    close $fh;
    my $cmd = join ' ', map { "'$_'" } $ctl, '-p', "$dir/", '-c', "$dir/facteur.conf", @args;
    my $out = `$cmd < $in 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out);

($rc, $out) = ctl(undef, qw(domain add Example.ORG));
is($rc, 0, 'domain add') or diag($out);
($rc, $out) = ctl(undef, qw(domain add example.org));
is($rc, 1, 'the same domain again is refused');
like($out, qr/domain "example.org": already exists/, 'and says so');
($rc, $out) = ctl(undef, qw(domain add bad..domain));
is($rc, 1, 'an invalid domain is refused');
like($out, qr/invalid domain "bad\.\.domain"/, 'with the value');

($rc, $out) = ctl("correct horse battery\n", qw(user add Alice@Example.org --password-stdin));
is($rc, 0, 'user add --password-stdin') or diag($out);
my $db = join '', map { local (@ARGV, $/) = ($_); <> } glob("$dir/var/auth/*.mdb");
unlike($db, qr/correct horse/, 'the password is not stored in clear');
like($db, qr/\$y\$/, 'a yescrypt hash is stored');

($rc, $out) = ctl("correct horse battery\n", qw(user auth alice@example.org));
is($rc, 0, 'the password opens the account') or diag($out);
($rc, $out) = ctl("wrong\n", qw(user auth alice@example.org));
is($rc, 1, 'a wrong password does not');
($rc, $out) = ctl("new one\n", qw(user passwd alice@example.org --password-stdin));
is($rc, 0, 'user passwd') or diag($out);
($rc, $out) = ctl("new one\n", qw(user auth alice@example.org));
is($rc, 0, 'the new password works');
($rc, $out) = ctl("correct horse battery\n", qw(user auth alice@example.org));
is($rc, 1, 'the old one no longer does');

($rc, $out) = ctl("pw\n", qw(user add alice@example.org --password-stdin));
is($rc, 1, 'an existing user is refused');
($rc, $out) = ctl("pw\n", qw(user add bob@elsewhere.net --password-stdin));
is($rc, 1, 'a user in a domain that is not local is refused');
like($out, qr/domain is not local/, 'and says why');
($rc, $out) = ctl("\n", qw(user add bob@example.org --password-stdin));
is($rc, 1, 'an empty password is refused');
($rc, $out) = ctl('', qw(user add bob@example.org --password-stdin));
is($rc, 1, 'no password at all is refused');
($rc, $out) = ctl(undef, qw(user add bob@example.org), 'secret');
is($rc, 1, 'a password on the command line is not accepted');
($rc, $out) = ctl("pw\n", qw(user passwd nobody@example.org --password-stdin));
is($rc, 1, 'passwd of an unknown user');
like($out, qr/not found/, 'says not found');

($rc, $out) = ctl("pw\n", qw(user add bob@example.org --password-stdin));
is($rc, 0, 'second user');
($rc, $out) = ctl(undef, qw(user list example.org));
is($out, "alice\@example.org\nbob\@example.org\n", 'user list of the domain');

($rc, $out) = ctl(undef, qw(alias add postmaster@example.org alice@example.org bob@example.org));
is($rc, 0, 'alias with two targets') or diag($out);
($rc, $out) = ctl(undef, qw(alias add @example.org alice@example.org));
is($rc, 0, 'catch-all');
($rc, $out) = ctl(undef, qw(alias add @example.org), 'not an address');
is($rc, 1, 'an invalid target is refused');
($rc, $out) = ctl(undef, qw(alias list));
is($out, "\@example.org alice\@example.org\npostmaster\@example.org alice\@example.org\n"
         . "postmaster\@example.org bob\@example.org\n", 'alias list');
($rc, $out) = ctl(undef, qw(alias del postmaster@example.org bob@example.org));
is($rc, 0, 'one target removed');

($rc, $out) = ctl(undef, qw(domain del example.org));
is($rc, 1, 'a domain with users is not deleted');
like($out, qr/still has users or aliases/, 'and says why');
ctl(undef, qw(user del), $_) for qw(alice@example.org bob@example.org);
ctl(undef, qw(alias del @example.org));
ctl(undef, qw(alias del postmaster@example.org));
($rc, $out) = ctl(undef, qw(domain del example.org));
is($rc, 0, 'an emptied domain is deleted') or diag($out);
($rc, $out) = ctl(undef, qw(domain list));
is($out, '', 'no domain left');

($rc, $out) = ctl(undef, qw(frobnicate now));
is($rc, 1, 'an unknown command');
like($out, qr/^usage: facteurctl/m, 'prints the usage');
($rc, $out) = ctl(undef, qw(user del));
like($out, qr/usage: facteurctl user del ADDRESS/, 'missing argument: the command usage');

# import passwd-file: Dovecot's format, hashes kept, {PLAIN} only on request
ctl(undef, qw(domain add example.org));
my $sha = `openssl passwd -6 -salt abcdefgh bobpw`;
chomp $sha;
$t->write_file('users.pw', <<"EOF");
# exported from dovecot
bob:{SHA512-CRYPT}$sha:1000:1000::/home/bob::
carol\@example.org:{PLAIN}carolpw
no password field here
EOF
($rc, $out) = ctl(undef, qw(import passwd-file), "$dir/users.pw");
is($rc, 1, 'import: lines refused make the exit status 1');
like($out, qr/users\.pw:2: "bob" has no domain/, 'a bare name needs --domain, with FILE:LINE');
like($out, qr/users\.pw:3: \{PLAIN\} password refused/, 'plaintext needs the opt-in');
like($out, qr/users\.pw:4: missing password field/, 'a broken line is named');
($rc, $out) = ctl(undef, qw(import passwd-file --domain=example.org --allow-plain),
                  "$dir/users.pw");
like($out, qr/imported 2 users \(2 new, 0 updated\), 1 lines refused/, 'the good lines are imported');
($rc, $out) = ctl("bobpw\n", qw(user auth bob@example.org));
is($rc, 0, 'an imported SHA512-CRYPT password works') or diag($out);
($rc, $out) = ctl("carolpw\n", qw(user auth carol@example.org));
is($rc, 0, 'an imported plaintext password works') or diag($out);
$db = join '', map { local (@ARGV, $/) = ($_); <> } glob("$dir/var/auth/*.mdb");
unlike($db, qr/carolpw/, 'but it was hashed on the way in');
($rc, $out) = ctl(undef, qw(import passwd-file --domain=example.org --allow-plain),
                  "$dir/users.pw");
like($out, qr/\(0 new, 2 updated\)/, 'importing again updates, nothing is duplicated');
($rc, $out) = ctl("dave\@example.org:$sha\n", qw(import passwd-file -));
is($rc, 0, 'import from standard input') or diag($out);

# mailboxes, through the storage contract (the LMDB store)
$t->write_file('facteur.conf', "pid facteur.pid;\nauth_directory var/auth;\n"
               . "storage lmdb { path var/mail; }\n");
SKIP: {
    my ($trc) = $t->run_config_test;
    skip 'the LMDB store is not built', 25 if $trc != 0;
    ($rc, $out) = ctl(undef, qw(mailbox list carol@example.org));
    is($out, "INBOX subscribed\n", 'a new user has an INBOX') or diag($out);
    ($rc, $out) = ctl(undef, qw(mailbox create carol@example.org Work/Reports));
    is($rc, 0, 'mailbox create') or diag($out);
    ($rc, $out) = ctl(undef, qw(mailbox create carol@example.org Work/Reports));
    like($out, qr/mailbox "Work\/Reports": mailbox already exists/, 'twice: refused');
    ($rc, $out) = ctl(undef, qw(mailbox list carol@example.org));
    is($out, "INBOX subscribed\nWork\nWork/Reports\n", 'mailbox list shows the tree');
    ($rc, $out) = ctl(undef, qw(mailbox delete carol@example.org Work/Reports));
    is($rc, 0, 'mailbox delete') or diag($out);
    ($rc, $out) = ctl(undef, qw(mailbox create carol@example.org ../escape));
    like($out, qr/invalid mailbox name/, 'a name with .. is refused');
    ($rc, $out) = ctl(undef, qw(mailbox list nobody@example.org));
    is($rc, 1, 'mailboxes of a user who does not exist: refused');
    like($out, qr/user "nobody\@example.org": not found/, 'and says so');
    ($rc, $out) = ctl(undef, qw(stats));
    is($out, "domains: 1\nusers: 3\naliases: 0\nmessages: 0\nbytes: 0\n",
       'stats: the directory and the store') or diag($out);

    # mbox round trip (mboxrd): quoting, blank lines, a long line, a big message
    my $long = 'x' x 100_000;
    my $big = join '', map { "line $_ of a large attachment\n" } 1 .. 10_000;
    my $mbox = "From MAILER-DAEMON Thu Nov 19 10:00:00 2026\n"
        . "From: alice\@example.org\nSubject: one\n\nbody\n>From quoted once\n"
        . ">>From quoted twice\nFrom-less line\n\n"
        . "From MAILER-DAEMON Fri Nov  6 11:30:00 2026\n"
        . "Subject: two\n\nends with blank lines\n\n\n\n"
        . "From MAILER-DAEMON Sat Nov 21 12:00:00 2026\n"
        . "Subject: three\n\n$long\n$big\n";
    $t->write_file('in.mbox', $mbox);
    ($rc, $out) = ctl(undef, qw(mailbox create carol@example.org Archive));
    ($rc, $out) = ctl(undef, qw(import mbox carol@example.org), "$dir/in.mbox",
                      '--mailbox=Archive');
    like($out, qr/imported 3 messages into Archive/, 'import mbox') or diag($out);
    ($rc, $out) = ctl(undef, qw(export mbox carol@example.org), "$dir/out");
    is($rc, 0, 'export mbox') or diag($out);
    my $back = $t->read_file('out/Archive.mbox') // '';
    ok($back eq $mbox, 'the exported mbox is byte for byte the imported one')
        or diag(length($back) . ' bytes back, ' . length($mbox) . ' in');
    ok(-f "$dir/out/INBOX.mbox", 'every mailbox is exported, INBOX too');
    ($rc, $out) = ctl(undef, qw(stats));
    like($out, qr/^messages: 3$/m, 'stats counts the imported messages');
    $t->write_file('bad.mbox', "Subject: no From line\n\nbody\n");
    ($rc, $out) = ctl(undef, qw(import mbox carol@example.org), "$dir/bad.mbox");
    like($out, qr/bad\.mbox:1: not an mbox file/, 'a file that is not mbox: FILE:LINE');
    ($rc, $out) = ctl(undef, qw(import mbox carol@example.org), "$dir/in.mbox",
                      '--mailbox=Nowhere');
    is($rc, 1, 'import into a mailbox that does not exist is refused');

    # quotas: the user's own, else the domain's default, else the main one
    $t->write_file('facteur.conf', "pid facteur.pid;\nauth_directory var/auth;\n"
                   . "storage lmdb { path var/mail; }\nquota_bytes 10m;\n"
                   . "domain example.org { quota_messages 1000; }\n");
    ($rc, $out) = ctl(undef, qw(user quota carol@example.org));
    like($out, qr/^limits: 10485760 bytes, 1000 messages/m,
         'user quota: the main bytes and the domain messages default') or diag($out);
    ($rc, $out) = ctl(undef, qw(user quota carol@example.org 5m 50));
    is($rc, 0, 'user quota ADDRESS SIZE MESSAGES') or diag($out);
    ($rc, $out) = ctl(undef, qw(user quota carol@example.org));
    like($out, qr/^own: 5242880 bytes, 50 messages/m, 'the user\'s own quota is kept');
    like($out, qr/the store enforces 5242880 bytes, 50 messages$/m, 'and the store enforces it')
        or diag($out);
    ($rc, $out) = ctl("another password\n", qw(user passwd carol@example.org --password-stdin));
    ($rc, $out) = ctl(undef, qw(user quota carol@example.org));
    like($out, qr/^own: 5242880 bytes, 50 messages/m, 'a new password keeps the quota');
    ($rc, $out) = ctl(undef, qw(user quota carol@example.org 0));
    ($rc, $out) = ctl(undef, qw(user quota carol@example.org));
    like($out, qr/the store enforces 10485760 bytes, 1000 messages$/m, '0: back to the defaults');
    ($rc, $out) = ctl("pw\n", qw(user add erin@example.org --password-stdin));
    ($rc, $out) = ctl(undef, qw(user quota erin@example.org));
    like($out, qr/the store enforces 10485760 bytes, 1000 messages$/m,
         'a new user gets the defaults in the store') or diag($out);
    ($rc, $out) = ctl(undef, qw(user quota carol@example.org lots));
    is($rc, 1, 'a quota that is not a size is refused');
}

done_testing;

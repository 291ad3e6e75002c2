#!/usr/bin/perl

# facteurctl import maildir / export maildir (Maildir++ as Dovecot and mutt
# lay it out) and exports of a whole domain: a Maildir with folders, flags,
# keywords, a large message and odd folder names goes in, comes back out
# with the same messages, flags, keywords and dates.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(make_path);
use Facteur::Test;

my $t = Facteur::Test->new;
my $ctl = $t->binary;
$ctl =~ s/facteur$/facteurctl/;
plan skip_all => 'facteurctl not built' unless -x $ctl;

my $dir = $t->testdir;
$t->write_file('facteur.conf', "pid facteur.pid;\nauth_directory var/auth;\n"
               . "storage lmdb { path var/mail; }\n");
mkdir "$dir/var";
my ($trc) = $t->run_config_test;
plan skip_all => 'the LMDB store is not built' if $trc != 0;

sub ctl {
    my (@args) = @_;
    my $cmd = join ' ', map { "'$_'" } $ctl, '-p', "$dir/", '-c', "$dir/facteur.conf", @args;
    my $out = `$cmd < /dev/null 2>&1`;
    return ($? >> 8, $out);
}

sub put {
    my ($path, $body, $mtime) = @_;
    (my $parent = $path) =~ s{/[^/]+$}{};
    make_path($parent);
    open my $fh, '>:raw', $path or die "$path: $!";
    print $fh $body;
    close $fh;
    utime $mtime, $mtime, $path;
}

# folder => { content => "flags|mtime" } for every message file of a Maildir
sub snapshot {
    my ($md) = @_;
    my %s;
    opendir my $dh, $md or return {};
    my @folders = ('', grep { /^\.[^.]/ && -d "$md/$_/cur" } readdir $dh);
    for my $f (@folders) {
        for my $sub (qw(new cur)) {
            my $d = $f eq '' ? "$md/$sub" : "$md/$f/$sub";
            opendir my $sh, $d or next;
            for my $name (grep { !/^\./ } readdir $sh) {
                my $path = "$d/$name";
                my $body = do { local (@ARGV, $/) = ($path); <> };
                my ($flags) = $name =~ /:2,([A-Za-z]*)$/;
                my $kw = keywords($f eq '' ? $md : "$md/$f", $flags // '');
                my $upper = join '', sort grep { /[A-Z]/ } split //, $flags // '';
                $s{$f eq '' ? 'INBOX' : $f}{$body} = "$upper $kw " . (stat $path)[9];
            }
        }
    }
    return \%s;
}

# the names of a file's keyword letters, sorted, from the folder's dovecot-keywords
sub keywords {
    my ($folder, $flags) = @_;
    my %names;
    if (open my $fh, '<', "$folder/dovecot-keywords") {
        while (<$fh>) { $names{chr(97 + $1)} = $2 if /^(\d+) (.+)$/ }
    }
    return join ',', sort map { $names{$_} // "?$_" } grep { /[a-z]/ } split //, $flags;
}

my ($rc, $out);
($rc, $out) = ctl(qw(domain add example.org));
for my $u (qw(alice bob)) {
    my $cmd = "echo pw | '$ctl' -p '$dir/' -c '$dir/facteur.conf' user add $u\@example.org "
        . "--password-stdin 2>&1";
    $out = `$cmd`;
    is($? >> 8, 0, "user $u") or diag($out);
}

# ---- a Maildir as Dovecot leaves it --------------------------------------

my $md = "$dir/Maildir";
my $big = join '', map { "line $_ of a large attachment\n" } 1 .. 40_000;
put("$md/cur/1700000000.M1P1.host,S=30:2,S", "Subject: seen\n\nhello\n", 1700000000);
put("$md/new/1700000100.M2P1.host", "Subject: new\n\nnot yet read\n", 1700000100);
put("$md/cur/1700000200.M3P1.host:2,FRT", "Subject: flagged\n\nlong "
    . ('x' x 100_000) . "\n", 1700000200);
put("$md/cur/1700000300.M4P1.host:2,", "Subject: big\n\n$big", 1700000300);
put("$md/.Work.2024\\2eq1/cur/1700000400.M5P1.host:2,Sab",
    "Subject: keywords\n\nkw\n", 1700000400);
put("$md/.Work.2024\\2eq1/dovecot-keywords", "0 \$Junk\n1 todo\n", 1700000400);
put("$md/.Work/cur/1700000500.M6P1.host:2,D", "Subject: draft\n\ndraft\n", 1700000500);
put("$md/.&AOk-t&AOk-/cur/1700000600.M7P1.host:2,S", "Subject: utf\n\n\xc3\xa9t\xc3\xa9\n",
    1700000600);
make_path("$md/tmp", "$md/.Work/new", "$md/.Work/tmp");
put("$md/subscriptions", "Work\n", 1700000000);           # a file, not a folder

($rc, $out) = ctl(qw(import maildir alice@example.org), $md);
is($rc, 0, 'import maildir') or diag($out);
like($out, qr/imported 7 messages into 4 mailboxes of alice\@example.org/,
     'it says how many messages and mailboxes') or diag($out);
($rc, $out) = ctl(qw(mailbox list alice@example.org));
is($out, "INBOX subscribed\nWork\nWork/2024.q1\n\xc3\xa9t\xc3\xa9\n",
   'the folders became mailboxes, names decoded') or diag($out);

($rc, $out) = ctl(qw(export maildir alice@example.org), "$dir/out");
is($rc, 0, 'export maildir') or diag($out);
my ($in, $back) = (snapshot($md), snapshot("$dir/out"));
is_deeply($back, $in, 'the export has the same messages, flags, keywords and dates')
    or diag(explain({ in => $in, back => $back }));
my @files = glob("$dir/out/cur/*");
ok(@files == 4 && !grep({ !/,S=\d+,W=\d+:2,[A-Z]*$/ } @files),
   'exported names carry S= and W= sizes and the flags') or diag("@files");
my ($bigfile) = grep { -s $_ > 1_000_000 } @files;
my ($s, $w) = ($bigfile // '') =~ /,S=(\d+),W=(\d+)/;
ok(defined $s && $s == -s $bigfile && $w == $s + 40_002,
   'S= is the file size, W= the size with CRLF line ends');

# the store kept CRLF: stats counts the message sizes with CRLF
($rc, $out) = ctl(qw(stats));
like($out, qr/^messages: 7$/m, 'stats counts the imported messages') or diag($out);

# the whole tree under another mailbox
($rc, $out) = ctl(qw(import maildir alice@example.org), $md, '--mailbox=Old');
is($rc, 0, 'import maildir --mailbox') or diag($out);
($rc, $out) = ctl(qw(mailbox list alice@example.org));
like($out, qr{^Old\nOld/Work\nOld/Work/2024\.q1\nOld/\xc3\xa9t\xc3\xa9$}m,
     'the tree goes under the mailbox given') or diag($out);

# ---- a whole domain -------------------------------------------------------

put("$dir/bob.mbox", "From MAILER-DAEMON Thu Nov 19 10:00:00 2026\nSubject: bob\n\nhi\n", 0);
($rc, $out) = ctl(qw(import mbox bob@example.org), "$dir/bob.mbox");
is($rc, 0, 'bob has a message') or diag($out);
($rc, $out) = ctl(qw(export maildir example.org), "$dir/domain");
is($rc, 0, 'export maildir of a domain') or diag($out);
like($out, qr/exported 8 mailboxes of alice.*exported 1 mailboxes of bob/s,
     'every user of the domain') or diag($out);
is(scalar(() = glob("$dir/domain/bob/cur/*")), 1, "bob's Maildir is DIR/bob");
is_deeply(snapshot("$dir/domain/alice")->{INBOX}, $in->{INBOX}, "alice's is DIR/alice");
($rc, $out) = ctl(qw(export mbox @example.org), "$dir/mboxes");
is($rc, 0, 'export mbox of a domain (@domain)') or diag($out);
ok(-f "$dir/mboxes/bob/INBOX.mbox" && -f "$dir/mboxes/alice/Work/2024.q1.mbox",
   'one directory of mbox files per user');

# ---- refusals -------------------------------------------------------------

($rc, $out) = ctl(qw(import maildir alice@example.org), "$dir/nowhere");
is($rc, 1, 'a directory that is not a Maildir is refused');
like($out, qr/is not a Maildir \(no cur\/ in it\)/, 'and says why');
($rc, $out) = ctl(qw(import maildir nobody@example.org), $md);
is($rc, 1, 'an unknown user is refused');
($rc, $out) = ctl(qw(export maildir elsewhere.net), "$dir/x");
is($rc, 1, 'a domain that is not local is refused');
like($out, qr/domain "elsewhere.net": not found/, 'and says so') or diag($out);
put("$md/.bad..name/cur/1.x", "Subject: x\n\nx\n", 0);
($rc, $out) = ctl(qw(import maildir bob@example.org), $md);
is($rc, 0, 'a folder whose name is not Maildir++ does not stop the import') or diag($out);
like($out, qr/skipped ".*\.bad\.\.name": not a Maildir\+\+ folder name/, 'it is named');

done_testing;

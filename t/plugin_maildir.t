#!/usr/bin/perl

# A storage backend built the way a vendor builds one: facteur installed to
# a temporary prefix (headers, facteur-config, facteur.pc), then
# plugins/storage_maildir built out of tree with nothing but facteur-config,
# loaded with load_module and selected with "storage maildir { ... }".
# When the storage contract suite is built, it runs against the plugin too.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Facteur::Test;

my $t = Facteur::Test->new;
my $root = $t->root;
my $objs = $Facteur::Test::OBJS;
plan skip_all => "no $objs/Makefile (configure first)" unless -f "$objs/Makefile";
plan skip_all => 'no make' unless system('make --version >/dev/null 2>&1') == 0;
$t->expect_log(qr/\[emerg\].*(needs a "path"|unknown storage backend)/);

my $tmp = tempdir('facteur-plugin-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{FACTEUR_TEST_KEEP});
my $prefix = "$tmp/prefix";

# run a shell command, output to a log; returns (ok, log text)
sub sh {
    my ($name, $cmd) = @_;
    my $ok = system("($cmd) > '$tmp/$name.log' 2>&1") == 0;
    return ($ok, $t->read_file("$tmp/$name.log"));
}

# ---- installation ----------------------------------------------------------

my ($ok, $log) = sh('install', "make -f '$objs/Makefile' install PREFIX='$prefix'");
ok($ok, 'make install PREFIX=TMP') or diag($log);
unless ($ok) {
    $t->done_testing;          # nothing below can work without it
    exit;
}

my $config = "$prefix/bin/facteur-config";
ok(-x $config, 'bin/facteur-config is installed');
ok(-f "$prefix/include/facteur/$_", "include/facteur/$_")
    for qw(fa_core.h fa_module.h fa_auto_config.h fa_storage.h);
ok(-f "$prefix/lib/pkgconfig/facteur.pc", 'lib/pkgconfig/facteur.pc');

chomp(my $cflags = `'$config' --cflags`);
like($cflags, qr{-I\Q$prefix\E/include/facteur\b}, '--cflags names the installed headers');
chomp(my $pfx = `'$config' --prefix`);
is($pfx, $prefix, '--prefix is where make install put it');
chomp(my $moddir = `'$config' --modules-dir`);
is($moddir, "$prefix/modules", '--modules-dir');
chomp(my $sig = `'$config' --signature`);
my $v = `'$prefix/sbin/facteur' -v 2>&1`;
like($v, qr/module signature: \Q$sig\E$/m, '--signature is the server\'s');
isnt(system("'$config' --no-such-option >/dev/null 2>&1"), 0, 'an unknown option fails');

# the installed server, so modules are checked against what they built with
$Facteur::Test::BINARY = "$prefix/sbin/facteur";
my $HEAD = "pid facteur.pid;\nerror_log error.log info;\nworker_processes 1;\n";

# ---- a vendor's minimal module: one cc command, nothing else ---------------

$t->write_file('vendor.c', <<'EOF');
#include "fa_core.h"
static fa_module_t  vendor_module = {
    FA_MODULE_V1, "vendor_hello", FA_MODULE_OTHER, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};
fa_module_t *fa_module = &vendor_module;
EOF
my $dir = $t->testdir;
($ok, $log) = sh('vendor', "cc \$('$config' --cflags) -fPIC -shared -o '$dir/vendor.so' "
    . "'$dir/vendor.c'");
ok($ok, 'cc $(facteur-config --cflags) -fPIC -shared builds a module') or diag($log);
$t->write_file('facteur.conf', $HEAD . "load_module vendor.so;\n");
my ($rc, $out) = $t->run_config_test;
is($rc, 0, 'and facteur loads it') or diag($out);

# ---- the Maildir plugin, out of tree ----------------------------------------

my $build = "$tmp/maildir";
($ok, $log) = sh('plugin', "make -C '$root/plugins/storage_maildir' "
    . "FACTEUR_CONFIG='$config' BUILDDIR='$build'");
ok($ok, 'make -C plugins/storage_maildir FACTEUR_CONFIG=...') or diag($log);
my $so = "$build/fa_storage_maildir_module.so";
ok(-f $so, 'it built fa_storage_maildir_module.so');

($ok, $log) = sh('noconfig', "make -C '$root/plugins/storage_maildir' "
    . "FACTEUR_CONFIG=/nonexistent/facteur-config BUILDDIR='$tmp/none'");
ok(!$ok, 'without facteur-config the build stops');
like($log, qr/facteur-config.*failed/, 'and says why');

$t->write_file('facteur.conf', $HEAD . "load_module $so;\nstorage maildir {\n"
    . "    path maildir;\n    lock_timeout 5s;\n}\n");
($rc, $out) = $t->run_config_test;
is($rc, 0, 'facteur -t accepts storage maildir { path ...; }') or diag($out);

$t->write_file('facteur.conf', $HEAD . "load_module $so;\nstorage maildir {\n}\n");
($rc, $out) = $t->run_config_test;
isnt($rc, 0, 'a maildir store without a path is refused');
like($out, qr/facteur\.conf:5: "storage maildir" needs a "path" directive/,
     'at its block, saying what is missing');

$t->write_file('facteur.conf', $HEAD . "storage maildir {\n}\n");
($rc, $out) = $t->run_config_test;
like($out, qr/unknown storage backend "maildir".*load_module/,
     'without load_module, maildir is an unknown backend');

# a worker opens the store: the Maildir root appears under the prefix
$t->write_file('facteur.conf', $HEAD . "load_module $so;\nstorage maildir { path maildir; }\n");
$t->run;
ok($t->wait_for(sub { -d "$dir/maildir" }, 10), 'a worker opened the store');
$t->stop;

# the plugin has no check operation (NULL): facteurctl says so
my $ctl = "$prefix/sbin/facteurctl";
my $text = `'$ctl' -p '$dir/' -c '$dir/facteur.conf' check 2>&1`;
is($? >> 8, 1, 'facteurctl check of a maildir store: exit 1');
like($text, qr/^store maildir: the maildir backend cannot be checked$/m, 'it cannot be checked');

# ---- a domain's mail in the plugin's store, the others' in the default ------

SKIP: {
    skip 'no smtp, imap or lmdb module', 8
        unless $t->has_feature('smtp') && $t->has_feature('imap') && $t->has_feature('lmdb');
    $t->write_file_expand('facteur.conf', $HEAD . <<"EOF");
load_module $so;
auth_directory var/auth;
storage lmdb { path var/mail; }             # the default store
storage maildir { path maildir; }
domain b.test { storage maildir; }          # b.test keeps its mail in Maildirs
smtp { server { listen 127.0.0.1:%%PORT_1%%; } }
imap { auth_plaintext on; server { listen 127.0.0.1:%%PORT_2%%; } }
EOF
    mkdir "$dir/var";
    system("rm -rf '$dir/maildir'");
    for my $u (['alice@a.test', 'alice pw'], ['bob@b.test', 'bob pw']) {
        my ($domain) = $u->[0] =~ /@(.+)/;
        `'$ctl' -p '$dir/' -c '$dir/facteur.conf' domain add $domain 2>&1`;
        my $o = `echo '$u->[1]' | '$ctl' -p '$dir/' -c '$dir/facteur.conf' user add $u->[0] --password-stdin 2>&1`;
        is($? >> 8, 0, "user add $u->[0]") or diag($o);
    }
    $t->run;
    my $p1 = $t->port(1);
    my $p2 = $t->port(2);
    $t->write_file('both.py', <<"EOF");
import smtplib, imaplib
s = smtplib.SMTP('127.0.0.1', $p1, timeout=10); s.ehlo('client.test')
print('SMTP', s.sendmail('x\@far.test', ['alice\@a.test', 'bob\@b.test'],
      'Subject: to both\\r\\n\\r\\none message, two stores\\r\\n'))
s.quit()
for user, pw in (('bob\@b.test', 'bob pw'), ('alice\@a.test', 'alice pw')):
    i = imaplib.IMAP4('127.0.0.1', $p2); i.login(user, pw)
    typ, data = i.select('INBOX')
    typ, body = i.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    print('IMAP', user, data[0].decode(), body[0][1].decode().strip())
    i.logout()
EOF
    my $res = `timeout 30 python3 '$dir/both.py' 2>&1`;
    like($res, qr/^SMTP \{\}$/m, 'one transaction for a user of each store is accepted')
        or diag($res);
    my @files = grep { m{/(new|cur)/[^/]+$} } split /\n/, `find '$dir/maildir' -type f 2>/dev/null`;
    is(scalar(@files), 1, 'b.test\'s copy is a file in the Maildir store') or diag("@files");
    like($t->read_file($files[0] // '/nonexistent'), qr/^Subject: to both\r?$/m,
         'holding the message');
    like($res, qr/^IMAP bob\@b\.test 1 Subject: to both$/m,
         'bob reads it over IMAP, from the Maildir store') or diag($res);
    like($res, qr/^IMAP alice\@a\.test 1 Subject: to both$/m,
         'alice reads hers from the LMDB store');
    $t->stop;
    my $export = `'$ctl' -p '$dir/' -c '$dir/facteur.conf' export mbox bob\@b.test '$dir/bob-export' 2>&1`;
    like($t->read_file("$dir/bob-export/INBOX.mbox"), qr/^Subject: to both$/m,
         'facteurctl export finds bob\'s mail in his domain\'s store') or diag($export);
}

# ---- the storage contract suite, against the plugin -------------------------

SKIP: {
    my $suite = "$objs/unit/test_storage_contract";
    skip "no $suite (make unit builds it)", 2 unless -x $suite;
    local $ENV{FACTEUR_STORAGE_CONF_SNIPPET} =
        "load_module $so;\nstorage maildir { path %%DIR%%/maildir; }\n";
    my ($status, $text) = run_with_timeout($suite, 50);
    ok(defined $status && $status == 0, 'the storage contract suite passes against the plugin')
        or diag(defined $status ? "exit $status\n$text" : "killed after 50 s\n$text");
    unlike($text, qr/^not ok/m, 'no failed contract test');
}

$t->done_testing;

# a program's exit status and output; undef status when it had to be killed
sub run_with_timeout {
    my ($prog, $secs) = @_;
    my $file = "$tmp/suite.out";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', $file;
        open STDERR, '>&', \*STDOUT;
        exec $prog or POSIX::_exit(127);
    }
    my $end = time + $secs * ($ENV{FACTEUR_TEST_TIMEOUT_SCALE} || 1);
    while (time < $end) {
        if (waitpid($pid, WNOHANG) == $pid) {
            return ($? >> 8, $t->read_file($file));
        }
        sleep 0.1;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return (undef, $t->read_file($file));
}

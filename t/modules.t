#!/usr/bin/perl

# Dynamic modules: load_module of a good .so works and its directives and
# listeners come alive; a module with another ABI signature is refused with
# "is not binary compatible"; a missing or broken file is an error at
# FILE:LINE; and ./configure --add-dynamic-module builds a module out of tree.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;
use File::Temp qw(tempdir);

my $t = Facteur::Test->new->has(qw/echo badabi/);
$t->expect_log(qr/\[emerg\].*:\d+: /);    # the refused configurations below

my $HEAD = <<'EOF';
pid facteur.pid;
error_log error.log info;
worker_processes 1;
EOF

my ($rc, $out);

# a module's directives are unknown until it is loaded
$t->write_file_expand('facteur.conf', $HEAD . <<'EOF');
echo {    # line 4
    server { listen 127.0.0.1:%%PORT_1%%; }
}
EOF
($rc, $out) = $t->run_config_test;
isnt($rc, 0, 'without load_module the echo block is refused');
like($out, qr{facteur\.conf:4: unknown directive "echo"}, 'as an unknown directive');

# a good module
$t->write_file_expand('facteur.conf', $HEAD . <<'EOF');
load_module %%MODULES%%/fa_test_echo_module.so;
echo {
    server { listen 127.0.0.1:%%PORT_1%%; echo_greeting "loaded"; }
}
EOF
($rc, $out) = $t->run_config_test;
is($rc, 0, 'load_module of the echo module: facteur -t passes') or diag($out);

$t->run;
my $c = $t->connect(port => 1);
$c->check(qr/^\+OK loaded \d+$/, 'the loaded module serves its protocol');
$c->chat('QUIT', qr/^\+OK bye$/, 'and its commands');
$t->stop;

# a relative path resolves against the prefix
my $rel = $t->testdir . '/mods';
mkdir $rel;
symlink($t->modules_dir . '/fa_test_echo_module.so', "$rel/echo.so") or die "symlink: $!";
$t->write_file_expand('facteur.conf', $HEAD . <<'EOF');
load_module mods/echo.so;
echo { server { listen 127.0.0.1:%%PORT_1%%; } }
EOF
($rc, $out) = $t->run_config_test;
is($rc, 0, 'load_module with a path relative to the prefix') or diag($out);

# loading the same module twice
$t->write_file_expand('facteur.conf', $HEAD . <<'EOF');
load_module %%MODULES%%/fa_test_echo_module.so;
load_module %%MODULES%%/fa_test_echo_module.so;
EOF
($rc, $out) = $t->run_config_test;
isnt($rc, 0, 'the same module twice is refused');
like($out, qr{facteur\.conf:5: }, 'at the second load_module') or diag($out);

# a module built against another ABI
$t->write_file_expand('facteur.conf', $HEAD . <<'EOF');
load_module %%MODULES%%/fa_test_badabi_module.so;
EOF
($rc, $out) = $t->run_config_test;
isnt($rc, 0, 'a module with another ABI signature is refused');
like($out, qr{facteur\.conf:4: .*is not binary compatible}, 'is not binary compatible, '
     . 'at FILE:LINE');
like($out, qr/facteur-abi-0:mismatch/, 'the message shows the module\'s signature');
($rc, $out) = $t->run_expect_exit;
ok(defined $rc && $rc != 0, 'and facteur does not start with it');
ok(!-e $t->pid_file, 'no pid file');

# a file that is not there
$t->write_file_expand('facteur.conf', $HEAD . <<'EOF');
# a comment
load_module %%MODULES%%/fa_no_such_module.so;
EOF
($rc, $out) = $t->run_config_test;
isnt($rc, 0, 'load_module of a missing file fails');
like($out, qr{facteur\.conf:5: .*fa_no_such_module\.so}, 'at FILE:LINE, naming the file');

# a file that is not a shared object
$t->write_file('notelf.so', "this is not a shared object\n");
$t->write_file_expand('facteur.conf', $HEAD . <<'EOF');
load_module notelf.so;
EOF
($rc, $out) = $t->run_config_test;
isnt($rc, 0, 'load_module of a file that is not a shared object fails');
like($out, qr{facteur\.conf:4: .*notelf\.so}, 'at FILE:LINE, naming the file');

# a shared object that is not a facteur module
my $libc = (grep { -f } '/lib/x86_64-linux-gnu/libm.so.6', '/usr/lib/x86_64-linux-gnu/libm.so.6',
            '/lib64/libm.so.6', '/usr/lib64/libm.so.6')[0];
SKIP: {
    skip 'no libm.so.6 found', 2 unless $libc;
    $t->write_file_expand('facteur.conf', $HEAD . "load_module $libc;\n");
    ($rc, $out) = $t->run_config_test;
    isnt($rc, 0, 'load_module of a library that is not a module fails');
    like($out, qr{facteur\.conf:4: .*fa_module}, 'saying it has no fa_module symbol');
}

# out of tree: ./configure --add-dynamic-module=DIR, then make modules
SKIP: {
    skip 'FACTEUR_TEST_SKIP_CONFIGURE is set', 4 if $ENV{FACTEUR_TEST_SKIP_CONFIGURE};
    my $tmp = tempdir('facteur-configure-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{FACTEUR_TEST_KEEP});
    my $root = $t->root;
    my $cmd = "cd '$root' && ./configure --builddir='$tmp/objs' "
        . "--add-dynamic-module=t/modules/echo > '$tmp/configure.log' 2>&1";
    my $ok = system($cmd) == 0;
    my $log = $t->read_file("$tmp/configure.log");
    skip "this configure does not support it yet: $log", 4
        if !$ok && $log =~ /invalid option|unknown option/;
    ok($ok, './configure --builddir=TMP --add-dynamic-module=t/modules/echo') or diag($log);

    # not the caller's make variables (make test BUILDDIR=... exports them)
    $ok = system("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C '$tmp/objs' modules "
                 . "> '$tmp/make.log' 2>&1") == 0;
    ok($ok, 'make -C TMP/objs modules') or diag($t->read_file("$tmp/make.log"));
    my $so = "$tmp/objs/modules/fa_test_echo_module.so";
    ok(-f $so, 'it built TMP/objs/modules/fa_test_echo_module.so');

    # loadable by our facteur when both builds have the same options
    my ($sig_a) = $t->read_file("$tmp/objs/fa_auto_config.h") =~ /FA_MODULE_SIGNATURE\s+(".*?")/;
    my ($sig_b) = $t->read_file(dirname_objs() . '/fa_auto_config.h')
        =~ /FA_MODULE_SIGNATURE\s+(".*?")/;
    skip 'the two builds have different signatures', 1
        unless $sig_a && $sig_b && $sig_a eq $sig_b;
    $t->write_file_expand('facteur.conf', $HEAD . "load_module $so;\n"
        . "echo { server { listen 127.0.0.1:%%PORT_1%%; } }\n");
    ($rc, $out) = $t->run_config_test;
    is($rc, 0, 'and facteur loads it') or diag($out);
}

sub dirname_objs { $Facteur::Test::OBJS }

$t->done_testing;

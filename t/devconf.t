#!/usr/bin/perl

# The shipped configuration is valid, and the command line does what the
# README says: -v prints the version and module signature, -t accepts
# conf/facteur.conf, daemon mode detaches and -s stop ends it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

my $t = Facteur::Test->new->has(qw/metrics/)->plan(9);
my $bin = $t->binary;
my $root = $t->root;

my $v = `$bin -v 2>&1`;
like($v, qr/^facteur version \d+\.\d+\.\d+$/m, '-v prints the version');
like($v, qr/^module signature: facteur-abi-\d+:/m, '-v prints the module signature');

my $out = `$bin -t -p $root/ -c $root/conf/facteur.conf 2>&1`;
is($? >> 8, 0, 'conf/facteur.conf passes facteur -t') or diag($out);
like($out, qr/test is successful/, '-t says so');

my $bad = `$bin -x 2>&1`;
isnt($? >> 8, 0, 'an unknown option is refused');

# daemon on: the command returns at once, the master keeps running
$t->write_file_expand('facteur.conf', <<'EOF');
daemon on;
pid facteur.pid;
error_log error.log info;
worker_processes 1;
metrics { listen 127.0.0.1:%%PORT_1%%; }
EOF
my $dir = $t->testdir;
system("$bin -p $dir/ -c $dir/facteur.conf");
is($? >> 8, 0, 'daemon on: facteur returns 0 to its caller');
ok($t->wait_for(sub { -s "$dir/facteur.pid" && $t->port_listening($t->port(1)) }, 10),
   'the detached master writes its pid and listens');
my ($rc, $msg) = $t->ctl('stop');
is($rc, 0, '-s stop signals the detached master') or diag($msg);
ok($t->wait_for(sub { !-e "$dir/facteur.pid" }, 10), 'it stops and removes its pid file');
$t->stop_and_check;

#!/usr/bin/perl

# Crash safety of the store: a writer (test_storage_crash crash-writer)
# appends from 8 sessions and prints each UID once its commit completed;
# it is killed with SIGKILL at random moments, over and over; after each
# kill the store must open and every UID ever printed must read back with
# exactly its bytes (test_storage_crash crash-check).  Finally the server
# itself starts its workers on the crashed store, cleanly.
#
# FACTEUR_STORAGE_CONF_SNIPPET selects another backend, as for the unit tests.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Facteur::Test;

my $t = Facteur::Test->new;
my $prog = "$Facteur::Test::OBJS/unit/test_storage_crash";
plan skip_all => "no $prog (make unit builds it)" unless -x $prog;

my $dir = $t->testdir;
my $snippet = $ENV{FACTEUR_STORAGE_CONF_SNIPPET}
    // "storage lmdb { path %%DIR%%/mail; map_size 1m; inline_max 64k; }\n";
$snippet =~ s/%%DIR%%/$dir/g;
$t->write_file('facteur.conf', <<"EOF" . $snippet);
pid facteur.pid;
error_log error.log info;
worker_processes 2;
EOF

my $uids = "$dir/uids";
my $rounds = 8;
srand(42);

for my $round (1 .. $rounds) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $uids or POSIX::_exit(126);
        open STDERR, '>>', "$dir/writer.log";
        exec $prog, 'crash-writer', $dir, $round or POSIX::_exit(127);
    }
    sleep(0.1 + rand(0.9) * $Facteur::Test::SCALE);
    kill 'KILL', $pid;
    waitpid($pid, 0);

    my $out = `$prog crash-check $dir $uids 2>>$dir/check.log`;
    my $status = $? >> 8;
    is($status, 0, "round $round: killed, reopened, committed messages intact")
        or diag($out);
    note($out);
}

my $count = () = $t->read_file('uids') =~ /\n/g;
ok($count > 0, "$count committed messages survived $rounds kills");

# the server's workers open the same store (stale readers, orphan files)
$t->run;
ok($t->wait_for(sub { scalar($t->workers) == 2 }, 10), 'the workers start on it');
sleep(0.3);
$t->stop_and_check;
unlike($t->read_file('error.log'), qr/storage "[^"]*" failed to open/,
       'the store opened in every worker');

done_testing;

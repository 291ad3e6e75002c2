#!/usr/bin/perl

# Workers run as the configured user (the master keeps root to bind ports and
# write the pid file), and worker_shutdown_timeout bounds how long an old
# worker may keep its sessions after a reload.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

plan skip_all => 'needs root to switch users' if $> != 0;
plan skip_all => 'no user "nobody"' unless defined getpwnam('nobody');

my $t = Facteur::Test->new->has(qw/echo/);
$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
user nobody;
worker_shutdown_timeout 1s;
load_module %%MODULES%%/fa_test_echo_module.so;
echo {
    server {
        listen 127.0.0.1:%%PORT_1%%;
    }
}
EOF
chmod 0755, $t->testdir;
$t->run;

sub uid_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) { return $1 if /^Uid:\s+(\d+)/ }
    return undef;
}

# the worker switches users right after fork: poll, do not race it
my $worker;
my $nobody = getpwnam('nobody');
ok($t->wait_for(sub { ($worker) = $t->workers; $worker && (uid_of($worker) // -1) == $nobody },
                10), 'the worker runs as "nobody"');
is(uid_of($t->master_pid), 0, 'the master stays root');

my $held = $t->connect(port => 1);
$held->check(qr/^\+OK echo ready/, 'a session served by the unprivileged worker');

# reload: the old worker keeps the session until worker_shutdown_timeout
my ($rc, $out) = $t->reload;
is($rc, 0, 'reload') or diag($out);
ok($t->wait_for(sub { grep { $_ != $worker } $t->workers }, 10), 'a new worker starts');
$held->chat('still', qr/^\+OK echo still$/, 'the held session still answers at first');
ok($held->wait_eof(10), 'worker_shutdown_timeout closes it in the end');
ok($t->wait_for(sub { !$t->pid_alive($worker) }, 10), 'and the old worker exits');
like($t->read_file('error.log'), qr/worker_shutdown_timeout expired, closing 1 sessions/,
     'the log says why');
$t->done_testing;

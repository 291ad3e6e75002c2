#!/usr/bin/perl

# Processes: worker_processes N starts N workers; a worker killed by a
# signal is respawned by the master and clients are served again; -s stop
# (TERM) stops the master and every worker.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

my $t = Facteur::Test->new->has(qw/echo/);
$t->expect_log(qr/exited on signal 9\b/);    # the worker we kill on purpose

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 2;
load_module %%MODULES%%/fa_test_echo_module.so;
echo {
    server {
        listen 127.0.0.1:%%PORT_1%%;
    }
}
EOF
$t->run;

my @workers;
ok($t->wait_for(sub { (@workers = $t->workers) == 2 }, 10), 'worker_processes 2: two workers')
    or diag('workers: ' . join(' ', $t->workers));

# both serve: greetings carry the worker's pid; keep connecting until both
# have answered (the kernel spreads connections, but not predictably)
my %seen;
$t->wait_for(sub {
    my $c = $t->connect(port => 1) or return 0;
    my $l = $c->line(5) // '';
    $seen{$1}++ if $l =~ /^\+OK echo ready (\d+)$/;
    return keys %seen >= 1 && (keys %seen == 2 || (sum(values %seen) >= 50));
}, 10);
ok(keys %seen >= 1, 'clients are served');
ok(!grep({ my $p = $_; !grep { $_ == $p } @workers } keys %seen),
   'every greeting comes from a worker of the master');

# kill a worker: the master starts another
my $victim = $workers[0];
ok(kill('KILL', $victim), "SIGKILL to worker $victim");
ok($t->wait_for(sub { !$t->pid_alive($victim) }, 10), 'the worker is gone');
my @after;
ok($t->wait_for(sub { (@after = $t->workers) == 2 && !grep { $_ == $victim } @after }, 10),
   'the master respawned a worker') or diag('workers now: ' . join(' ', $t->workers));
ok((grep { $_ == $workers[1] } @after), 'the other worker was left alone');
ok($t->is_running, 'the master is still running');
ok($t->wait_for(sub { $t->read_file('error.log') =~ /\b$victim\b.*signal 9/ }, 5),
   'the master logged the worker\'s death') or diag($t->read_file('error.log'));

my $c = $t->connect(port => 1);
$c->check(qr/^\+OK echo ready \d+$/, 'clients are served after the respawn');
$c->chat('hi', qr/^\+OK echo hi$/, 'and answered');

# a held session while stopping fast: it is cut, the master still exits
my ($rc, $out) = $t->ctl('stop');
is($rc, 0, 'facteur -s stop') or diag($out);
ok($t->wait_exit(10), 'the master exits');
is($t->exit_status, 0, 'with status 0');
ok($t->wait_for(sub { !grep { $t->pid_alive($_) } @after }, 10), 'every worker is gone');
ok($c->wait_eof(5), 'the held session is closed');
ok(!-e $t->pid_file, 'the pid file is removed');
ok(!$t->port_listening($t->port(1)), 'the port is closed');

sub sum { my $s = 0; $s += $_ for @_; $s }

$t->done_testing;

#!/usr/bin/perl

# Reload (HUP): sessions in progress survive it, new connections get the new
# configuration, a broken configuration is refused with FILE:LINE in the log
# and the running one stays; USR1 reopens the error log; QUIT stops
# gracefully and removes the pid file.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

my $t = Facteur::Test->new->has(qw/echo/);
$t->expect_log(qr/\[emerg\].*facteur\.conf:\d+: /);    # the broken reload, on purpose

# with the metrics module, the reload counters are checked too
my $metrics = $t->has_feature('metrics');
my $metrics_conf = $metrics ? "metrics { listen 127.0.0.1:%%PORT_2%%; }\n" : '';

sub conf {
    my ($greeting, $extra) = @_;
    $t->write_file_expand('facteur.conf', $metrics_conf . <<"EOF" . ($extra // ''));
pid facteur.pid;
error_log error.log info;
worker_processes 2;
load_module %%MODULES%%/fa_test_echo_module.so;
echo {
    server {
        listen 127.0.0.1:%%PORT_1%%;
        echo_greeting "$greeting";
    }
}
EOF
}

sub greeting_of {
    my $c = $t->connect(port => 1) or return ('', undef);
    my $l = $c->line(5) // '';
    $c->close;
    return ($l =~ /^\+OK (\S+) (\d+)$/) ? ($1, $2) : ($l, undef);
}

sub sum32 { unpack('%32C*', $_[0]) }

# a metric's value, or -1 when there is no metrics module or no answer
sub metric {
    my ($name) = @_;
    return -1 unless $metrics;
    my ($status, $h, $body) = Facteur::Test::parse_http($t->http_get('/metrics', port => 2));
    return Facteur::Test::metric($body, $name) // -1;
}

conf('first');
$t->run;
ok($t->wait_for(sub { $t->workers == 2 }, 10), 'two workers');
my %gen1 = map { $_ => 1 } $t->workers;

# sessions held across the reload: some in the middle of a literal (busy),
# some waiting for a command (idle)
my (@busy, @idle);
for my $i (1 .. 4) {
    my $c = $t->connect(port => 1);
    $c->check(qr/^\+OK first \d+$/, "busy session $i greeted");
    $c->send("LITERAL 10\r\n12345");
    push @busy, $c;
}
for my $i (1 .. 4) {
    my $c = $t->connect(port => 1);
    $c->check(qr/^\+OK first \d+$/, "idle session $i greeted");
    push @idle, $c;
}

my $reloads = metric('facteur_config_reloads_total');
my $accepted = metric('facteur_connections_accepted_total');

conf('second');
my ($rc, $out) = $t->reload;
is($rc, 0, 'facteur -s reload') or diag($out);

my ($greet, $pid);
ok($t->wait_for(sub { ($greet, $pid) = greeting_of(); $greet eq 'second' }, 10),
   'new connections get the new greeting') or diag("last greeting: $greet");
ok($pid && !$gen1{$pid}, 'from a worker of the new generation');
SKIP: {
    skip 'no metrics module', 2 unless $metrics;
    is(metric('facteur_config_reloads_total'), $reloads + 1, 'the reload is counted');
    cmp_ok(metric('facteur_connections_accepted_total'), '>', $accepted,
           'counters are kept across the reload');
}

for my $i (0 .. $#busy) {
    my $c = $busy[$i];
    $c->send('67890');
    $c->check(qr/^\+OK got 10 bytes sum=${\ sum32('1234567890')}$/,
              'busy session ' . ($i + 1) . ' finishes its literal after the reload');
    $c->chat('still', qr/^\+OK echo still$/, 'busy session ' . ($i + 1) . ' still answers');
}

# A session waiting for a command is a session in progress too: a reload
# must not cut it, it keeps talking to its old worker.
for my $i (0 .. $#idle) {
    $idle[$i]->chat('still', qr/^\+OK echo still$/,
                    'idle session ' . ($i + 1) . ' still answers after the reload');
}

# once its sessions end, each old worker exits
$_->close for @busy, @idle;
ok($t->wait_for(sub { !grep { $t->pid_alive($_) } keys %gen1 }, 15),
   'old workers exit once their sessions are over');
ok($t->wait_for(sub { $t->workers == 2 }, 10), 'two workers of the new generation');
my %gen2 = map { $_ => 1 } $t->workers;

# a broken configuration: refused, logged with FILE:LINE, the old one stays
my $failures = metric('facteur_config_reload_failures_total');
$reloads = metric('facteur_config_reloads_total');
conf('third', "\nfrobnicate on;\n");
my $bad_line = () = $t->read_file('facteur.conf') =~ /\n/g;
ok($t->signal('HUP'), 'HUP with a broken configuration');
ok($t->wait_for(sub { $t->read_file('error.log') =~ /facteur\.conf:$bad_line: .*frobnicate/ },
                10), 'the error log says why, with FILE:LINE')
    or diag($t->read_file('error.log'));
ok($t->is_running, 'the master is still running');
($greet) = greeting_of();
is($greet, 'second', 'the last good configuration stays in force');
is(join(',', sort $t->workers), join(',', sort keys %gen2), 'the workers were not replaced');
SKIP: {
    skip 'no metrics module', 2 unless $metrics;
    ok($t->wait_for(sub { metric('facteur_config_reload_failures_total') == $failures + 1 }, 5),
       'the failed reload is counted');
    is(metric('facteur_config_reloads_total'), $reloads, 'and not as a reload');
}

# reopen the log after it was moved away (the good config again: -s reads it)
conf('second');
my $log = $t->testdir . '/error.log';
rename $log, "$log.1" or die "rename: $!";
($rc, $out) = $t->ctl('reopen');
is($rc, 0, 'facteur -s reopen') or diag($out);
ok($t->wait_for(sub { -e $log }, 10), 'the error log is created again');
($greet) = greeting_of();
is($greet, 'second', 'still serving after reopen');

# graceful stop
my @last = $t->workers;
($rc, $out) = $t->ctl('quit');
is($rc, 0, 'facteur -s quit') or diag($out);
ok($t->wait_exit(15), 'the master exits');
is($t->exit_status, 0, 'with status 0');
ok(!-e $t->pid_file, 'the pid file is removed');
ok(!grep({ $t->pid_alive($_) } @last), 'no worker is left');
ok(!$t->port_listening($t->port(1)), 'the port is closed');

$t->done_testing;

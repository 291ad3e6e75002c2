#!/usr/bin/perl

# Configuration errors: "facteur -t" accepts a good file; every kind of bad
# file is refused with "FILE:LINE: message" naming the right file and line,
# and starting the server with it starts nothing (no pid file, no socket).
# Includes: globs expand in order, a loop and a missing file are errors.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

my $t = Facteur::Test->new;

# a listener makes "starts nothing" mean something: the port must stay free
my $listen = $t->has_feature('metrics') ? 'metrics { listen 127.0.0.1:%%PORT_1%%; }' : '';
$t->expect_log(qr/\[emerg\].*:\d+: /);    # refused configurations are logged so

my $HEAD = <<"EOF";
pid facteur.pid;
error_log error.log info;
worker_processes 1;
$listen
EOF

# name => [ { file => content }, file with the error, message ]; the line
# expected is the one marked "# HERE"
my @cases = (
    [ 'unknown directive', { 'facteur.conf' => $HEAD . <<'EOF' },
frobnicate on;    # HERE
EOF
      'facteur.conf', qr/unknown directive "frobnicate"/ ],

    [ 'directive in the wrong scope', { 'facteur.conf' => $HEAD . <<'EOF' },
domain example.org {
    worker_connections 64;    # HERE
}
EOF
      'facteur.conf', qr/"worker_connections" directive is not allowed here/ ],

    [ 'wrong number of arguments', { 'facteur.conf' => $HEAD . <<'EOF' },
worker_connections 64 128;    # HERE
EOF
      'facteur.conf', qr/invalid number of arguments in "worker_connections" directive/ ],

    [ 'directive without its argument', { 'facteur.conf' => $HEAD . <<'EOF' },
worker_connections;    # HERE
EOF
      'facteur.conf', qr/invalid number of arguments in "worker_connections" directive/ ],

    [ 'unterminated block', { 'facteur.conf' => $HEAD . <<'EOF' },
domain example.org {    # HERE

EOF
      'facteur.conf', qr/unexpected end of file, expecting "\}"/ ],

    [ 'stray closing brace', { 'facteur.conf' => $HEAD . <<'EOF' },
worker_connections 64;
}    # HERE
EOF
      'facteur.conf', qr/unexpected "\}"/ ],

    [ 'include loop', {
        'facteur.conf' => $HEAD . "include loop.conf;\n",
        'loop.conf' => "worker_connections 64;\ninclude loop.conf;    # HERE\n",
      },
      'loop.conf', qr/include loop: "[^"]*loop\.conf"/ ],

    [ 'include loop through two files', {
        'facteur.conf' => $HEAD . "include a.conf;\n",
        'a.conf' => "# a\ninclude b.conf;\n",
        'b.conf' => "# b\n\ninclude a.conf;    # HERE\n",
      },
      'b.conf', qr/include loop: "[^"]*a\.conf"/ ],

    [ 'missing include file', { 'facteur.conf' => $HEAD . <<'EOF' },
include nothere.conf;    # HERE
EOF
      'facteur.conf',
      qr/open\(\) "[^"]*nothere\.conf" failed \(No such file or directory\)/ ],

    [ 'duplicate directive', { 'facteur.conf' => $HEAD . <<'EOF' },
worker_connections 64;
worker_connections 128;    # HERE
EOF
      'facteur.conf', qr/"worker_connections" directive is duplicate/ ],

    [ 'bad number', { 'facteur.conf' => $HEAD . <<'EOF' },
worker_connections lots;    # HERE
EOF
      'facteur.conf', qr/invalid value "lots"/ ],

    [ 'number out of bounds', { 'facteur.conf' => $HEAD . <<'EOF' },
worker_connections 5;    # HERE
EOF
      'facteur.conf', qr/invalid value "5"/ ],

    [ 'bad worker_processes', { 'facteur.conf' => <<'EOF' },
pid facteur.pid;
worker_processes many;    # HERE
EOF
      'facteur.conf', qr/invalid value "many"/ ],

    [ 'bad log level', { 'facteur.conf' => <<'EOF' },
pid facteur.pid;
error_log error.log loud;    # HERE
EOF
      'facteur.conf', qr/"loud"/ ],

    [ 'bad flag', { 'facteur.conf' => $HEAD . <<'EOF' },
daemon maybe;    # HERE
EOF
      'facteur.conf', qr/invalid value "maybe"/ ],

    [ 'error in a file found by a glob', {
        'facteur.conf' => $HEAD . "include conf.d/*.conf;\n",
        'conf.d/10-a.conf' => "worker_connections 64;\n",
        'conf.d/20-b.conf' => "# b\n\nfrobnicate;    # HERE\n",
      },
      'conf.d/20-b.conf', qr/unknown directive "frobnicate"/ ],

    # both files were read, in order: the second one's directive is the duplicate
    [ 'a glob includes every match, in order', {
        'facteur.conf' => $HEAD . "include order.d/*.conf;\n",
        'order.d/1.conf' => "worker_connections 64;\n",
        'order.d/2.conf' => "worker_connections 128;    # HERE\n",
      },
      'order.d/2.conf', qr/"worker_connections" directive is duplicate/ ],
);

$t->plan(8 + 6 * @cases);

# a good configuration, with includes found by a glob
$t->write_file_expand('facteur.conf', $HEAD . <<'EOF');
include conf.d/*.conf;
include empty.d/*.conf;    # a glob that matches nothing is not an error
domain example.org {
}
EOF
$t->write_file('conf.d/a.conf', "worker_connections 64;\n");
$t->write_file('conf.d/b.conf', "# only a comment\n");
mkdir $t->testdir . '/empty.d';

my ($rc, $out) = $t->run_config_test;
is($rc, 0, 'facteur -t: a good configuration passes') or diag($out);
unlike($out, qr/\[(emerg|alert)\]/, 'facteur -t: no error printed');

# and it really starts
$t->run;
ok(-s $t->pid_file, 'good configuration: pid file written');
like($t->read_file($t->pid_file), qr/^\d+\s*$/, 'pid file holds a pid');
is($t->read_file($t->pid_file) =~ /(\d+)/ && $1, $t->master_pid,
   'pid file holds the master pid');
ok(!$listen || $t->port_listening($t->port(1)), 'good configuration: port listens');
$t->stop;
ok(!$t->is_running, 'stopped');
ok(!-e $t->pid_file, 'pid file removed on stop');

for my $case (@cases) {
    my ($name, $files, $errfile, $msg) = @$case;

    # a fresh set of files for each case
    unlink glob($t->testdir . '/*.conf'), glob($t->testdir . '/*.d/*.conf'),
        $t->pid_file;
    for my $f (sort keys %$files) {
        $t->write_file_expand($f, $files->{$f});
    }
    my ($line) = grep { $files->{$errfile} =~ /^(?:.*\n){$_}.*# HERE/ } 0 .. 100;
    $line += 1;
    my $where = qr{(?:^|[\s/"])\Q$errfile\E:$line: .*$msg}m;

    ($rc, $out) = $t->run_config_test;
    ok(defined $rc && $rc != 0, "$name: facteur -t fails") or diag("rc: " . ($rc // 'hung'));
    like($out, $where, "$name: the error names $errfile:$line");

    ($rc, $out) = $t->run_expect_exit(timeout => 10);
    ok(defined $rc && $rc != 0, "$name: facteur refuses to start")
        or diag(defined $rc ? "it exited 0" : "it kept running");
    like($out, $where, "$name: and says why");
    ok(!-e $t->pid_file, "$name: no pid file");
    ok(!$listen || !$t->port_listening($t->port(1)), "$name: port still free");
}

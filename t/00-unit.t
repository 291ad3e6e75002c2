#!/usr/bin/perl

# Runs the C unit tests: every executable in objs/unit/ (built by make from
# t/unit/test_*.c) is a TAP program; one ok() per program, and its output is
# shown when it fails.

use strict;
use warnings;

use FindBin;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX qw(WNOHANG);
use IO::Select;

my $root = "$FindBin::Bin/..";
my $objs = $ENV{FACTEUR_OBJS} // $ENV{FACTEUR_BUILDDIR} // "objs";
$objs = "$root/$objs" unless $objs =~ m{^/};
my $dir = "$objs/unit";

opendir(my $dh, $dir) or plan(skip_all => "no $dir (build the unit tests with make)");
my @progs = sort grep { -f "$dir/$_" && -x _ && !/\.(o|d|c|h)$/ } readdir $dh;
closedir $dh;
plan(skip_all => "no unit test programs in $dir") unless @progs;
plan(tests => scalar @progs);

my $limit = 120 * ($ENV{FACTEUR_TEST_TIMEOUT_SCALE} || 1);

for my $prog (@progs) {
    my ($status, $out) = run("$dir/$prog");
    my $failed = grep { /^not ok\b/ } split /\n/, $out;
    my $planned = $out =~ /^1\.\.(\d+)/m ? $1 : undef;
    my $ran = () = $out =~ /^(?:not )?ok \d+/mg;
    my $good = defined $status && $status == 0 && !$failed
        && (!defined $planned || $planned == $ran);

    ok($good, "unit: $prog") or diag(
        (defined $status ? "exit status $status" : "killed after ${limit}s")
        . ($failed ? ", $failed failed" : '')
        . (defined $planned && $planned != $ran ? ", planned $planned ran $ran" : '')
        . "\n$out");
}

# run a program with its output captured, killed if it hangs
sub run {
    my ($path) = @_;
    my $out = '';

    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $r;
        open STDOUT, '>&', $w;
        open STDERR, '>&', $w;
        { no warnings 'exec'; exec $path; }
        print STDERR "exec $path: $!\n";
        POSIX::_exit(127);
    }
    close $w;

    my $end = time + $limit;
    my $sel = IO::Select->new($r);
    while (time < $end) {
        next unless $sel->can_read(0.5);
        my $n = sysread($r, my $buf, 65536);
        last unless $n;
        $out .= $buf;
    }
    my $done = waitpid($pid, WNOHANG) == $pid;
    unless ($done) {
        # output closed but still running, or out of time
        my $wait_end = time + ($end > time ? $end - time : 0);
        until ($done = waitpid($pid, WNOHANG) == $pid) {
            last if time > $wait_end;
            sleep 0.05;
        }
    }
    unless ($done) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        return (undef, $out);
    }
    my $st = $?;
    return (($st & 127) ? 128 + ($st & 127) : $st >> 8, $out);
}

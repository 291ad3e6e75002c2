package Facteur::Test;

# The integration test harness, after nginx-tests' Test::Nginx.
#
#   use FindBin; use lib "$FindBin::Bin/lib";
#   use Test::More;
#   use Facteur::Test;
#
#   my $t = Facteur::Test->new->has(qw/echo ssl/)->plan(5);
#   $t->write_file_expand('facteur.conf', <<'EOF');
#   pid facteur.pid;
#   error_log error.log info;
#   load_module %%MODULES%%/fa_test_echo_module.so;
#   echo { server { listen 127.0.0.1:%%PORT_1%%; } }
#   EOF
#   $t->run;
#   my $c = $t->connect(port => 1);
#   $c->check(qr/^\+OK echo ready \d+$/, 'greeting');
#
# Each test gets a temporary directory used as the prefix (-p DIR/); the
# server runs in the foreground with stderr in DIR/stderr.log.  Placeholders
# in configs: %%PORT_n%% (a free loopback port, the same n gives the same
# port for the whole test), %%TESTDIR%%, %%MODULES%% (objs/modules),
# %%CERT%% and %%KEY%% (a self-signed certificate for "localhost"),
# %%CERT_name%% and %%KEY_name%% (one for "name").
#
# At teardown the server is always stopped (even when the test died), and
# the logs must hold no [alert] or [emerg] (unless the test said it expects
# them with expect_log) and no sanitizer or crash report: that is one more
# test, counted by $t->plan(N), or run by $t->done_testing / $t->stop_and_check.
#
# FACTEUR_TEST_KEEP=1 keeps the directory and prints the logs.
# FACTEUR_TEST_TIMEOUT_SCALE=N multiplies every timeout (slow sanitizer builds).
# Needs only Perl core modules, plus IO::Socket::SSL for TLS.

use strict;
use warnings;

use Test::More ();
use Cwd qw(abs_path);
use Errno qw(EAGAIN EWOULDBLOCK EINTR ECONNRESET EPIPE);
use File::Basename qw(dirname basename);
use File::Path qw(rmtree mkpath);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(time sleep);

our $ROOT = $ENV{FACTEUR_ROOT} // abs_path(dirname(__FILE__) . '/../../..');
# make test passes FACTEUR_BUILDDIR (relative to the tree, or absolute)
our $OBJS = $ENV{FACTEUR_OBJS} // do {
    my $b = $ENV{FACTEUR_BUILDDIR} // 'objs';
    $b =~ m{^/} ? $b : "$ROOT/$b";
};
our $BINARY = $ENV{FACTEUR_BINARY} // "$OBJS/facteur";
our $SCALE = $ENV{FACTEUR_TEST_TIMEOUT_SCALE} || 1;

# every line matching one of these fails the test at teardown
my @BAD_LOG = (
    qr/\[alert\]/, qr/\[emerg\]/, qr/AddressSanitizer/, qr/LeakSanitizer/,
    qr/runtime error:/, qr/signal 11\b/, qr/exited on signal/, qr/core dumped/,
);

my @INSTANCES;

sub timeout { return $_[-1] * $SCALE }

sub new {
    my ($class, %opt) = @_;

    $SIG{PIPE} = 'IGNORE';
    Test::More::plan(skip_all => "no $BINARY (build with ./configure && make)")
        unless -x $BINARY;

    my $self = bless {
        dir => tempdir('facteur-test-XXXXXX', TMPDIR => 1, CLEANUP => 0),
        conf => 'facteur.conf',
        ports => {},
        file_ports => {},
        allowed => [],
        clients => [],
        pid => undef,
        %opt,
    }, $class;
    push @INSTANCES, $self;
    return $self;
}

sub testdir { $_[0]{dir} }
sub binary { $BINARY }
sub root { $ROOT }
sub modules_dir { "$OBJS/modules" }

# what the test needs; skips the whole test when something is missing
sub has {
    my ($self, @features) = @_;

    for my $f (@features) {
        my $why = $self->_missing($f);
        Test::More::plan(skip_all => $why) if $why;
    }
    return $self;
}

sub has_feature {
    my ($self, $f) = @_;
    return !$self->_missing($f);
}

my %DYNAMIC = (echo => 'fa_test_echo_module', badabi => 'fa_test_badabi_module',
               smtp_hooks => 'fa_test_smtp_hooks_module');

sub _missing {
    my ($self, $f) = @_;

    if (my $so = $DYNAMIC{$f}) {
        return -f "$OBJS/modules/$so.so" ? undef
            : "no $OBJS/modules/$so.so (build with make test-modules)";
    }
    if ($f eq 'ssl') {
        return 'IO::Socket::SSL is not installed'
            unless eval { require IO::Socket::SSL; 1 };
        return 'no openssl command' unless _which('openssl');
        return 'facteur is built without TLS'
            unless _file_contains($BINARY, 'SSL_CTX_new')
                || -f "$OBJS/fa_ssl.o" || -f "$OBJS/core/fa_ssl.o";
        return undef;
    }
    # a static module: listed in the generated module table
    my $sym = "fa_${f}_module";
    for my $file ("$OBJS/fa_modules.c", $BINARY) {
        return undef if -f $file && _file_contains($file, $sym);
    }
    return "module $f is not built in";
}

sub _which {
    my ($cmd) = @_;
    for my $d (split /:/, $ENV{PATH} // '') {
        return "$d/$cmd" if -x "$d/$cmd";
    }
    return undef;
}

sub _file_contains {
    my ($file, $s) = @_;
    open my $fh, '<:raw', $file or return 0;
    local $/;
    my $data = <$fh>;
    return index($data, $s) >= 0;
}

# plan N tests plus the teardown log check
sub plan {
    my ($self, $n) = @_;
    Test::More::plan(tests => $n + 1);
    $self->{plan_check} = 1;
    return $self;
}

sub done_testing {
    my ($self) = @_;
    $self->stop_and_check;
    Test::More::done_testing();
}

# lines matching one of these are not held against the test at teardown
sub expect_log {
    my ($self, @re) = @_;
    push @{$self->{allowed}}, @re;
    return $self;
}

# --- ports ---------------------------------------------------------------

my %USED_PORTS;

sub port {
    my ($self, $n) = @_;

    return $self->{ports}{$n} //= do {
        my $port;
        for (1 .. 50) {
            my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                Proto => 'tcp', Listen => 1, ReuseAddr => 0)
                or die "cannot bind a free port: $!";
            $port = $s->sockport;
            close $s;
            last unless $USED_PORTS{$port}++;
        }
        $port;
    };
}

# is something listening on 127.0.0.1:PORT (or any address)?  Read from
# /proc so that looking does not make a connection the server would count.
sub port_listening {
    my ($self, $port) = @_;
    my $hex = sprintf '%04X', $port;
    local $_;                   # callers may be inside a map or grep over $_

    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        while (<$fh>) {
            my @f = split ' ';
            next unless @f > 3 && $f[1] =~ /:([0-9A-F]{4})$/;
            return 1 if $1 eq $hex && $f[3] eq '0A';
        }
    }
    return 0;
}

# --- files ----------------------------------------------------------------

sub write_file {
    my ($self, $name, $content) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";

    mkpath(dirname($path));
    open my $fh, '>', $path or die "cannot write $path: $!";
    binmode $fh;
    print $fh $content;
    close $fh;
    return $path;
}

sub expand {
    my ($self, $content, $ports) = @_;

    $content =~ s/%%PORT_(\d+)%%/push @$ports, $1 if $ports; $self->port($1)/ge;
    $content =~ s/%%TESTDIR%%/$self->{dir}/g;
    $content =~ s/%%MODULES%%/$OBJS\/modules/g;
    $content =~ s/%%(CERT|KEY)(?:_([\w.-]+))?%%/$self->cert($2 \/\/ 'localhost', $1)/ge;
    return $content;
}

sub write_file_expand {
    my ($self, $name, $content) = @_;
    my @ports;

    $content = $self->expand($content, \@ports);
    $self->{file_ports}{$name} = \@ports;
    return $self->write_file($name, $content);
}

sub read_file {
    my ($self, $name) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";

    open my $fh, '<', $path or return '';
    local $/;
    return scalar <$fh>;
}

# a self-signed certificate for NAME, made once per test directory;
# returns the certificate's path (WHAT = CERT) or the key's (WHAT = KEY)
sub cert {
    my ($self, $name, $what) = @_;
    my $base = "$self->{dir}/cert-$name";

    unless (-f "$base.crt") {
        my @cmd = ('openssl', 'req', '-x509', '-newkey', 'ec',
            '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
            '-subj', "/CN=$name", '-addext', "subjectAltName=DNS:$name",
            '-keyout', "$base.key", '-out', "$base.crt");
        my ($rc, $out) = $self->_run_cmd(\@cmd, 30);
        die "openssl failed ($rc): $out" if $rc;
    }
    return ($what // 'CERT') eq 'KEY' ? "$base.key" : "$base.crt";
}

# --- the server -------------------------------------------------------------

sub _conf_path {
    my ($self, $conf) = @_;
    $conf //= $self->{conf};
    return $conf =~ m{^/} ? $conf : "$self->{dir}/$conf";
}

sub pid_file {
    my ($self) = @_;
    my $text = $self->read_file($self->{conf});

    if ($text =~ /^\s*pid\s+(["']?)([^"';\s]+)\1\s*;/m) {
        return $2 =~ m{^/} ? $2 : "$self->{dir}/$2";
    }
    return "$self->{dir}/facteur.pid";
}

sub master_pid { $_[0]{pid} }

# start the server; returns once the pid file is written and every port of
# the configuration (or those given as wait_ports => [n, ...]) listens
sub run {
    my ($self, %opt) = @_;
    my $conf = $self->_conf_path;

    die "facteur is already running" if $self->is_running;
    die "no $conf: write it first" unless -f $conf;

    my @ports = @{$opt{wait_ports} // $self->{file_ports}{$self->{conf}} // []};
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);           # so teardown can reach stray workers too
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/stderr.log";
        open STDERR, '>>', "$self->{dir}/stderr.log";
        my @cmd = ($BINARY, '-p', "$self->{dir}/", '-c', $conf, @{$opt{args} // []});
        { no warnings 'exec'; exec @cmd; }
        print STDERR "exec $BINARY: $!\n";
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $self->{status} = undef;
    $self->{started} = 1;

    my $pidfile = $self->pid_file;
    my $ok = $self->wait_for(sub {
        return 1 unless $self->is_running;
        return 0 unless $self->read_file($pidfile) =~ /^\d+/;
        return !grep { !$self->port_listening($self->port($_)) } @ports;
    }, 10);

    unless ($ok && $self->is_running) {
        my $why = $self->is_running ? 'it did not become ready in time'
            : 'it exited with ' . _status_text($self->{status});
        my $log = $self->read_file('stderr.log') . $self->read_file('error.log');
        die "facteur did not start: $why\n$log";
    }
    return $self;
}

# run facteur in the foreground and wait for it to exit (a config that must
# be refused); returns (exit code, stderr) or (undef, ...) if it kept running
sub run_expect_exit {
    my ($self, %opt) = @_;
    my @cmd = ($BINARY, '-p', "$self->{dir}/", '-c', $self->_conf_path($opt{conf}));
    return $self->_run_cmd(\@cmd, $opt{timeout} // 10);
}

sub is_running {
    my ($self) = @_;
    return 0 unless $self->{pid};
    return 0 if defined $self->{status};
    my $r = waitpid($self->{pid}, WNOHANG);
    if ($r == $self->{pid}) {
        $self->{status} = $?;
        return 0;
    }
    return 1;
}

sub exit_status { $_[0]{status} }

sub _status_text {
    my ($st) = @_;
    return 'unknown status' unless defined $st;
    return 'signal ' . ($st & 127) if $st & 127;
    return 'exit code ' . ($st >> 8);
}

# wait until the master exits; returns 1 if it did
sub wait_exit {
    my ($self, $secs) = @_;
    return $self->wait_for(sub { !$self->is_running }, $secs // 10);
}

sub signal {
    my ($self, $sig) = @_;
    return 0 unless $self->is_running;
    return kill $sig, $self->{pid};
}

# facteur -s NAME; returns (exit code, output)
sub ctl {
    my ($self, $name, %opt) = @_;
    my @cmd = ($BINARY, '-p', "$self->{dir}/", '-c', $self->_conf_path($opt{conf}),
        '-s', $name);
    return $self->_run_cmd(\@cmd, 20);
}

sub reload { $_[0]->ctl('reload') }

# facteur -t; returns (exit code, output)
sub run_config_test {
    my ($self, $conf) = @_;
    my @cmd = ($BINARY, '-p', "$self->{dir}/", '-c', $self->_conf_path($conf), '-t');
    return $self->_run_cmd(\@cmd, 20);
}

# run a command with stdout and stderr captured, killed after SECS;
# returns (exit code or undef if it had to be killed, output)
sub _run_cmd {
    my ($self, $cmd, $secs) = @_;
    my $out = "$self->{dir}/.cmd.out";

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec @$cmd; }
        print STDERR "exec $cmd->[0]: $!\n";
        POSIX::_exit(127);
    }
    my $status;
    $self->wait_for(sub {
        my $r = waitpid($pid, WNOHANG);
        $status = $? if $r == $pid;
        return $r == $pid;
    }, $secs);
    unless (defined $status) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    my $text = $self->read_file($out);
    unlink $out;
    return (undef, $text) unless defined $status;
    return (($status & 127) ? 128 + ($status & 127) : $status >> 8, $text);
}

# the master's children (the workers), from /proc; scalar: their number
sub workers {
    my ($self, $ppid) = @_;
    $ppid //= $self->{pid};
    return () unless $ppid;
    my @kids;
    opendir my $d, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $stat = <$fh> // next;
        $stat =~ s/^.*\)\s+//s;          # after "pid (comm)"
        my ($state, $parent) = split ' ', $stat;
        push @kids, $p if $parent == $ppid && $state ne 'Z';
    }
    my @sorted = sort { $a <=> $b } @kids;
    return @sorted;             # in scalar context: how many
}

# resident memory of a process, in kB
sub rss {
    my ($self, $pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)\s+kB/;
    }
    return undef;
}

sub pid_alive {
    my ($self, $pid) = @_;
    return 0 unless $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // return 0;
    $stat =~ s/^.*\)\s+//s;
    return (split ' ', $stat)[0] ne 'Z';
}

# poll COND every few ms until it is true or SECS (scaled) have passed
sub wait_for {
    my ($self, $cond, $secs) = @_;
    my $end = time + timeout($secs // 10);
    my $delay = 0.005;

    for (;;) {
        return 1 if $cond->();
        return 0 if time > $end;
        sleep $delay;
        $delay = 0.1 if ($delay *= 2) > 0.1;
    }
}

# stop the server: graceful QUIT, then TERM, then KILL; always leaves nothing.
# Our clients are closed first, so a graceful stop has nothing to wait for:
# needing TERM or KILL is a problem the teardown check reports.
sub stop {
    my ($self) = @_;

    $_ && $_->close for @{$self->{clients}};
    @{$self->{clients}} = ();
    return $self unless $self->{pid};

    if ($self->is_running) {
        for my $step (['QUIT', 10], ['TERM', 5], ['KILL', 5]) {
            kill $step->[0], $self->{pid};
            last if $self->wait_exit($step->[1]);
            push @{$self->{problems}}, "facteur did not stop on $step->[0] within "
                . timeout($step->[1]) . 's';
        }
    }
    # anything left in the process group (orphaned workers)
    kill 'KILL', -$self->{pid};
    $self->{stopped_pid} = $self->{pid};
    $self->{pid} = undef;
    return $self;
}

# the teardown check, as one test: no alert, no emerg, no sanitizer report
sub log_problems {
    my ($self) = @_;
    my @bad = @{$self->{problems} // []};

    opendir my $d, $self->{dir} or return @bad;
    for my $f (sort grep { /\.log/ } readdir $d) {
        for my $line (split /\n/, $self->read_file($f)) {
            next unless grep { $line =~ $_ } @BAD_LOG;
            next if grep { $line =~ $_ } @{$self->{allowed}};
            push @bad, "$f: $line";
        }
    }
    my $st = $self->{status};
    if (defined $st && ($st & 127)) {
        push @bad, 'master ended by ' . _status_text($st);
    }
    return @bad;
}

sub stop_and_check {
    my ($self) = @_;

    return if $self->{checked}++;
    $self->stop;
    my @bad = $self->log_problems;
    Test::More::ok(!@bad, 'no alerts, crashes or sanitizer reports in the logs')
        or Test::More::diag(join "\n", @bad[0 .. ($#bad > 30 ? 30 : $#bad)]);
}

sub _teardown {
    my ($self) = @_;

    return if $self->{torn_down}++;
    if ($self->{plan_check} && !$self->{checked}) {
        $self->stop_and_check;
    } else {
        $self->stop;
    }
    if ($ENV{FACTEUR_TEST_KEEP}) {
        Test::More::diag("test directory kept: $self->{dir}");
        for my $f ('error.log', 'stderr.log') {
            my $text = $self->read_file($f);
            Test::More::diag("--- $f ---\n$text") if length $text;
        }
    } else {
        rmtree($self->{dir});
    }
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->_teardown;
}

END {
    local ($!, $@);
    my $status = $?;
    $_->_teardown for @INSTANCES;
    @INSTANCES = ();
    $? = $status;
}

# --- clients --------------------------------------------------------------

# connect to %%PORT_n%% (port => n), a port number (port_number => N) or a
# unix socket (unix => PATH)
#   ssl => 1     implicit TLS;  sni => NAME   the name to send
# Always returns a client; ->connected says whether it is connected (a
# failed one reads nothing, so checks fail with the reason, not a die).
sub connect {
    my ($self, %opt) = @_;
    my $port = $opt{port_number} // $self->port($opt{port} // 1);
    my $c = Facteur::Test::Client->new(%opt, port => $port);

    push @{$self->{clients}}, $c;
    weaken($self->{clients}[-1]);
    return $c;
}

# GET a path with Connection: close; returns the raw response
sub http_get {
    my ($self, $path, %opt) = @_;
    return $self->http("GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        %opt);
}

# send a raw request, read one response; returns the raw response ('' if none)
sub http {
    my ($self, $request, %opt) = @_;
    my $c = $self->connect(%opt);
    return '' unless $c->connected;
    $c->send($request);
    my $r = $c->read_http_response($opt{timeout} // 5);
    $c->close;
    return $r // '';
}

# parse a raw HTTP response: (status, {lower-case header => value}, body)
sub parse_http {
    my ($raw) = @_;
    return (0, {}, '') unless defined $raw
        && $raw =~ m{^HTTP/1\.[01] (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n}s;
    my ($status, $head) = ($1, $2);
    my %h;
    for (split /\r\n/, $head) {
        $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
    }
    return ($status, \%h, substr($raw, index($raw, "\r\n\r\n") + 4));
}

# the value of a metric in Prometheus text (undef if absent)
sub metric {
    my ($text, $name) = @_;
    return undef unless defined $text;
    return $1 if $text =~ /^\Q$name\E(?:\{[^}]*\})?\s+(-?[0-9.e+]+)\s*$/m;
    return undef;
}


package Facteur::Test::Client;

# A line-protocol client with a read buffer and timeouts everywhere.

use strict;
use warnings;
use Errno qw(EAGAIN EWOULDBLOCK EINTR ECONNRESET EPIPE);
use IO::Select;
use IO::Socket::INET;
use Socket ();
use Time::HiRes qw(time);

sub new {
    my ($class, %opt) = @_;
    my $timeout = Facteur::Test::timeout($opt{timeout} // 5);
    my $sock;

    if ($opt{unix}) {
        require IO::Socket::UNIX;
        $sock = IO::Socket::UNIX->new(Peer => $opt{unix}, Type => Socket::SOCK_STREAM(),
            Timeout => $timeout);
        return $class->_failed("$!") unless $sock;
    } elsif ($opt{ssl}) {
        require IO::Socket::SSL;
        $sock = IO::Socket::SSL->new(
            PeerAddr => $opt{host} // '127.0.0.1', PeerPort => $opt{port},
            Timeout => $timeout,
            SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE(),
            SSL_hostname => $opt{sni} // '',
            %{$opt{ssl_opts} // {}},
        );
        return $class->_failed(IO::Socket::SSL::errstr() || "$!") unless $sock;
    } else {
        $sock = IO::Socket::INET->new(PeerAddr => $opt{host} // '127.0.0.1',
            PeerPort => $opt{port}, Proto => 'tcp', Timeout => $timeout);
        return $class->_failed("$!") unless $sock;
    }
    $sock->autoflush(1);
    return bless { sock => $sock, buf => '', eof => 0, timeout => $opt{timeout} // 5 },
        $class;
}

# a client that could not connect: every read fails, "connected" is false
sub _failed {
    my ($class, $error) = @_;
    $Facteur::Test::Client::error = $error;
    return bless { sock => undef, buf => '', eof => 1, error => $error, timeout => 5 },
        $class;
}

sub sock { $_[0]{sock} }
sub is_eof { $_[0]{eof} }
sub connected { defined $_[0]{sock} }
sub error { $_[0]{error} // '' }

# write everything (blocking); returns 1, or 0 if the peer is gone
sub send {
    my ($self, $data) = @_;
    my $sock = $self->{sock} or return 0;
    my $off = 0;

    local $SIG{PIPE} = 'IGNORE';
    while ($off < length $data) {
        my $n = syswrite($sock, $data, length($data) - $off, $off);
        unless (defined $n) {
            next if $! == EINTR;
            return 0;
        }
        $off += $n;
    }
    return 1;
}

sub cmd {
    my ($self, $line) = @_;
    return $self->send("$line\r\n");
}

# read more into the buffer; 1 got data, 0 EOF or reset, undef timeout
sub _fill {
    my ($self, $deadline) = @_;
    my $sock = $self->{sock} or return 0;

    for (;;) {
        my $pending = $sock->can('pending') ? $sock->pending : 0;
        unless ($pending) {
            my $left = $deadline - time;
            return undef if $left <= 0;
            my $sel = IO::Select->new($sock);
            next unless $sel->can_read($left);    # loops to the deadline check
        }
        my $n = sysread($sock, my $chunk, 65536);
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
            if ($sock->isa('IO::Socket::SSL') && $IO::Socket::SSL::SSL_ERROR
                && $IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_READ())
            {
                next;
            }
            $self->{eof} = 1;
            return 0;
        }
        if ($n == 0) {
            $self->{eof} = 1;
            return 0;
        }
        $self->{buf} .= $chunk;
        return 1;
    }
}

# one line without its CRLF; undef on timeout or EOF
sub line {
    my ($self, $timeout) = @_;
    my $deadline = time + Facteur::Test::timeout($timeout // $self->{timeout});

    for (;;) {
        if ($self->{buf} =~ s/^([^\n]*)\n//) {
            my $l = $1;
            $l =~ s/\r$//;
            return $l;
        }
        my $r = $self->_fill($deadline);
        return undef unless $r;
    }
}

# read a line and match it: like() with a readable diagnostic
sub check {
    my ($self, $re, $name, $timeout) = @_;
    my $l = $self->line($timeout);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $why = !$self->{sock} && $self->{error} ? "<could not connect: $self->{error}>"
        : $self->{eof} ? '<connection closed>' : '<timeout>';
    Test::More::like($l // $why, $re, $name);
    return $l;
}

# send a command and check the reply line
sub chat {
    my ($self, $cmd, $re, $name, $timeout) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $self->cmd($cmd);
    return $self->check($re, $name // $cmd, $timeout);
}

# wait for the server to close: 1 if it did within TIMEOUT; what it sent
# meanwhile is kept in the buffer
sub wait_eof {
    my ($self, $timeout) = @_;
    my $deadline = time + Facteur::Test::timeout($timeout // $self->{timeout});

    for (;;) {
        return 1 if $self->{eof};
        my $r = $self->_fill($deadline);
        return 1 if defined $r && $r == 0;
        return 0 unless defined $r;
    }
}

sub buffer { $_[0]{buf} }

# nothing arrives within TIMEOUT (and the connection stays open)
sub quiet {
    my ($self, $timeout) = @_;
    return 0 if length $self->{buf};
    my $r = $self->_fill(time + Facteur::Test::timeout($timeout // 0.3));
    return !defined $r;
}

# upgrade to TLS (after the server said go ahead); returns 1 on success
sub starttls {
    my ($self, %opt) = @_;
    require IO::Socket::SSL;
    return 0 unless $self->{sock};
    die "unread data before TLS: $self->{buf}" if length $self->{buf};
    my $ok = IO::Socket::SSL->start_SSL($self->{sock},
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE(),
        SSL_hostname => $opt{sni} // '',
        Timeout => Facteur::Test::timeout($opt{timeout} // 5),
    );
    $Facteur::Test::Client::error = IO::Socket::SSL::errstr() unless $ok;
    return $ok ? 1 : 0;
}

# non-blocking: write as much of DATA as the socket takes within TIMEOUT of
# it being full; returns the number of bytes written
sub send_until_blocked {
    my ($self, $data, $timeout) = @_;
    my $sock = $self->{sock} or return 0;
    my $off = 0;

    local $SIG{PIPE} = 'IGNORE';
    $sock->blocking(0);
    while ($off < length $data) {
        my $n = syswrite($sock, $data, length($data) - $off, $off);
        if (defined $n) {
            $off += $n;
            next;
        }
        last unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        last unless IO::Select->new($sock)->can_write(Facteur::Test::timeout($timeout // 2));
    }
    $sock->blocking(1);
    return $off;
}

# one HTTP response: headers, then Content-Length bytes (or until close)
sub read_http_response {
    my ($self, $timeout) = @_;
    my $deadline = time + Facteur::Test::timeout($timeout // $self->{timeout});

    until ($self->{buf} =~ /\r\n\r\n/) {
        my $r = $self->_fill($deadline);
        unless ($r) {
            my $partial = $self->{buf};
            $self->{buf} = '';
            return length $partial ? $partial : undef;
        }
    }
    my $hlen = index($self->{buf}, "\r\n\r\n") + 4;
    my $head = substr($self->{buf}, 0, $hlen);
    if ($head =~ /^Content-Length:\s*(\d+)/mi) {
        my $want = $hlen + $1;
        while (length $self->{buf} < $want) {
            last unless $self->_fill($deadline);
        }
        return substr($self->{buf}, 0, $want, '');
    }
    1 while $self->_fill($deadline);     # no length: until the server closes
    my $all = $self->{buf};
    $self->{buf} = '';
    return $all;
}

sub close {
    my ($self) = @_;
    if (my $s = delete $self->{sock}) {
        if ($s->isa('IO::Socket::SSL')) {
            $s->close(SSL_no_shutdown => 1);
        } else {
            close $s;
        }
    }
    $self->{eof} = 1;
}

sub DESTROY { $_[0]->close }

1;

#!/usr/bin/perl

# The metrics endpoint: GET /metrics in Prometheus text, the core's counters
# moving, HTTP errors (404, 405, 400), keep-alive and pipelining, and hostile
# clients (a 1 MB request line, a client that sends nothing) costing only
# their own connection.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

my $t = Facteur::Test->new->has(qw/metrics/);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
metrics {
    listen 127.0.0.1:%%PORT_1%%;
    metrics_timeout 1s;
}
EOF
$t->run;

my $GET = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";

sub scrape {
    my ($status, $h, $body) = Facteur::Test::parse_http($t->http_get('/metrics'));
    return $status == 200 ? $body : undef;
}

sub metric { Facteur::Test::metric($_[0], $_[1]) }

###############################################################################
# the page

my ($status, $h, $body) = Facteur::Test::parse_http($t->http_get('/metrics'));
is($status, 200, 'GET /metrics: 200');
like($h->{'content-type'} // '', qr{^text/plain\b}, 'text/plain');
is($h->{'content-length'}, length $body, 'Content-Length matches the body');
like($body, qr/^facteur_build_info\{[^}]*version="[^"]+"[^}]*\} 1$/m, 'facteur_build_info');
# polled: the master sets the gauge after forking, so a worker may answer first
my $workers = metric($body, 'facteur_workers');
$t->wait_for(sub { ($workers = metric(scrape(), 'facteur_workers') // 0) == 1 }, 5)
    unless ($workers // 0) == 1;
is($workers, 1, 'facteur_workers is 1');
ok(defined metric($body, 'facteur_uptime_seconds'), 'facteur_uptime_seconds');
ok(defined metric($body, 'facteur_connections_active'), 'facteur_connections_active');
ok(defined metric($body, 'facteur_connections_accepted_total'),
   'facteur_connections_accepted_total');

my @bad = grep { !/^# (HELP|TYPE) facteur_\w+ / && !/^facteur_\w+(\{[^}]*\})? -?[0-9.e+]+$/ }
          split /\n/, $body;
is_deeply(\@bad, [], 'every line is valid Prometheus text with a facteur_ name');
my %types = $body =~ /^# TYPE (\w+) (\w+)$/mg;
ok(!grep({ /_total$/ && $types{$_} ne 'counter' } keys %types), '*_total are counters');

# counters move
my $before = metric($body, 'facteur_connections_accepted_total') // 0;
for (1 .. 3) {
    my $c = $t->connect(port => 1);
    $c->close;
}
my $after;
ok($t->wait_for(sub {
    $after = metric(scrape(), 'facteur_connections_accepted_total') // 0;
    $after >= $before + 4;
}, 10), 'facteur_connections_accepted_total counts new connections')
    or diag("before $before, after $after");

# per-protocol sessions and the module's own counter
my $sessions_re = qr/^facteur_sessions_total\{protocol="metrics"\} (\d+)$/m;
my $requests = metric(scrape(), 'facteur_metrics_requests_total');
ok(defined $requests, 'facteur_metrics_requests_total');
my ($sessions) = (scrape() // '') =~ $sessions_re;
ok(defined $sessions, 'facteur_sessions_total{protocol="metrics"}');
for (1 .. 2) {
    my $c = $t->connect(port => 1);
    $c->close;
}
my $body2 = scrape();
my ($sessions2) = ($body2 // '') =~ $sessions_re;
cmp_ok($sessions2 // 0, '>=', ($sessions // 0) + 3, 'sessions by protocol count connections');
cmp_ok(metric($body2, 'facteur_metrics_requests_total') // 0, '>=', ($requests // 0) + 2,
       'the metrics module counts its requests');

my @held = map { $t->connect(port => 1) } 1 .. 3;
my $active = metric(scrape(), 'facteur_connections_active') // 0;
cmp_ok($active, '>=', 4, 'facteur_connections_active counts open connections');
$_->close for @held;

###############################################################################
# HTTP

($status) = Facteur::Test::parse_http($t->http_get('/other'));
is($status, 404, 'another path: 404');

($status, $h) = Facteur::Test::parse_http($t->http(
    "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
is($status, 405, 'POST: 405');
like($h->{allow} // '', qr/GET/, 'with Allow');

($status, $h, $body) = Facteur::Test::parse_http($t->http(
    "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
is($status, 200, 'HEAD: 200');
is($body, '', 'HEAD: no body');

my $g = $t->connect(port => 1);
$g->send("HELLO THERE\r\n\r\n");
($status) = Facteur::Test::parse_http($g->read_http_response(5));
is($status, 400, 'garbage: 400');
ok($g->wait_eof(5), 'and the connection is closed');

# keep-alive: two requests, one connection
my $k = $t->connect(port => 1);
$k->send($GET);
($status, $h) = Facteur::Test::parse_http($k->read_http_response(5));
is($status, 200, 'keep-alive: first request');
ok(!$k->is_eof, 'the connection stays open');
$k->send($GET);
($status) = Facteur::Test::parse_http($k->read_http_response(5));
is($status, 200, 'keep-alive: second request on the same connection');

# pipelining: three requests in one write, three answers in order
$k->send($GET . "GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n" . $GET);
my @st = map { (Facteur::Test::parse_http($k->read_http_response(5)))[0] } 1 .. 3;
is("@st", '200 404 200', 'pipelined requests answered in order');

$k->send("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
($status) = Facteur::Test::parse_http($k->read_http_response(5));
is($status, 200, 'Connection: close');
ok($k->wait_eof(5), 'closes after the response');

my $old = $t->connect(port => 1);
$old->send("GET /metrics HTTP/1.0\r\n\r\n");
($status) = Facteur::Test::parse_http($old->read_http_response(5));
is($status, 200, 'HTTP/1.0');
ok($old->wait_eof(5), 'HTTP/1.0 without keep-alive: closed after the response');

###############################################################################
# hostile clients

# a 1 MB request line: an error or a close, for that connection only
my $huge = $t->connect(port => 1);
$huge->send('GET /' . ('a' x (1024 * 1024)) . " HTTP/1.1\r\nHost: localhost\r\n\r\n");
my $r = $huge->read_http_response(5);
($status) = Facteur::Test::parse_http($r);
ok(!defined $r || $status =~ /^(400|414|431)$/, 'a 1 MB request line: an error or a close')
    or diag("got status $status");
ok($huge->wait_eof(5), 'and the connection is closed');
ok(defined scrape(), 'another client is served meanwhile');

# a client that sends nothing is closed after metrics_timeout (1s); a
# half-sent request too; the others are served in the meantime
my $mute = $t->connect(port => 1);
my $half = $t->connect(port => 1);
$half->send("GET /metr");
ok(defined scrape(), 'served while a silent client waits');
ok($mute->wait_eof(10), 'the silent client is closed after the timeout');
ok($half->wait_eof(10), 'the client with half a request too');
ok(defined scrape(), 'and others are still served');

$t->done_testing;

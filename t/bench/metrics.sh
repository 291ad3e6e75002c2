#!/bin/sh
# Benchmark of the metrics endpoint (not a test: it prints figures).
#
#   (a) requests/s of GET /metrics over 100 keep-alive connections (wrk)
#   (b) requests/s with a new connection per request (wrk, Connection: close)
#   (c) resident memory of the master and the workers with 10,000 idle
#       connections: just connected, then after one request each (idle
#       keep-alive), as a total and per connection
#
# The server is the built objs/facteur (FACTEUR_BUILDDIR to change), with
# a configuration in a temporary directory, 2 workers, on a free loopback
# port; it is always stopped at the end.  Knobs: FA_BENCH_DURATION (seconds
# per wrk run, default 10), FA_BENCH_IDLE (connections, default 10000),
# FA_BENCH_KEEP=1 keeps the temporary directory.

set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/t/bench/lib/bench.sh"
builddir=${FACTEUR_BUILDDIR:-objs}
case $builddir in /*) ;; *) builddir=$root/$builddir ;; esac
bin=$builddir/facteur
duration=${FA_BENCH_DURATION:-10}
idle=${FA_BENCH_IDLE:-10000}

if [ ! -x "$bin" ]; then
    echo "metrics bench: $bin is not built (run make)"
    exit 1
fi
command -v python3 >/dev/null || { echo "metrics bench: python3 is needed"; exit 1; }

tmp=$(mktemp -d /tmp/facteur-bench.XXXXXX) || exit 1
master=
client=

cleanup() {
    if [ -n "$client" ] && kill -0 "$client" 2>/dev/null; then
        kill "$client" 2>/dev/null
    fi
    stop_server "$master"
    report_alerts metrics "$tmp/error.log"
    [ "${FA_BENCH_KEEP:-}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# GET /metrics; with a metric name, print its value
scrape() {
    python3 - "$port" "${1:-}" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
if not sys.argv[2]:
    sys.stdout.write(body)
for line in body.splitlines():
    if sys.argv[2] and line.split(" ")[0] == sys.argv[2]:
        print(line.split(" ")[1])
PY
}

metric_is() {   # NAME OP VALUE, e.g. facteur_workers -eq 2
    v=$(scrape "$1")
    [ -n "$v" ] && [ "$v" "$2" "$3" ]
}

# resident memory in kB: "total master workers"
rss() {
    total=0 m=0 w=0
    for p in $master $(pgrep -P "$master"); do
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        kb=${kb:-0}
        if [ "$p" = "$master" ]; then m=$kb; else w=$((w + kb)); fi
        total=$((total + kb))
    done
    echo "$total $m $w"
}

print_rss() {   # LABEL
    set -- "$1" $(rss)
    echo "rss $1: $2 kB (master $3 kB, workers $4 kB)"
}

print_per_conn() {   # LABEL BEFORE-TOTAL-KB
    set -- "$1" "$2" $(rss)
    echo "rss $1: $3 kB (master $4 kB, workers $5 kB), +$(($3 - $2)) kB," \
         "$((($3 - $2) * 1024 / idle)) bytes per connection"
}

wrk_run() {   # LABEL WRK-ARGS...
    label=$1; shift
    if ! wrk -t2 -c100 -d"${duration}s" --timeout 5s "$@" "http://127.0.0.1:$port/metrics" \
            >"$tmp/wrk.out" 2>&1; then
        echo "$label: wrk failed: $(tail -1 "$tmp/wrk.out")"
        return
    fi
    awk -v label="$label" -v d="$duration" '
        /Latency/ && !lat { lat = $2 }
        /Requests\/sec/   { rps = $2 }
        /Socket errors/   { err = $0; sub(/^ +/, "", err) }
        /Non-2xx/         { non2xx = $NF }
        END {
            printf "%s: %s requests/s over %s s, 100 connections, latency avg %s", label, rps, d, lat
            if (non2xx) printf ", %s non-2xx", non2xx
            if (err) printf ", %s", err
            printf "\n"
        }' "$tmp/wrk.out"
}

# ---- the server ----

hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null

port=$(free_port)
cat >"$tmp/facteur.conf" <<EOF
daemon off;
worker_processes 2;
worker_connections 20000;
error_log $tmp/error.log notice;
pid $tmp/facteur.pid;
metrics {
    listen 127.0.0.1:$port backlog=4096;
    metrics_timeout 5m;
}
EOF

"$bin" -p "$tmp/" -c "$tmp/facteur.conf" </dev/null >"$tmp/stdout.log" 2>&1 &
master=$!
if ! wait_for 10 scrape >/dev/null; then
    echo "metrics bench: the server did not start:"
    cat "$tmp/stdout.log" "$tmp/error.log" 2>/dev/null | tail -5
    exit 1
fi
wait_for 5 metric_is facteur_workers -eq 2

echo "metrics bench: $bin, 2 workers, 127.0.0.1:$port, $(nproc) CPUs, fd limit $(ulimit -n)"
echo "page: $(scrape | wc -c) bytes"
print_rss "at start"

# ---- (a) and (b): throughput ----

if command -v wrk >/dev/null; then
    wrk_run "keep-alive"
    wrk_run "new connection per request" -H "Connection: close"
else
    echo "keep-alive: skipped, wrk is not installed (apt-get install wrk)"
    echo "new connection per request: skipped, wrk is not installed"
fi

# ---- (c): memory with idle connections ----

sleep 1                                  # let closing connections go
before=$(rss | cut -d' ' -f1)
print_rss "before $idle idle connections"

mkdir "$tmp/state"
python3 "$root/t/bench/idle_conns.py" "$port" "$idle" "$tmp/state" &
client=$!

if ! wait_for 120 test -e "$tmp/state/connected"; then
    echo "idle connections: the client did not connect $idle connections"
    exit 1
fi
# connect() returns once the kernel queued the connection: wait for accept
wait_for 30 metric_is facteur_connections_active -gt "$idle"
echo "connections active: $(($(scrape facteur_connections_active) - 1))"
print_per_conn "with $idle idle connections (nothing sent)" "$before"

touch "$tmp/state/go1"
if ! wait_for 120 test -e "$tmp/state/requested"; then
    echo "idle connections: the requests were not all answered"
    exit 1
fi
sleep 0.5
print_per_conn "with $idle idle keep-alive connections (one request each)" "$before"

touch "$tmp/state/go2"
wait "$client"
client=
wait_for 10 metric_is facteur_connections_active -le 1
print_rss "after the idle connections closed"

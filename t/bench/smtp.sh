#!/bin/sh
# Benchmark of the SMTP module (not a test: it prints figures).
#
# Messages/s accepted and durably stored (250 after the data is sent only
# once the store's commit is durable), 4 KB messages to a local user made
# with facteurctl, from
#   (a) 1 session, one message per connection (connect, EHLO, MAIL, RCPT,
#       DATA, QUIT)
#   (b) 1 session, 100 messages per connection (MAIL/RCPT/DATA pipelined)
#   (c) 20 parallel sessions, one message per connection
#   (d) 20 parallel sessions, 100 messages per connection, pipelined
#   (e) as (d), with 2 recipients (two users) per message
# and for each run the workers' CPU time (utime + stime from /proc) and the
# peak of the sampled resident memory of the master and the workers; at
# the end the sum of their VmHWM, what the error log holds besides the
# per-message notices, and whether the store holds what was accepted.
#
# The load comes from t/bench/smtp_load.c (one thread per session, plain
# blocking sockets), compiled with cc into the temporary directory.  The
# server is the built objs/facteur (FACTEUR_BUILDDIR to change) with 2
# workers, the LMDB store and the error log (at notice, one line per
# message) in a temporary directory under $TMPDIR (default /tmp: the
# figures are that disk's fsync), on a free loopback port; it is always
# stopped at the end.  Knobs: FA_BENCH_CAP (seconds a run may last at
# most, default 20), FA_BENCH_WORKERS (default 2), FA_BENCH_KEEP=1 keeps
# the temporary directory.  The exit status is 1 when the server failed,
# a reply was unexpected, or the store or the log miss a message.

set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/t/bench/lib/bench.sh"
builddir=${FACTEUR_BUILDDIR:-objs}
case $builddir in /*) ;; *) builddir=$root/$builddir ;; esac
bin=$builddir/facteur
ctl=$builddir/facteurctl
cap=${FA_BENCH_CAP:-20}
nworkers=${FA_BENCH_WORKERS:-2}

if [ ! -x "$bin" ] || [ ! -x "$ctl" ]; then
    echo "smtp bench: $bin or $ctl is not built (run make)"
    exit 1
fi
command -v cc >/dev/null || { echo "smtp bench: a C compiler (cc) is needed"; exit 1; }
command -v python3 >/dev/null || { echo "smtp bench: python3 is needed"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/facteur-bench.XXXXXX") || exit 1
master=
sampler=
status=0

cleanup() {
    if [ -n "$sampler" ] && kill -0 "$sampler" 2>/dev/null; then
        kill "$sampler" 2>/dev/null
    fi
    stop_server "$master"
    [ "${FA_BENCH_KEEP:-}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "smtp bench: $*"
    exit 1
}

ctl() {
    "$ctl" -p "$tmp/" -c "$tmp/facteur.conf" "$@"
}

workers() {
    pgrep -P "$master" | sort -n | tr '\n' ' '
}

# CPU time of the workers, in clock ticks (all their threads)
worker_ticks() {
    # shellcheck disable=SC2046
    proc_ticks all $(workers)
}

# sum of a /proc/PID/status field (kB) over the master and the workers
mem_sum() {
    s=0
    for p in $master $(workers); do
        kb=$(awk -v f="$1:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null)
        s=$((s + ${kb:-0}))
    done
    echo $s
}

# sample the total VmRSS every 0.1 s into $tmp/rss until $tmp/rss.stop
# exists (one awk a sample, to take little CPU from the server)
start_sampler() {
    rm -f "$tmp/rss" "$tmp/rss.stop"
    files=
    for p in $master $(workers); do files="$files /proc/$p/status"; done
    (while [ ! -e "$tmp/rss.stop" ]; do
         awk '$1 == "VmRSS:" { r += $2 } $1 == "RssAnon:" { a += $2 }
              END { print r, a }' $files 2>/dev/null
         sleep 0.1
     done >"$tmp/rss") &
    sampler=$!
}

stop_sampler() {
    touch "$tmp/rss.stop"
    wait "$sampler" 2>/dev/null
    sampler=
    awk '$1 > r { r = $1 } $2 > a { a = $2 } END { print r + 0, a + 0 }' "$tmp/rss"
}

hz=$(getconf CLK_TCK)
accepted_total=0
delivered_total=0

# run LABEL RECIPIENTS SMTP_LOAD-ARGS...
run() {
    label=$1 nrcpt=$2; shift 2
    before=$(worker_ticks)
    pids=$(workers)
    start_sampler
    timeout $((cap + 60)) "$tmp/smtp_load" -p "$port" -t "$cap" "$@" \
        >"$tmp/load.out" 2>"$tmp/load.err"
    rc=$?
    peak=$(stop_sampler)
    after=$(worker_ticks)
    out=$(cat "$tmp/load.out")
    ok=$(echo "$out" | awk '/accepted/ { print $4 }')
    ok=${ok:-0}
    accepted_total=$((accepted_total + ok))
    delivered_total=$((delivered_total + ok * nrcpt))
    cpu=$((after - before))
    echo "$label:"
    echo "${out:-no output}" | sed 's/^/    /'
    echo "$ok $cpu $hz $peak" | awk '{
        printf "    workers CPU %.2f s (%.0f us per message); master + workers, peak of" \
               " samples: VmRSS %d kB, RssAnon %d kB\n",
               $2 / $3, ($1 > 0 ? $2 / $3 * 1e6 / $1 : 0), $4, $5 }'
    if [ $rc -ne 0 ]; then
        status=1
        echo "    FAILED (smtp_load exit status $rc):"
        sed 's/^/    /' "$tmp/load.err" | head -8
    fi
    kill -0 "$master" 2>/dev/null || fail "the server is gone"
    [ "$(workers)" = "$pids" ] || { status=1; echo "    FAILED: the workers changed" \
                                    "(a worker died?): $pids -> $(workers)"; }
}

# ---- build the load generator, set up the server ----

cc -O2 -pthread -o "$tmp/smtp_load" "$root/t/bench/smtp_load.c" \
    || fail "cannot compile t/bench/smtp_load.c"

port=$(free_port)
mkdir "$tmp/var"
cat >"$tmp/facteur.conf" <<EOF
daemon off;
worker_processes $nworkers;
worker_connections 4096;
error_log $tmp/error.log notice;
pid $tmp/facteur.pid;
auth_directory $tmp/var/auth;
storage lmdb { path $tmp/var/mail; }
hostname mx.bench.test;
smtp {
    smtp_spool_path $tmp/var/spool;
    server { listen 127.0.0.1:$port backlog=1024; }
}
EOF

ctl domain add bench.test >/dev/null || fail "facteurctl domain add failed"
for u in user second; do
    echo "bench secret" | ctl user add "$u@bench.test" --password-stdin >/dev/null \
        || fail "facteurctl user add $u@bench.test failed"
done

"$bin" -p "$tmp/" -c "$tmp/facteur.conf" </dev/null >"$tmp/stdout.log" 2>&1 &
master=$!
if ! wait_for 10 listening "$port"; then
    echo "smtp bench: the server did not start:"
    cat "$tmp/stdout.log" "$tmp/error.log" 2>/dev/null | tail -5
    exit 1
fi
nw() { [ "$(workers | wc -w)" -eq "$nworkers" ]; }
wait_for 5 nw || fail "the server has not $nworkers workers: $(workers)"

fs=$(df -T "$tmp" | awk 'NR == 2 { print $2 }')
echo "smtp bench: $(uname -srm), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "data in $tmp ($fs)"
echo "server: $bin, $nworkers workers, 127.0.0.1:$port, LMDB store, error_log at notice, no TLS;" \
     "4 KB messages (4096 bytes as stored, before Return-Path and Received)"
echo "memory at start, master + workers: VmRSS $(mem_sum VmRSS) kB, RssAnon $(mem_sum RssAnon) kB"

# a short warm-up, not measured: the store's first pages, the workers' pools
"$tmp/smtp_load" -p "$port" -t "$cap" -s 20 -n 20 -c 10 -P -r user@bench.test \
    >"$tmp/load.out" 2>&1 || { cat "$tmp/load.out"; fail "the warm-up failed"; }
ok=$(awk '/accepted/ { print $4 }' "$tmp/load.out")
accepted_total=$((accepted_total + ${ok:-0}))
delivered_total=$((delivered_total + ${ok:-0}))

# ---- the runs ----

run "(a) 1 session, 1 message per connection" 1 \
    -s 1 -n 3000 -c 1 -r user@bench.test
run "(b) 1 session, 100 messages per connection, pipelined" 1 \
    -s 1 -n 5000 -c 100 -P -r user@bench.test
run "(c) 20 sessions, 1 message per connection" 1 \
    -s 20 -n 600 -c 1 -r user@bench.test
run "(d) 20 sessions, 100 messages per connection, pipelined" 1 \
    -s 20 -n 1500 -c 100 -P -r user@bench.test
run "(e) as (d), 2 recipients per message" 2 \
    -s 20 -n 1000 -c 100 -P -r user@bench.test,second@bench.test

# ---- the server after the runs ----

echo "memory at the end, master + workers: VmHWM $(mem_sum VmHWM) kB (the sum of each" \
     "process's peak), VmRSS $(mem_sum VmRSS) kB, RssAnon $(mem_sum RssAnon) kB," \
     "RssFile $(mem_sum RssFile) kB (the store's map, counted in each process)"
echo "data.mdb: $(du -k "$tmp/var/mail/data.mdb" 2>/dev/null | cut -f1) kB on disk"

sent=$(grep -c 'status=sent' "$tmp/error.log")
echo "error log: $sent \"status=sent\" notices for $accepted_total messages accepted"
[ "$sent" -eq "$accepted_total" ] || { status=1; echo "    FAILED: they differ"; }
others=$(grep -Ev '\[notice\]|\[info\]' "$tmp/error.log")
if [ -n "$others" ]; then
    echo "error log: $(echo "$others" | wc -l) lines above notice, the first ones:"
    echo "$others" | head -5 | sed 's/^/    /'
fi
if grep -qE '\[(alert|emerg|crit)\]' "$tmp/error.log"; then
    status=1
    echo "    FAILED: the error log has alerts"
fi

stored=$(ctl stats | awk '$1 == "messages:" { print $2 }')
echo "store: $stored messages, for $delivered_total deliveries accepted"
[ "${stored:-0}" -eq "$delivered_total" ] || { status=1; echo "    FAILED: they differ"; }

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ $status -eq 0 ] || echo "smtp bench: FAILED"
exit $status

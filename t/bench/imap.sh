#!/bin/sh
# Benchmark of the IMAP module (not a test: it prints figures).
#
#   (a) FETCH throughput on a 10,000-message mailbox (4 KB messages):
#       UID FETCH 1:* (FLAGS), (ENVELOPE BODYSTRUCTURE), and BODY.PEEK[]
#   (b) SELECT and STATUS of a 100,000-message mailbox
#   (c) the server's memory with 1,000 and 10,000 logged-in sessions in IDLE
#       on an INBOX of 20 messages: RssAnon (private memory) and RSS of the
#       master and the workers, before and after, per connection
#
# The client is t/bench/imap_load.c, compiled into the temporary directory.
# The server is the built objs/facteur (FACTEUR_BUILDDIR to change), 2
# workers, the LMDB store under $TMPDIR, no TLS (auth_plaintext on: TLS
# adds OpenSSL's own ~17 KB per connection, measured apart in the metrics
# bench).  The users' password is a SHA512-CRYPT hash of 1,000 rounds, so
# that 10,000 logins take seconds, not minutes of yescrypt.
# Knobs: FA_BENCH_IDLE (default "1000 10000"), FA_BENCH_BIG (messages in the
# big mailbox, default 100000), FA_BENCH_KEEP=1 keeps the directory.

set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/t/bench/lib/bench.sh"
builddir=${FACTEUR_BUILDDIR:-objs}
case $builddir in /*) ;; *) builddir=$root/$builddir ;; esac
bin=$builddir/facteur
ctl=$builddir/facteurctl
idle_counts=${FA_BENCH_IDLE:-1000 10000}
big=${FA_BENCH_BIG:-100000}

if [ ! -x "$bin" ] || [ ! -x "$ctl" ]; then
    echo "imap bench: $bin or $ctl is not built (run make)"
    exit 1
fi
command -v python3 >/dev/null || { echo "imap bench: python3 is needed"; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/facteur-bench.XXXXXX") || exit 1
master=
idler=

cleanup() {
    [ -n "$idler" ] && kill "$idler" 2>/dev/null
    stop_server "$master"
    report_alerts imap "$tmp/error.log"
    [ "${FA_BENCH_KEEP:-}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(free_port)
cc -O2 -o "$tmp/imap_load" "$root/t/bench/imap_load.c" || exit 1

cat > "$tmp/facteur.conf" <<EOF
worker_processes 2;
worker_connections 12000;
pid facteur.pid;
error_log error.log notice;
auth_directory auth;
storage lmdb { path mail; }
imap {
    auth_plaintext on;
    default_folders off;
    server { listen 127.0.0.1:$port backlog=4096; }
}
EOF

# the users, with a cheap hash (see the top)
hash=$(python3 -c 'import crypt; print(crypt.crypt("bench", "$6$rounds=1000$benchsalt"))' 2>/dev/null \
       || openssl passwd -6 -salt benchsal bench)
printf 'bench@bench.test:{SHA512-CRYPT}%s\nbig@bench.test:{SHA512-CRYPT}%s\nidle@bench.test:{SHA512-CRYPT}%s\n' \
    "$hash" "$hash" "$hash" > "$tmp/users"
fctl() { "$ctl" -p "$tmp/" -c "$tmp/facteur.conf" "$@"; }
fctl domain add bench.test >/dev/null
fctl import passwd-file "$tmp/users" >/dev/null || exit 1

mbox() {   # N FILE: N messages of 4 KB
    python3 - "$1" "$2" <<'EOF'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
body = ("y" * 74 + "\n") * 52
with open(path, "w") as f:
    for i in range(n):
        f.write("From MAILER-DAEMON Thu Nov 19 10:00:00 2026\n"
                "From: Sender %d <s%d@example.net>\nTo: bench@bench.test\n"
                "Subject: message number %d\nMessage-ID: <%d@bench>\n"
                "Date: Thu, 19 Nov 2026 10:00:00 +0000\n\n%s\n" % (i, i, i, i, body))
EOF
}
mbox 10000 "$tmp/10k.mbox"
mbox "$big" "$tmp/big.mbox"
mbox 20 "$tmp/idle.mbox"
t0=$(date +%s.%N)
fctl import mbox bench@bench.test "$tmp/10k.mbox" >/dev/null || exit 1
fctl import mbox big@bench.test "$tmp/big.mbox" >/dev/null || exit 1
t1=$(date +%s.%N)
fctl import mbox idle@bench.test "$tmp/idle.mbox" >/dev/null || exit 1
rm -f "$tmp/10k.mbox" "$tmp/big.mbox" "$tmp/idle.mbox"

echo "imap bench: $(uname -srm), $(nproc) CPUs, data in $tmp" \
     "($(df -T "$tmp" | awk 'NR == 2 { print $2 }'))"
echo "setup: 10,000 + $big messages imported in $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s (facteurctl import mbox)"

"$bin" -p "$tmp/" -c "$tmp/facteur.conf" &
master=$!
i=0
while ! python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
    [ $i -gt 100 ] && { echo "imap bench: the server did not start"; cat "$tmp/error.log"; exit 1; }
done

# --- (a) FETCH -----------------------------------------------------------------
echo "(a) FETCH on a 10,000-message mailbox (one client; second run shown, warm):"
for what in "UID FETCH 1:* (FLAGS)" "UID FETCH 1:* (ENVELOPE BODYSTRUCTURE)" \
            "UID FETCH 1:* (BODY.PEEK[])"; do
    out=$("$tmp/imap_load" run 127.0.0.1 "$port" bench@bench.test bench INBOX "$what" 2) \
        || { echo "imap bench: FETCH failed: $out"; exit 1; }
    echo "$out" | awk -v what="$what" '
        /^run_ms/ { ms = $2; bytes = $4 }
        END { printf "    %-42s %8.1f ms  %7.0f messages/s  %6.1f MB/s\n", what, ms,
                     10000 / (ms / 1000), bytes / 1048576 / (ms / 1000) }'
done

# --- (b) SELECT and STATUS -------------------------------------------------------
echo "(b) a $big-message mailbox:"
out=$("$tmp/imap_load" run 127.0.0.1 "$port" big@bench.test bench INBOX "NOOP" 1) \
    || { echo "imap bench: SELECT failed: $out"; exit 1; }
echo "$out" | awk '/^select_ms/ { printf "    SELECT: %.1f ms (cold, first time in this process)\n", $2 }'
out=$("$tmp/imap_load" run 127.0.0.1 "$port" big@bench.test bench INBOX "NOOP" 1)
echo "$out" | awk '/^select_ms/ { printf "    SELECT: %.1f ms (again)\n", $2 }'
out=$("$tmp/imap_load" status 127.0.0.1 "$port" big@bench.test bench INBOX 20) \
    || { echo "imap bench: STATUS failed: $out"; exit 1; }
echo "$out" | sort -k2 -n | awk '{ v[NR] = $2 } END { printf "    STATUS: median %.3f ms, max %.3f ms (20 runs)\n", v[int(NR / 2) + 1], v[NR] }'

# --- (c) memory of IDLE sessions ---------------------------------------------------
mem() {   # RssAnon and RSS of the master and workers, kB
    pids="$master $(pgrep -P "$master" | tr '\n' ' ')"
    awk '/^RssAnon:/ { a += $2 } /^VmRSS:/ { r += $2 } END { print a, r }' \
        $(for p in $pids; do echo /proc/$p/status; done)
}
echo "(c) memory with sessions logged in, INBOX (20 messages) selected, in IDLE:"
for n in $idle_counts; do
    set -- $(mem); a0=$1; r0=$2
    fifo="$tmp/idle.fifo"; rm -f "$fifo"; mkfifo "$fifo"
    "$tmp/imap_load" idle 127.0.0.1 "$port" idle@bench.test bench "$n" < "$fifo" > "$tmp/idle.out" &
    idler=$!
    exec 3> "$fifo"
    i=0
    while ! grep -q ready "$tmp/idle.out" 2>/dev/null; do
        sleep 0.2; i=$((i + 1))
        kill -0 "$idler" 2>/dev/null || { echo "imap bench: the IDLE client failed"; exit 1; }
        [ $i -gt 1500 ] && { echo "imap bench: $n sessions did not get ready"; exit 1; }
    done
    sleep 1
    set -- $(mem); a1=$1; r1=$2
    echo "$n $a0 $a1 $r0 $r1" | awk '{
        printf "    %6d sessions: private memory +%d kB (%.0f bytes each), RSS +%d kB (%.0f bytes each)\n",
               $1, $3 - $2, ($3 - $2) * 1024 / $1, $5 - $4, ($5 - $4) * 1024 / $1 }'
    exec 3>&-
    wait "$idler"
    idler=
    sleep 1
done
grep -qE '\[(alert|emerg|crit)\]' "$tmp/error.log" && exit 1
exit 0

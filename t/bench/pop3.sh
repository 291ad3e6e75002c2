#!/bin/sh
# Benchmark of the POP3 module (not a test: it prints figures).
#
#   (a) RETR of 4 KB messages (a 10,000-message maildrop) and of 1 MB
#       messages (100 of them): messages/s and MB/s, one command at a time
#       (send RETR, read to the final ".") and pipelined (64 RETRs written
#       at once, 32 more each time half are answered); one client, each
#       run twice, the second (warm) shown
#   (b) python3 poplib: 1,000 RETRs of 4 KB in one session, as a mail
#       client would (Dovecot takes 0.2-0.3 s for that)
#   (c) the server's memory: peak RSS (VmHWM) and private memory (RssAnon)
#       of each worker afterwards
#
# The client is t/bench/pop3_load.c, compiled into the temporary directory.
# The server is the built objs/facteur (FACTEUR_BUILDDIR to change), 2
# workers, the LMDB store under $TMPDIR, no TLS (auth_plaintext on).  The
# users' password is a SHA512-CRYPT hash of 1,000 rounds.  Knobs:
# FA_BENCH_SMALL (4 KB messages, default 10000), FA_BENCH_LARGE (1 MB
# messages, default 100), FA_BENCH_KEEP=1 keeps the directory.

set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/t/bench/lib/bench.sh"
builddir=${FACTEUR_BUILDDIR:-objs}
case $builddir in /*) ;; *) builddir=$root/$builddir ;; esac
bin=$builddir/facteur
ctl=$builddir/facteurctl
small=${FA_BENCH_SMALL:-10000}
large=${FA_BENCH_LARGE:-100}

if [ ! -x "$bin" ] || [ ! -x "$ctl" ]; then
    echo "pop3 bench: $bin or $ctl is not built (run make)"
    exit 1
fi
command -v python3 >/dev/null || { echo "pop3 bench: python3 is needed"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/facteur-bench.XXXXXX") || exit 1
master=

cleanup() {
    stop_server "$master"
    report_alerts pop3 "$tmp/error.log"
    [ "${FA_BENCH_KEEP:-}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(free_port)
cc -O2 -o "$tmp/pop3_load" "$root/t/bench/pop3_load.c" || exit 1

cat > "$tmp/facteur.conf" <<EOF
worker_processes 2;
pid facteur.pid;
error_log error.log notice;
auth_directory auth;
storage lmdb { path mail; }
pop3 {
    auth_plaintext on;
    pop3_lock_path pop3;
    server { listen 127.0.0.1:$port; }
}
EOF

# the users, with a cheap hash (see the top)
hash=$(python3 -c 'import crypt; print(crypt.crypt("bench", "$6$rounds=1000$benchsalt"))' 2>/dev/null \
       || openssl passwd -6 -salt benchsal bench)
for u in small large poplib; do
    printf '%s@bench.test:{SHA512-CRYPT}%s\n' "$u" "$hash"
done > "$tmp/users"
fctl() { "$ctl" -p "$tmp/" -c "$tmp/facteur.conf" "$@"; }
fctl domain add bench.test >/dev/null
fctl import passwd-file "$tmp/users" >/dev/null || exit 1

mbox() {   # N LINES FILE: N messages of about LINES x 75 bytes
    python3 - "$1" "$2" "$3" <<'EOF'
import sys
n, lines, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
body = ("y" * 74 + "\n") * lines
with open(path, "w") as f:
    for i in range(n):
        f.write("From MAILER-DAEMON Thu Nov 19 10:00:00 2026\n"
                "From: Sender %d <s%d@example.net>\nTo: bench@bench.test\n"
                "Subject: message number %d\nMessage-ID: <%d@bench>\n"
                "Date: Thu, 19 Nov 2026 10:00:00 +0000\n\n%s\n" % (i, i, i, i, body))
EOF
}
mbox "$small" 52 "$tmp/small.mbox"
mbox "$large" 13800 "$tmp/large.mbox"
mbox 1000 52 "$tmp/poplib.mbox"
t0=$(date +%s.%N)
imp() { fctl import mbox "$1@bench.test" "$tmp/$1.mbox" >/dev/null 2>"$tmp/import.err" || { cat "$tmp/import.err"; exit 1; }; }
imp small; imp large; imp poplib
t1=$(date +%s.%N)
rm -f "$tmp/small.mbox" "$tmp/large.mbox" "$tmp/poplib.mbox"

echo "pop3 bench: $(uname -srm), $(nproc) CPUs, data in $tmp" \
     "($(df -T "$tmp" | awk 'NR == 2 { print $2 }'))"
echo "setup: $small messages of 4 KB, $large of 1 MB and 1,000 of 4 KB imported in" \
     "$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s (facteurctl import mbox)"

"$bin" -p "$tmp/" -c "$tmp/facteur.conf" &
master=$!
i=0
while ! python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
    [ $i -gt 100 ] && { echo "pop3 bench: the server did not start"; cat "$tmp/error.log"; exit 1; }
done

# --- (a) RETR ---------------------------------------------------------------------
load() {   # WHAT USER COUNT [WINDOW]: the second of two runs
    what=$1; shift
    for run in 1 2; do
        out=$("$tmp/pop3_load" retr 127.0.0.1 "$port" "$1@bench.test" bench "$2" ${3:-}) \
            || { echo "pop3 bench: RETR failed: $out"; exit 1; }
    done
    echo "$out" | awk -v what="$what" '
        /^ms/ { printf "    %-40s %8.1f ms  %7.0f messages/s  %6.1f MB/s\n", what, $2,
                       $6 / ($2 / 1000), $4 / 1048576 / ($2 / 1000) }'
}
echo "(a) RETR (one client; second run shown, warm):"
load "4 KB, one at a time ($small)" small "$small"
load "4 KB, pipelined ($small)" small "$small" 64
load "1 MB, one at a time ($large)" large "$large"
load "1 MB, pipelined ($large)" large "$large" 8

# --- (b) python3 poplib ----------------------------------------------------------------
echo "(b) python3 poplib, 1,000 RETRs of 4 KB in one session:"
for run in 1 2; do
    out=$(python3 - "$port" <<'EOF'
import poplib, sys, time
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=60)
p.user('poplib@bench.test')
p.pass_('bench')
n = p.stat()[0]
t0 = time.monotonic()
size = 0
for i in range(1, n + 1):
    size += p.retr(i)[2]
t1 = time.monotonic()
p.quit()
print("%d %.3f %d" % (n, t1 - t0, size))
EOF
) || { echo "pop3 bench: poplib failed: $out"; exit 1; }
done
echo "$out" | awk '{ printf "    %d RETRs in %.3f s (%.0f messages/s, %.1f MB/s; second run)\n",
                            $1, $2, $1 / $2, $3 / 1048576 / $2 }'

# --- (c) memory ---------------------------------------------------------------------
echo "(c) the server's memory after all that (RSS counts the store's file pages the"
echo "    worker mapped; private is its own memory):"
for p in $master $(pgrep -P "$master" | tr '\n' ' '); do
    role=worker; [ "$p" = "$master" ] && role=master
    awk -v role="$role" -v pid="$p" '
        /^VmHWM:/ { hwm = $2 } /^VmRSS:/ { rss = $2 } /^RssAnon:/ { anon = $2 }
        END { printf "    %-6s %-7s peak RSS %6.1f MB, RSS %6.1f MB, private %5.1f MB\n",
                     role, pid, hwm / 1024, rss / 1024, anon / 1024 }' "/proc/$p/status"
done
grep -qE '\[(alert|emerg|crit)\]' "$tmp/error.log" && exit 1
exit 0

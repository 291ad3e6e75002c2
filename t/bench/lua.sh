#!/bin/sh
# Benchmark of the Lua hook engine (not a test: it prints figures).
#
# What a realistic policy of three Lua hooks costs an MX: messages/s
# accepted and durably stored (250 after the data only once the store's
# commit is durable), 4 KB messages to a local user, from two servers with
# the same settings, side by side:
#   none    no Lua at all
#   hooks   three hooks, each doing what a real one does:
#     rcpt          a greylist: the key (client /24 | sender | recipient,
#                   lower case) and one facteur.kv.get of it.  The triplet
#                   of the load was let through before the runs (its first
#                   attempt got the 451, its retry passed), so every
#                   recipient passes: the steady state of a greylist.
#     data_headers  mailing-list detection: two facteur.regex (PCRE2,
#                   compiled at the file's top level) over Subject and
#                   From (txn:header); the result in session.vars
#     route         by recipient domain, list mail into a folder
#                   (txn:deliver), the rest left in INBOX
# for two load shapes, each run alternately on the two servers (none,
# hooks, none, hooks) to spread the noise of the machine over both:
#   (a) 20 parallel sessions, one message per connection
#   (b) 20 parallel sessions, 100 messages per connection, pipelined
# For each run: messages/s and the workers' CPU time (utime + stime from
# /proc) per message, in all and in their main threads (the event loops,
# where the hooks run; without the store's writer thread); for each shape
# the means, the throughput overhead ((none - hooks) / none) and the CPU
# the hooks add per message; the workers' RssAnon.  On a busy machine the
# throughput varies more from run to run than the hooks cost: the CPU per
# message is the steadier figure, and it too depends on the pace (a
# faster run groups more work per wakeup and per fsync).  At the end: the
# hooks really ran (the route hook filed every message of the load in the
# list folder, whose choice needs the data_headers hook's regex; an
# unknown triplet still gets the greylist's 451), and each store holds
# every accepted message.
#
# The load comes from t/bench/smtp_load.c (one thread per session, plain
# blocking sockets; sender news@lists.bench.test, which the From regex
# takes for a list), compiled with cc into the temporary directory.  The
# servers are the built objs/facteur (FACTEUR_BUILDDIR to change), each
# with 2 workers (as t/bench/smtp.sh), the LMDB store and the error log (at
# notice, one line per message) in a temporary directory under $TMPDIR
# (default /tmp: the figures are that disk's fsync), on free loopback
# ports; they are always stopped at the end.  A run lasts FA_BENCH_CAP
# seconds (default 10; no message starts after it), so the whole bench
# takes about 10 times that plus a few seconds.  FA_BENCH_WORKERS (default
# 2), FA_BENCH_KEEP=1 keeps the temporary directory.  The exit status is 1
# when a server failed, a reply was unexpected, a store or a log miss a
# message, or the hooks did not run.

set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/t/bench/lib/bench.sh"
builddir=${FACTEUR_BUILDDIR:-objs}
case $builddir in /*) ;; *) builddir=$root/$builddir ;; esac
bin=$builddir/facteur
ctl=$builddir/facteurctl
cap=${FA_BENCH_CAP:-10}
nworkers=${FA_BENCH_WORKERS:-2}
sender=news@lists.bench.test
rcpt=user@bench.test
folder=Lists

if [ ! -x "$bin" ] || [ ! -x "$ctl" ]; then
    echo "lua bench: $bin or $ctl is not built (run make)"
    exit 1
fi
command -v cc >/dev/null || { echo "lua bench: a C compiler (cc) is needed"; exit 1; }
command -v python3 >/dev/null || { echo "lua bench: python3 is needed"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/facteur-bench.XXXXXX") || exit 1
master_none=
master_hooks=
status=0

cleanup() {
    stop_server "$master_none"
    stop_server "$master_hooks"
    [ "${FA_BENCH_KEEP:-}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "lua bench: $*"
    exit 1
}

# ctl SERVER ARGS...: facteurctl on that server's configuration
ctl() {
    d=$tmp/$1; shift
    "$ctl" -p "$d/" -c "$d/facteur.conf" "$@"
}

# the master's pid, the port of a server (none or hooks)
master_of() { eval echo "\$master_$1"; }
port_of() { eval echo "\$port_$1"; }

workers() {
    pgrep -P "$(master_of "$1")" | sort -n | tr '\n' ' '
}

# CPU time of a server's workers, in clock ticks (all their threads)
worker_ticks() {
    # shellcheck disable=SC2046
    proc_ticks all $(workers "$1")
}

# the same, of their main threads only: the event loop, where the hooks
# run (not the store's writer thread, whose CPU per message depends on how
# many commits a run's pace groups into one fsync)
loop_ticks() {
    # shellcheck disable=SC2046
    proc_ticks main $(workers "$1")
}

# sum of a /proc/PID/status field (kB) over a server's workers
workers_mem() {
    s=0
    for p in $(workers "$1"); do
        kb=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null)
        s=$((s + ${kb:-0}))
    done
    echo $s
}

# ---- the hooks ----

write_hooks() {
    mkdir -p "$1"
    cat >"$1/greylist.lua" <<'EOF'
-- rcpt: greylisting.  A triplet (client /24, sender, recipient) seen for
-- the first time is deferred; its retry passes and from then on the
-- triplet is in the pass list: one facteur.kv.get per recipient.  (No
-- delay, and no renewal of the pass record: a bench.)
local kv = facteur.kv

local function network(ip)
    local net = ip:match("^(%d+%.%d+%.%d+)%.%d+$")
    return net and net .. ".0/24" or ip
end

return function(session, txn)
    if session.user then
        return
    end
    local key = network(session.ip) .. "|" .. txn.sender:lower() .. "|"
                .. txn.recipient.address:lower()
    if kv.get("greylist:pass:" .. key) then
        return
    end
    if kv.get("greylist:wait:" .. key) then
        kv.set("greylist:pass:" .. key, "1", 36 * 24 * 3600)
        kv.del("greylist:wait:" .. key)
        return
    end
    kv.set("greylist:wait:" .. key, tostring(facteur.now()), 24 * 3600)
    return facteur.defer(451, "4.7.1 Greylisted, please try again later")
end
EOF
    cat >"$1/lists.lua" <<'EOF'
-- data_headers: is it list mail?  By its Subject or its From.
local subject_re = facteur.regex([=[^\s*\[[^\]]{1,40}\]|\b(newsletter|digest|unsubscribe)\b]=], "i")
local from_re = facteur.regex([=[[<@.](lists?|news(letter)?|bounces?)[.@-]|no-?reply@]=], "i")

return function(session, txn)
    local subject = txn:header("Subject")
    local from = txn:header("From")
    session.vars.list = (subject ~= nil and subject_re:match(subject))
                        or (from ~= nil and from_re:match(from))
end
EOF
    cat >"$1/route.lua" <<'EOF'
-- route: list mail into the folder its recipient's domain uses for it;
-- the rest, and other domains, in INBOX.
local list_folder = {
    ["bench.test"] = "Lists",
    ["example.org"] = "Newsletters",
}

return function(session, txn)
    if not session.vars.list then
        return
    end
    for _, rcpt in ipairs(txn:recipients()) do
        local folder = list_folder[rcpt.domain]
        if folder then
            txn:deliver(folder, rcpt.address)
        end
    end
end
EOF
}

# ---- the servers ----

# setup SERVER: its configuration, its domain and user
setup() {
    d=$tmp/$1
    mkdir -p "$d/var"
    port=$(free_port)
    eval "port_$1=$port"
    lua=
    if [ "$1" = hooks ]; then
        write_hooks "$d/lua"
        lua="lua_kv_path $d/var/lua-kv;"
    fi
    cat >"$d/facteur.conf" <<EOF
daemon off;
worker_processes $nworkers;
worker_connections 4096;
error_log $d/error.log notice;
pid $d/facteur.pid;
auth_directory $d/var/auth;
storage lmdb { path $d/var/mail; }
hostname mx.bench.test;
$lua
smtp {
    smtp_spool_path $d/var/spool;
    server { listen 127.0.0.1:$port backlog=1024; }
EOF
    if [ "$1" = hooks ]; then
        cat >>"$d/facteur.conf" <<EOF
    lua_hook rcpt $d/lua/greylist.lua;
    lua_hook data_headers $d/lua/lists.lua;
    lua_hook route $d/lua/route.lua;
EOF
    fi
    echo "}" >>"$d/facteur.conf"
    ctl "$1" domain add bench.test >/dev/null || fail "$1: facteurctl domain add failed"
    echo "bench secret" | ctl "$1" user add "$rcpt" --password-stdin >/dev/null \
        || fail "$1: facteurctl user add $rcpt failed"
    ctl "$1" mailbox create "$rcpt" "$folder" >/dev/null \
        || fail "$1: facteurctl mailbox create $rcpt $folder failed"
}

start() {
    d=$tmp/$1
    "$bin" -p "$d/" -c "$d/facteur.conf" </dev/null >"$d/stdout.log" 2>&1 &
    eval "master_$1=$!"
    if ! wait_for 10 listening "$(port_of "$1")"; then
        echo "lua bench: the server ($1) did not start:"
        cat "$d/stdout.log" "$d/error.log" 2>/dev/null | tail -5
        exit 1
    fi
    nw() { [ "$(workers "$1" | wc -w)" -eq "$nworkers" ]; }
    wait_for 5 nw "$1" || fail "the server ($1) has not $nworkers workers: $(workers "$1")"
}

# send SERVER SENDER FROM SUBJECT: one message with smtplib; prints "ok" or
# the refusal ("rcpt 451 ...")
send() {
    python3 - "$(port_of "$1")" "$2" "$rcpt" "$3" "$4" <<'EOF'
import smtplib, sys
port, sender, rcpt, header_from, subject = sys.argv[1:]
msg = ("From: %s\r\nTo: <%s>\r\nSubject: %s\r\n\r\nhello\r\n"
       % (header_from, rcpt, subject))
try:
    with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as s:
        s.sendmail(sender, [rcpt], msg)
    print("ok")
except smtplib.SMTPRecipientsRefused as e:
    code, text = e.recipients[rcpt]
    print("rcpt", code, text.decode(errors="replace"))
except (smtplib.SMTPException, OSError) as e:
    print("error", e)
EOF
}

# ---- the runs ----

hz=$(getconf CLK_TCK)
accepted_none=0
accepted_hooks=0

# run SERVER SHAPE SMTP_LOAD-ARGS...: one run; its figures in $tmp/SHAPE.SERVER
run() {
    srv=$1 shape=$2; shift 2
    before=$(worker_ticks "$srv")
    before_loop=$(loop_ticks "$srv")
    pids=$(workers "$srv")
    timeout $((cap + 60)) "$tmp/smtp_load" -p "$(port_of "$srv")" -t "$cap" -f "$sender" \
        -r "$rcpt" "$@" >"$tmp/load.out" 2>"$tmp/load.err"
    rc=$?
    after=$(worker_ticks "$srv")
    after_loop=$(loop_ticks "$srv")
    out=$(cat "$tmp/load.out")
    ok=$(echo "$out" | awk '/accepted/ { print $4 }')
    rate=$(echo "$out" | awk '/messages\/s/ { print $(NF - 1) }')
    ok=${ok:-0}
    eval "accepted_$srv=\$((accepted_$srv + ok))"
    echo "$ok ${rate:-0} $((after - before)) $((after_loop - before_loop)) $hz" |
    awk -v srv="$srv" '{
        us = $1 > 0 ? $3 / $5 * 1e6 / $1 : 0
        loop = $1 > 0 ? $4 / $5 * 1e6 / $1 : 0
        printf "    %-5s %7.1f messages/s %6d accepted; workers CPU %5.2f s: %4.0f us per" \
               " message, %4.0f us in the event loops\n", srv, $2, $1, $3 / $5, us, loop
        print $2, us, loop >> "'"$tmp/$shape.$srv"'" }'
    if [ $rc -ne 0 ]; then
        status=1
        echo "    FAILED (smtp_load exit status $rc):"
        sed 's/^/    /' "$tmp/load.out" "$tmp/load.err" | head -8
    fi
    kill -0 "$(master_of "$srv")" 2>/dev/null || fail "the server ($srv) is gone"
    [ "$(workers "$srv")" = "$pids" ] || { status=1; echo "    FAILED: the workers of" \
                                          "$srv changed (a worker died?): $pids -> $(workers "$srv")"; }
}

# shape SHAPE LABEL SMTP_LOAD-ARGS...: none, hooks, none, hooks, and the means
shape() {
    sh=$1 label=$2; shift 2
    echo "$label:"
    rm -f "$tmp/$sh.none" "$tmp/$sh.hooks"
    for srv in none hooks none hooks; do
        run "$srv" "$sh" "$@"
    done
    cat "$tmp/$sh.none" "$tmp/$sh.hooks" | awk '
        { k = NR <= 2 ? 0 : 1; n[k]++; r[k] += $1; c[k] += $2; l[k] += $3 }
        END {
            rn = r[0] / n[0]; rh = r[1] / n[1]; cn = c[0] / n[0]; ch = c[1] / n[1]
            ln = l[0] / n[0]; lh = l[1] / n[1]
            printf "    mean: none %.1f messages/s, %.0f us CPU per message (%.0f in the loops);" \
                   " hooks %.1f messages/s, %.0f us (%.0f)\n", rn, cn, ln, rh, ch, lh
            printf "    overhead of the hooks: %.1f%% of the throughput ((none - hooks) / none);" \
                   " CPU per message %+.0f us (%+.1f%%), in the event loops %+.0f us (%+.1f%%)\n",
                   (rn > 0 ? (rn - rh) / rn * 100 : 0), ch - cn, (cn > 0 ? (ch - cn) / cn * 100 : 0),
                   lh - ln, (ln > 0 ? (lh - ln) / ln * 100 : 0)
        }'
    echo "    workers RssAnon after the runs: none $(workers_mem none RssAnon) kB," \
         "hooks $(workers_mem hooks RssAnon) kB"
}

cc -O2 -pthread -o "$tmp/smtp_load" "$root/t/bench/smtp_load.c" \
    || fail "cannot compile t/bench/smtp_load.c"

setup none
setup hooks
start none
start hooks

# the triplet of the load through the greylist: deferred, then let through
r=$(send hooks "$sender" "Owner <owner@bench.test>" "About the bench")
case $r in "rcpt 451"*) ;; *) fail "the greylist hook did not defer a new triplet: $r" ;; esac
r=$(send hooks "$sender" "Owner <owner@bench.test>" "About the bench")
[ "$r" = ok ] || fail "the greylist hook did not let the retry through: $r"
seeded=1

fs=$(df -T "$tmp" | awk 'NR == 2 { print $2 }')
echo "lua bench: $(uname -srm), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "data in $tmp ($fs)"
echo "servers: $bin, $nworkers workers each, LMDB store, error_log at notice, no TLS;" \
     "4 KB messages; runs of $cap s"
echo "  none:  no Lua, 127.0.0.1:$(port_of none)"
echo "  hooks: rcpt greylist (kv.get), data_headers 2 regexes (Subject, From), route by domain" \
     "(txn:deliver), 127.0.0.1:$(port_of hooks)"
echo "workers RssAnon at start: none $(workers_mem none RssAnon) kB," \
     "hooks $(workers_mem hooks RssAnon) kB"

# a short warm-up of each, not measured: the store's first pages, the pools
for srv in none hooks; do
    "$tmp/smtp_load" -p "$(port_of "$srv")" -t "$cap" -s 20 -n 20 -c 10 -P -f "$sender" \
        -r "$rcpt" >"$tmp/load.out" 2>&1 || { cat "$tmp/load.out"; fail "the warm-up failed"; }
    ok=$(awk '/accepted/ { print $4 }' "$tmp/load.out")
    eval "accepted_$srv=\$((accepted_$srv + ${ok:-0}))"
done

shape a "(a) 20 sessions, 1 message per connection" -s 20 -n 100000 -c 1
shape b "(b) 20 sessions, 100 messages per connection, pipelined" -s 20 -n 100000 -c 100 -P

# ---- the checks ----

echo "workers at the end: RssAnon none $(workers_mem none RssAnon) kB," \
     "hooks $(workers_mem hooks RssAnon) kB; VmHWM none $(workers_mem none VmHWM) kB," \
     "hooks $(workers_mem hooks VmHWM) kB"

# the greylist still defers what it does not know
r=$(send hooks stranger@elsewhere.test "<stranger@elsewhere.test>" "Hello")
case $r in
"rcpt 451"*) echo "greylist: an unknown triplet gets \"${r#rcpt }\"" ;;
*) status=1; echo "    FAILED: the greylist hook let an unknown triplet through: $r" ;;
esac

# the route hook filed the load's messages in the folder (a choice that
# needs the data_headers hook), and the seed's retry (From a person) in INBOX
for srv in none hooks; do
    ctl "$srv" export mbox "$rcpt" "$tmp/export.$srv" >"$tmp/export.$srv.log" 2>&1 \
        || { status=1; echo "    FAILED: facteurctl export mbox ($srv):"; cat "$tmp/export.$srv.log"; }
done
count() {
    f=$tmp/export.$1/$2.mbox
    if [ -f "$f" ]; then grep -c '^From ' "$f"; else echo 0; fi
}
in_folder=$(count hooks "$folder")
in_inbox=$(count hooks INBOX)
echo "hooks: $in_folder messages in $folder, $in_inbox in INBOX, for $accepted_hooks" \
     "accepted from the load and $seeded from the greylist seed"
if [ "$in_folder" -ne "$accepted_hooks" ] || [ "$in_inbox" -ne "$seeded" ]; then
    status=1
    echo "    FAILED: the hooks did not run on every message"
fi
in_inbox=$(count none INBOX)
in_folder=$(count none "$folder")
echo "none: $in_inbox messages in INBOX, $in_folder in $folder, for $accepted_none accepted"
[ "$in_inbox" -eq "$accepted_none" ] && [ "$in_folder" -eq 0 ] \
    || { status=1; echo "    FAILED: the store does not hold what was accepted"; }
rm -rf "$tmp/export.none" "$tmp/export.hooks"

for srv in none hooks; do
    d=$tmp/$srv
    want=$(eval echo "\$accepted_$srv")
    [ $srv = hooks ] && want=$((want + seeded))
    stored=$(ctl "$srv" stats | awk '$1 == "messages:" { print $2 }')
    sent=$(grep -c 'status=sent' "$d/error.log")
    echo "$srv: store $stored messages, error log $sent \"status=sent\", for $want accepted"
    [ "${stored:-0}" -eq "$want" ] && [ "$sent" -eq "$want" ] \
        || { status=1; echo "    FAILED: they differ"; }
    others=$(grep -Ev '\[notice\]|\[info\]' "$d/error.log")
    if [ -n "$others" ]; then
        echo "$srv: error log: $(echo "$others" | wc -l) lines above notice, the first ones:"
        echo "$others" | head -5 | sed 's/^/    /'
    fi
    if grep -qE '\[(error|crit|alert|emerg)\]' "$d/error.log"; then
        status=1
        echo "    FAILED: the error log of $srv has errors"
    fi
done

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ $status -eq 0 ] || echo "lua bench: FAILED"
exit $status

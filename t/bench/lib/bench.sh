# What the benchmarks in t/bench/ share; sourced by them, not run:
#
#   . "$root/t/bench/lib/bench.sh"

# wait_for SECONDS COMMAND...: poll until the command succeeds
wait_for() {
    n=$(($1 * 10)); shift
    while ! "$@" 2>/dev/null; do
        n=$((n - 1))
        [ $n -gt 0 ] || return 1
        sleep 0.1
    done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# listening PORT: something accepts connections on 127.0.0.1:PORT
listening() {
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1"
}

# stop_server PID: TERM, and KILL if it is still there 10 s later
stop_server() {
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null
        i=0
        while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.1; i=$((i + 1))
        done
        kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null
    fi
}

# proc_ticks all|main PID...: CPU time (utime + stime, clock ticks) of the
# processes, all their threads or their main thread only
proc_ticks() {
    which=$1; shift
    t=0
    for p in "$@"; do
        f=/proc/$p/stat
        [ "$which" = main ] && f=/proc/$p/task/$p/stat
        # the fields after the command name, which may hold spaces
        v=$(sed 's/.*) //' "$f" 2>/dev/null | awk '{ print $12 + $13 }')
        t=$((t + ${v:-0}))
    done
    echo $t
}

# report_alerts NAME LOG: print the alert, emerg and crit lines of a server's log
report_alerts() {
    if grep -qE '\[(alert|emerg|crit)\]' "$2" 2>/dev/null; then
        echo "$1 bench: the error log has alerts:"
        grep -E '\[(alert|emerg|crit)\]' "$2" | head -5
    fi
}

#!/bin/sh
# Benchmark of the storage backend (not a test: it prints figures).
#
#   (a) durable appends/s of 4 KB messages from 1 session, from 20 sessions
#       in one process (group commit), and from 2 processes of 20 sessions
#   (b) reads/s: open a message, read its 4 KB, close
#   (c) a 100,000-message mailbox: appends/s filling it (100 sessions), the
#       time to get its STATUS and to open it, in the same process and in a
#       new one, and fetch_meta of every message
#   (d) the process's memory and the size of the data file
#
# It runs the built unit program test_storage_bench in "bench" mode, in a
# temporary directory (on the file system of $TMPDIR, default /tmp: the
# figures are that disk's fsync).  The backend is the LMDB one unless
# FACTEUR_STORAGE_CONF_SNIPPET says otherwise (see t/unit/fa_storage_test.h).
# Knobs: FA_BENCH_MESSAGES (size of the big mailbox, default 100000),
# FACTEUR_BUILDDIR (default objs), FACTEUR_TEST_KEEP=1 keeps the directory.

set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${FACTEUR_BUILDDIR:-objs}
case $builddir in /*) ;; *) builddir=$root/$builddir ;; esac
prog=$builddir/unit/test_storage_bench

if [ ! -x "$prog" ]; then
    echo "storage bench: $prog is not built (run make -f $builddir/Makefile unit)"
    exit 1
fi

echo "storage bench: $(uname -srm), $(nproc) CPUs, temporary files in ${TMPDIR:-/tmp}" \
     "($(df -T "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $2 }'))"
out=$("$prog" bench 2>&1)
status=$?
printf '%s\n' "$out" | sed -n 's/^# //p'
if [ $status -ne 0 ] || printf '%s\n' "$out" | grep -q '^not ok'; then
    echo "storage bench: FAILED"
    printf '%s\n' "$out" | grep -E '^not ok|\[(alert|emerg|crit)\]' | head -10
    exit 1
fi

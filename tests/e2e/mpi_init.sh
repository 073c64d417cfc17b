#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: sgc_init_mpi() under mpirun with no SGC_COORDINATOR anywhere: rank 0
# picks its address and a port and broadcasts them.  Loopback only.
#  - 4 ranks, settings from the environment, then from a struct: the
#    allreduce is exact;
#  - two jobs at once on the halves of MPI_COMM_WORLD: rank and size come
#    from the communicator, each job's rank 0 gets a port of its own;
#  - SGC_PORT set to a free port: the job runs on it;
#  - SGC_PORT set to a port another process holds: every rank fails with
#    the same message naming SGC_PORT and the fix, long before the timeout;
#  - a bad setting on rank 2 only: every rank fails with rank 2's message.
#   mpi_init.sh MPI_INIT_CHECK
# MPI_INIT_CHECK is "" when CMake found no MPI: then, or without mpirun,
# the test skips saying what to install.
set -uo pipefail
PROG=${1:-}
. "$(dirname "$0")/lib.sh"
need_mpi "$PROG" libsgcoll-mpi
LOGDIR=$(mktemp -d)
# No coordinator from this environment: that is the point.
unset SGC_COORDINATOR SGC_COORDINATOR_FILE SGC_PORT SGC_BIND SGC_IFNAME MASTER_ADDR
mpi=("${MPIRUN[@]}" -np 4 -x SGC_TIMEOUT_MS=30000)

# run NAME ARGS...: mpirun the check; its output in $LOGDIR/NAME.log, its
# status in $rc and its duration in $secs.
run() {
	local name=$1 t0
	shift
	t0=$(date +%s)
	timeout 150 "${mpi[@]}" "$@" >"$LOGDIR/$name.log" 2>&1
	rc=$?
	secs=$(($(date +%s) - t0))
}

# ok NAME N: the run succeeded with N jobs reporting an exact allreduce.
ok() {
	local name=$1 n=$2 got
	[ "$rc" = 0 ] || fail "$name: mpirun exited $rc: $(tail -8 "$LOGDIR/$name.log")"
	got=$(grep -c "allreduce exact" "$LOGDIR/$name.log")
	[ "$got" = "$n" ] || fail "$name: $got jobs exact, not $n: $(tail -8 "$LOGDIR/$name.log")"
	[ "$(grep -c ': ok$' "$LOGDIR/$name.log")" = 4 ] ||
		fail "$name: not every rank says ok: $(cat "$LOGDIR/$name.log")"
	echo "ok: $name ($secs s)"
}

# same_error NAME CODE WORDS...: every one of the 4 ranks failed with the
# same code and message, which holds each of WORDS, well within the
# 30 s timeout (nobody waited for it).
same_error() {
	local name=$1 code=$2 w msgs
	shift 2
	[ "$rc" != 0 ] || fail "$name: mpirun succeeded: $(tail -8 "$LOGDIR/$name.log")"
	msgs=$(sed -n 's/^rank [0-9]*: sgc_init_mpi: //p' "$LOGDIR/$name.log")
	[ "$(wc -l <<<"$msgs")" = 4 ] ||
		fail "$name: not every rank reported sgc_init_mpi's failure: $(cat "$LOGDIR/$name.log")"
	[ "$(sort -u <<<"$msgs" | wc -l)" = 1 ] || fail "$name: the ranks disagree: $msgs"
	case "$msgs" in
	"$code: "*) ;;
	*) fail "$name: error is not $code: $msgs" ;;
	esac
	for w in "$@"; do
		grep -qF -- "$w" <<<"$msgs" || fail "$name: \"$w\" not in the message: $msgs"
	done
	grep -q "a communicator despite" "$LOGDIR/$name.log" && fail "$name: a rank kept its communicator"
	[ "$secs" -lt 20 ] || fail "$name: took $secs s: ranks waited for a timeout"
	echo "ok: $name ($secs s): $(head -1 <<<"$msgs")"
}

run env -x SGC_ACCEL=off "$PROG"
ok env 1
run cfg "$PROG" -c
ok cfg 1
run split -x SGC_ACCEL=off "$PROG" -s
ok split 2

# A free port, and the same port held by another process (on 0.0.0.0, so
# that rank 0's bind to any address of this host conflicts with it).
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])')
run port -x SGC_ACCEL=off -x SGC_PORT="$port" "$PROG"
ok port 1
/usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("held", flush=True)
time.sleep(300)' "$port" >"$LOGDIR/holder.out" &
BG_PIDS+=($!)
for _ in $(seq 50); do
	grep -q held "$LOGDIR/holder.out" && break
	sleep 0.1
done
grep -q held "$LOGDIR/holder.out" || fail "could not hold UDP port $port"
run taken -x SGC_ACCEL=off -x SGC_PORT="$port" "$PROG"
same_error taken -98 "rank 0 failed" ":$port" "another process holds the port" "SGC_PORT"
stop_bg

run badrank -x SGC_ACCEL=off "$PROG" -f 2
same_error badrank -22 "rank 2 failed" "SGC_ACCEL" "bogus"

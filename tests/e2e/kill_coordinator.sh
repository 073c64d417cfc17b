#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: SIGKILL the coordinator in the middle of collectives.  The workers'
# calls fail within their timeout with a clear error, and no BPF program
# or link is left on the coordinator's host.
#   kill_coordinator.sh CLUSTER COLL_CHECK ACCEL
set -uo pipefail
CLUSTER=$1
CHECK=$2
ACCEL=${3:-ebpf}
. "$(dirname "$0")/lib.sh"
need_root
command -v bpftool >/dev/null || { echo "SKIP: bpftool is not installed" >&2; exit 77; }

CLUSTER_NAME=sgckill$$
LOGDIR=$(mktemp -d)
"$CLUSTER" up "$CLUSTER_NAME" --hosts 2 >/dev/null || fail "cluster up"
# Each rank records its PID, then runs collectives for a long time.
"$CLUSTER" run "$CLUSTER_NAME" --ranks 5 --accel "$ACCEL" --timeout-ms 2000 --deadline 60 \
	--logdir "$LOGDIR/run" -- \
	bash -c 'echo $$ > "'"$LOGDIR"'/pid.$SGC_RANK"; exec "$0" "$@"' \
	"$CHECK" -s allreduce,bcast -c 1,363,20000 -b 363 -i 1000 >/dev/null 2>&1 &
run_pid=$!
BG_PIDS+=("$run_pid")
for ((i = 0; i < 100; i++)); do
	[ -s "$LOGDIR/pid.0" ] && break
	sleep 0.1
done
[ -s "$LOGDIR/pid.0" ] || fail "the coordinator did not start"
sleep 1.5	# well into the collectives
if [ "$ACCEL" = ebpf ]; then
	"$CLUSTER" exec "$CLUSTER_NAME" c -- bpftool net show dev eth0 | grep -q gather_prog ||
		fail "the eBPF path was not attached while the coordinator ran"
fi
kill -9 "$(cat "$LOGDIR/pid.0")"
t0=$(date +%s)
wait "$run_pid"
t1=$(date +%s)
BG_PIDS=()
[ $((t1 - t0)) -le 20 ] || fail "workers took $((t1 - t0)) s to give up after the coordinator died"
for r in 1 2 3 4; do
	grep -qE "coordinator|timed out|did not answer|no result" "$LOGDIR/run/rank-$r.log" ||
		fail "rank $r's error does not explain: $(tail -3 "$LOGDIR/run/rank-$r.log")"
done
left=$("$CLUSTER" exec "$CLUSTER_NAME" c -- bpftool net show dev eth0 2>/dev/null | grep -cE "gather_prog|notify_prog|scatter_prog")
[ "$left" = 0 ] || fail "$left BPF program(s) still attached after SIGKILL: $("$CLUSTER" exec "$CLUSTER_NAME" c -- bpftool net show dev eth0)"
if bpftool link list 2>/dev/null | grep -qE "gather_prog|notify_prog|scatter_prog"; then
	fail "a libsgcoll BPF link survived the coordinator"
fi
echo "ok: coordinator killed, workers failed in $((t1 - t0)) s with clear errors, nothing left attached"

#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: a rank that never starts, and a rank started with the wrong world
# size, give errors that name the rank and the fix, within the timeout; so
# does a custom reduction that is not a BPF object.
#   init_errors.sh CLUSTER COLL_CHECK
set -uo pipefail
CLUSTER=$1
CHECK=$2
. "$(dirname "$0")/lib.sh"
need_root

CLUSTER_NAME=sgcinit$$
LOGDIR=$(mktemp -d)
"$CLUSTER" up "$CLUSTER_NAME" --hosts 2 >/dev/null || fail "cluster up"

# 1. SGC_WORLD_SIZE=4 but only ranks 0..2 run.
t0=$(date +%s)
"$CLUSTER" run "$CLUSTER_NAME" --ranks 3 --timeout-ms 1500 --deadline 60 \
	--logdir "$LOGDIR/missing" --env SGC_WORLD_SIZE=4 -- "$CHECK" -s barrier >/dev/null 2>&1
rc=$?
t1=$(date +%s)
[ "$rc" = 1 ] || fail "missing rank: expected every rank to fail, cluster run returned $rc"
grep -q "missing ranks: 3" "$LOGDIR/missing/rank-0.log" ||
	fail "coordinator's error does not name rank 3: $(cat "$LOGDIR/missing/rank-0.log")"
grep -q "SGC_WORLD_SIZE=4" "$LOGDIR/missing/rank-0.log" ||
	fail "coordinator's error does not say how to fix it"
for r in 1 2; do
	grep -qE "gave up|no answer" "$LOGDIR/missing/rank-$r.log" ||
		fail "rank $r's error is not precise: $(cat "$LOGDIR/missing/rank-$r.log")"
done
[ $((t1 - t0)) -le 20 ] || fail "missing rank: took $((t1 - t0)) s with a 1.5 s timeout"
echo "ok: missing rank named by the coordinator: $(grep -o 'missing ranks: [0-9, ]*' "$LOGDIR/missing/rank-0.log")"

# 2. Rank 2 believes the world has 5 ranks.
"$CLUSTER" run "$CLUSTER_NAME" --ranks 4 --timeout-ms 1500 --deadline 60 \
	--logdir "$LOGDIR/mismatch" -- \
	bash -c 'if [ "$SGC_RANK" = 2 ]; then export SGC_WORLD_SIZE=5; fi; exec "$0" "$@"' \
	"$CHECK" -s barrier >/dev/null 2>&1
rc=$?
[ "$rc" = 1 ] || fail "world mismatch: expected failures, got $rc"
grep -q "runs a job of 4 ranks, but rank 2 was started with SGC_WORLD_SIZE=5" \
	"$LOGDIR/mismatch/rank-2.log" ||
	fail "rank 2's error does not explain the mismatch: $(cat "$LOGDIR/mismatch/rank-2.log")"
grep -q "missing ranks: 2" "$LOGDIR/mismatch/rank-0.log" ||
	fail "coordinator does not name rank 2: $(cat "$LOGDIR/mismatch/rank-0.log")"
echo "ok: world-size mismatch explained to rank 2"

# 3. Two ranks claim the same rank number.
"$CLUSTER" run "$CLUSTER_NAME" --ranks 4 --timeout-ms 1500 --deadline 60 \
	--logdir "$LOGDIR/dup" -- \
	bash -c 'if [ "$SGC_RANK" = 3 ]; then export SGC_RANK=1; fi; exec "$0" "$@"' \
	"$CHECK" -s barrier >/dev/null 2>&1
grep -qh "two processes were started with SGC_RANK=1" "$LOGDIR"/dup/rank-*.log ||
	fail "duplicate rank not explained: $(cat "$LOGDIR"/dup/rank-*.log)"
echo "ok: duplicate rank explained"

# 4. A custom reduction that is not a BPF object: rank 0 names the file and
#    libbpf's reason (not one of libsgcoll's codes), and the workers are told.
"$CLUSTER" run "$CLUSTER_NAME" --ranks 3 --accel ebpf --timeout-ms 1500 --deadline 60 \
	--logdir "$LOGDIR/custom" --env SGC_CUSTOM_BPF=/etc/hostname -- \
	"$CHECK" -s custom >/dev/null 2>&1
rc=$?
[ "$rc" = 1 ] || fail "bad custom object: expected failures, got $rc"
if grep -q "refused the eBPF programs" "$LOGDIR/custom/rank-0.log"; then
	echo "not checked: bad custom object (this kernel has no eBPF path: $(tail -n1 "$LOGDIR/custom/rank-0.log"))"
else
	grep -q "cannot open the custom reduction /etc/hostname (BPF object format invalid)" \
		"$LOGDIR/custom/rank-0.log" ||
		fail "bad custom object not explained: $(cat "$LOGDIR/custom/rank-0.log")"
	grep -q "ranks disagree" "$LOGDIR/custom/rank-0.log" &&
		fail "libbpf's error code read as one of ours: $(cat "$LOGDIR/custom/rank-0.log")"
	grep -q "could not start the job" "$LOGDIR/custom/rank-1.log" ||
		fail "rank 1 not told why: $(cat "$LOGDIR/custom/rank-1.log")"
	echo "ok: bad custom object named by the coordinator"
fi

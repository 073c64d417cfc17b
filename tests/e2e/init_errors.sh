#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: join failures say what happened, on every rank, within the timeout:
# a rank that never starts, a rank started with the wrong world size, two
# processes started as one rank, a custom reduction that is not a BPF
# object; and a failed sgc_init leaves its port free, so that the job can
# start over on the same ports at once.
#   init_errors.sh CLUSTER COLL_CHECK ROBUST_CHECK
set -uo pipefail
CLUSTER=$1
CHECK=$2
ROBUST=$3
. "$(dirname "$0")/lib.sh"
need_root

LOGDIR=$(mktemp -d)
cluster_up sgcinit 2
COORD=$(coord_ip):7000
W1=${COORD%.0.1:7000}.1.1	# host w1: ranks 1 and 3

# Cases 1-3 and 5 wait 1 to 1.5 s for a join: they run on the user-space
# path, since loading the eBPF path alone can take longer than that on a
# loaded machine, and the workers' join timeout runs meanwhile.
# expect LOG CODE TEXT: sgc_init failed with CODE (e.g. ETIMEDOUT) and said TEXT.
expect() {
	grep -qF "sgc_init_env returned -" "$1" && grep -qF "($2)" "$1" ||
		fail "$(basename "$(dirname "$1")")/$(basename "$1"): not $2: $(cat "$1")"
	grep -qF -- "$3" "$1" ||
		fail "$(basename "$(dirname "$1")")/$(basename "$1") does not say \"$3\": $(cat "$1")"
}

# 1. SGC_WORLD_SIZE=4 but only ranks 0..2 run: every rank names rank 3.
t0=$(date +%s)
"$CLUSTER" run "$CLUSTER_NAME" --ranks 3 --accel off --timeout-ms 1500 --deadline 60 \
	--logdir "$LOGDIR/missing" --env SGC_WORLD_SIZE=4 -- "$CHECK" -s barrier >/dev/null 2>&1
rc=$?
t1=$(date +%s)
[ "$rc" = 1 ] || fail "missing rank: expected every rank to fail, cluster run returned $rc"
expect "$LOGDIR/missing/rank-0.log" ETIMEDOUT "within 1500 ms (missing ranks: 3): start it with SGC_COORDINATOR=$COORD and SGC_WORLD_SIZE=4"
for r in 1 2; do
	expect "$LOGDIR/missing/rank-$r.log" ETIMEDOUT "the coordinator at $COORD gave up: rank 3 did not join within 1500 ms"
	grep -q "no answer" "$LOGDIR/missing/rank-$r.log" &&
		fail "rank $r says the running coordinator did not answer: $(cat "$LOGDIR/missing/rank-$r.log")"
done
[ $((t1 - t0)) -le 20 ] || fail "missing rank: took $((t1 - t0)) s with a 1.5 s timeout"
echo "ok: missing rank named on every rank: $(grep -o 'gave up: [^:]*' "$LOGDIR/missing/rank-1.log")"

# 2. Rank 2 believes the world has 5 ranks: named as such on every rank.
"$CLUSTER" run "$CLUSTER_NAME" --ranks 4 --accel off --timeout-ms 1500 --deadline 60 \
	--logdir "$LOGDIR/mismatch" -- \
	bash -c 'if [ "$SGC_RANK" = 2 ]; then export SGC_WORLD_SIZE=5; fi; exec "$0" "$@"' \
	"$CHECK" -s barrier >/dev/null 2>&1
rc=$?
[ "$rc" = 1 ] || fail "world mismatch: expected failures, got $rc"
expect "$LOGDIR/mismatch/rank-0.log" EPROTO "rank 2 was started with SGC_WORLD_SIZE=5 but rank 0 has 4"
expect "$LOGDIR/mismatch/rank-2.log" EPROTO "the coordinator at $COORD runs a job of 4 ranks, but rank 2 was started with SGC_WORLD_SIZE=5"
for r in 1 3; do
	expect "$LOGDIR/mismatch/rank-$r.log" ETIMEDOUT "gave up: rank 2 did not join within 1500 ms; rank 2 was started with SGC_WORLD_SIZE=5 but the job has 4"
done
echo "ok: world-size mismatch named on every rank"

# 3. Rank 3 was started as a second rank 1 (both on host w1): -EADDRINUSE,
#    both addresses named on rank 0 and on both claimants.
"$CLUSTER" run "$CLUSTER_NAME" --ranks 4 --accel off --timeout-ms 1500 --deadline 60 \
	--logdir "$LOGDIR/dup" -- \
	bash -c 'if [ "$SGC_RANK" = 3 ]; then export SGC_RANK=1; fi; exec "$0" "$@"' \
	"$CHECK" -s barrier >/dev/null 2>&1
rc=$?
[ "$rc" = 1 ] || fail "duplicate rank: expected failures, got $rc"
expect "$LOGDIR/dup/rank-0.log" EADDRINUSE "two processes were started with SGC_RANK=1"
for a in "$W1:7001" "$W1:7003"; do
	grep -qF "rank 1 was claimed from two addresses" "$LOGDIR/dup/rank-0.log" &&
		grep -qF "$a" "$LOGDIR/dup/rank-0.log" ||
		fail "rank 0 does not name $a: $(cat "$LOGDIR/dup/rank-0.log")"
done
expect "$LOGDIR/dup/rank-1.log" EADDRINUSE "rank 1 was claimed both from here ($W1:7001) and from $W1:7003"
expect "$LOGDIR/dup/rank-3.log" EADDRINUSE "rank 1 was claimed both from here ($W1:7003) and from $W1:7001"
expect "$LOGDIR/dup/rank-2.log" ETIMEDOUT "gave up: rank 3 did not join within 1500 ms; rank 1 was claimed from two addresses"
n=$(grep -c "claims it now" "$LOGDIR/dup/rank-0.log")
[ "$n" -le 1 ] || fail "rank 0 warned $n times of the same two claimants"
echo "ok: duplicate rank named on every rank"

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

# 5. Ten rounds of a failed init and a restart on the same ports at once
#    (robust_check -m reinit): no -EADDRINUSE, every restart joins.
"$CLUSTER" run "$CLUSTER_NAME" --ranks 4 --accel off --timeout-ms 5000 --deadline 120 \
	--logdir "$LOGDIR/reinit" -- "$ROBUST" -m reinit -i 10 >/dev/null 2>&1 ||
	fail "restart after a failed init: $(grep -h FAIL "$LOGDIR"/reinit/rank-*.log | head -5)"
grep -q "rank 0: 10 rounds of a failed sgc_init and a restart" "$LOGDIR/reinit/rank-0.log" ||
	fail "restart after a failed init: $(cat "$LOGDIR/reinit/rank-0.log")"
echo "ok: 10 restarts on the same ports right after a failed init"

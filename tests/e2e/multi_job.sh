#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: several jobs and communicators on the same hosts at once, every
# result exact (robust_check tags its inputs per job, so a datagram that
# crossed over would change a result).
#  1. two jobs in the same cluster at the same time, different ports (and
#     job ids); job A on ACCEL, job B on the user-space path;
#  2. two communicators in one process, collectives interleaved (ebpf:
#     a second eBPF communicator on the same interface is refused first);
#  3. four threads, each with its own communicator, at the same time;
#  4. ebpf only: a second job asking for the eBPF path on the interface
#     job A's eBPF path holds fails at once with -EBUSY and a message that
#     says so, its workers fail with a clear error, job A is undisturbed;
#     the same job with SGC_ACCEL=auto falls back to the user-space path.
# Skips (77) only when need_accel finds the kernel without what the eBPF
# path needs, before any job; a job that fails or skips after that fails
# the test, with its output and rank logs.
#   multi_job.sh CLUSTER ROBUST_CHECK ACCEL
set -uo pipefail
CLUSTER=$1
CHECK=$2
ACCEL=${3:-off}
. "$(dirname "$0")/lib.sh"
need_root
need_accel "$ACCEL"

LOGDIR=$(mktemp -d)
cluster_up sgcmj 2
# Loading the eBPF object can take seconds on a busy machine, and the
# workers' sgc_init() counts from their start: a generous timeout.
TMO=15000

# job NAME PORT ACCEL ARGS...: robust_check in the background, logs in $LOGDIR/NAME
job() {
	local name=$1 port=$2 accel=$3
	shift 3
	"$CLUSTER" run "$CLUSTER_NAME" --ranks 5 --port "$port" --accel "$accel" --timeout-ms $TMO \
		--deadline 100 --logdir "$LOGDIR/$name" -- "$CHECK" "$@" >"$LOGDIR/$name.out" 2>&1 &
	BG_PIDS+=("$!")
}
# finish NAME: wait for the job started last with that name; its exit code
finish() {
	local pid=${BG_PIDS[-1]} rc
	wait "$pid"
	rc=$?
	unset 'BG_PIDS[-1]'
	return $rc
}
# job_fail NAME MESSAGE: job NAME failed (a skip included: need_accel has
# checked what the kernel lacks); its output and rank logs, then fail.
job_fail() {
	cat "$LOGDIR/$1.out" >&2
	run_fail "$LOGDIR/$1" "$2"
}

# 1. Two jobs at once.
job A 7000 "$ACCEL" -m run -k 11 -T 8
job B 7500 off -m run -k 22 -T 8
finish B || job_fail B "job B failed while job A ran"
finish A || job_fail A "job A failed while job B ran"
echo "1. two jobs at once: $(grep -h 'rank 0: .* rounds' "$LOGDIR/A/rank-0.log") (A, $ACCEL);" \
	"$(grep -h 'rank 0: .* rounds' "$LOGDIR/B/rank-0.log") (B, off)"
for j in A B; do
	f=$(grep -h "^rank 0 stat foreign" "$LOGDIR/$j/rank-0.log" | awk '{print $5}')
	[ "${f:-x}" = 0 ] || fail "job $j's coordinator counted ${f:-?} foreign datagrams"
done

# 2. Two communicators in one process.
job C 7000 "$ACCEL" -m twocomm -i 20
finish C || job_fail C "two communicators in one process"
grep -h "second eBPF" "$LOGDIR/C/rank-0.log"
echo "2. two communicators: $(grep -h 'twocomm: ok' "$LOGDIR/C/rank-0.log")"

# 3. One communicator per thread.
job D 7000 "$ACCEL" -m threads -n 4 -i 20
finish D || job_fail D "four threads, a communicator each"
echo "3. threads: $(grep -h 'threads: ok' "$LOGDIR/D/rank-0.log")"

[ "$ACCEL" = ebpf ] || { echo "ok: two jobs, two communicators, four threads ($ACCEL), all exact"; exit 0; }

# 4. A second eBPF job on the same interface.
job E 7000 ebpf -m run -k 33 -T 12
for ((i = 0; i < 150; i++)); do
	"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 2>/dev/null | grep -q "prog/xdp" && break
	sleep 0.1
done
"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 2>/dev/null | grep -q "prog/xdp" ||
	job_fail E "job A's eBPF path never attached"
t0=$(date +%s)
job F 7500 ebpf -m run -k 44 -T 2
finish F && fail "a second eBPF job on the same interface was accepted"
t1=$(date +%s)
grep -q "already has an XDP program .* held by a running process" "$LOGDIR/F/rank-0.log" ||
	fail "the refused coordinator's error does not say why: $(tail -2 "$LOGDIR/F/rank-0.log")"
for r in 1 2 3 4; do
	grep -qiE "abort|eBPF|XDP|busy" "$LOGDIR/F/rank-$r.log" ||
		fail "refused job, rank $r: unclear error: $(tail -2 "$LOGDIR/F/rank-$r.log")"
done
[ $((t1 - t0)) -le 30 ] || fail "the refused job took $((t1 - t0)) s to fail"
echo "4. second eBPF job refused in $((t1 - t0)) s: $(grep -h 'XDP program' "$LOGDIR/F/rank-0.log" | tail -1)"
echo "   its workers: $(tail -1 "$LOGDIR/F/rank-1.log")"
job G 7500 auto -m run -k 55 -T 2
finish G || job_fail G "the same job with SGC_ACCEL=auto failed"
grep -q "eBPF path off" "$LOGDIR/G/rank-0.log" || fail "SGC_ACCEL=auto did not say it fell back"
echo "   with SGC_ACCEL=auto: $(grep -h 'rank 0: .* rounds' "$LOGDIR/G/rank-0.log") on the user-space path"
finish E || job_fail E "job A failed while others tried its interface"
echo "   job A meanwhile: $(grep -h 'rank 0: .* rounds' "$LOGDIR/E/rank-0.log")"
echo "ok: two jobs, two communicators, four threads, second eBPF job refused ($ACCEL), all exact"

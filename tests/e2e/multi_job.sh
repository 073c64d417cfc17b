#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: several jobs and communicators on the same hosts at once, every
# result exact (robust_check tags its inputs per job, so a datagram that
# crossed over would change a result).
#  1. two jobs in the same cluster at the same time, different ports (and
#     job ids); job A on ACCEL, job B on the user-space path;
#  2. two communicators in one process, collectives interleaved (ebpf:
#     both in the kernel, then 8 fill the interface, a ninth is refused);
#  3. four threads, each with its own communicator, at the same time;
#  4. ebpf only: two eBPF jobs share the interface, both in the kernel and
#     exact, and the last to end takes the XDP dispatcher off;
#  5. ebpf only: with an XDP program that is not libsgcoll's on the
#     interface, the eBPF path fails at once with -EBUSY and a message
#     that names it, its workers fail with a clear error, and the same job
#     with SGC_ACCEL=auto falls back to the user-space path.
# Skips (77) only when need_accel finds the kernel without what the eBPF
# path needs, before any job; a job that fails or skips after that fails
# the test, with its output and rank logs.
#   multi_job.sh CLUSTER ROBUST_CHECK ACCEL [FOREIGN_XDP_OBJECT SGC_BPFSTAT]
set -uo pipefail
CLUSTER=$1
CHECK=$2
ACCEL=${3:-off}
FOREIGN=${4:-}
BPFSTAT=${5:-}
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
grep -h "comm B runs\|eBPF communicators on one" "$LOGDIR/C/rank-0.log"
echo "2. two communicators: $(grep -h 'twocomm: ok' "$LOGDIR/C/rank-0.log")"

# 3. One communicator per thread.
job D 7000 "$ACCEL" -m threads -n 4 -i 20
finish D || job_fail D "four threads, a communicator each"
echo "3. threads: $(grep -h 'threads: ok' "$LOGDIR/D/rank-0.log")"

[ "$ACCEL" = ebpf ] || { echo "ok: two jobs, two communicators, four threads ($ACCEL), all exact"; exit 0; }

# 4. A second eBPF job on the same interface: both in the kernel, through
#    libsgcoll's XDP dispatcher (one slot each), both exact.
job E 7000 ebpf -m run -k 33 -T 8
for ((i = 0; i < 150; i++)); do
	"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 2>/dev/null | grep -q "prog/xdp" && break
	sleep 0.1
done
"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 2>/dev/null | grep -q "prog/xdp" ||
	job_fail E "job E's eBPF path never attached"
job F 7500 ebpf -m run -k 44 -T 4
# While both run, sgc-bpfstat tells them apart by port.
[ -x "$BPFSTAT" ] || fail "no sgc-bpfstat (5th argument): '$BPFSTAT'"
# Job F's counters may be read before its first reduction (its programs
# attach before its workers' first contributions come): wait for one, 10 s.
for ((i = 0; i < 100; i++)); do
	"$CLUSTER" exec "$CLUSTER_NAME" c -- "$BPFSTAT" eth0 -p 7500 >"$LOGDIR/stat-F" 2>&1 &&
		grep -Eq "^reduced +[1-9]" "$LOGDIR/stat-F" && break
	sleep 0.1
done
grep -Eq "^reduced +[1-9]" "$LOGDIR/stat-F" ||
	fail "sgc-bpfstat -p 7500 did not show job F's kernel reductions: $(cat "$LOGDIR/stat-F")"
"$CLUSTER" exec "$CLUSTER_NAME" c -- "$BPFSTAT" eth0 >"$LOGDIR/stat-both" 2>&1 &&
	fail "sgc-bpfstat without -p picked one of two coordinators"
grep -q "choose one with -p PORT" "$LOGDIR/stat-both" && grep -q ":7000 (pid" "$LOGDIR/stat-both" ||
	fail "sgc-bpfstat without -p does not list the coordinators: $(cat "$LOGDIR/stat-both")"
finish F || job_fail F "a second eBPF job on the same interface failed"
finish E || job_fail E "job E failed while a second eBPF job shared its interface"
for j in E F; do
	grep -q "rank 0: the eBPF path" "$LOGDIR/$j/rank-0.log" ||
		fail "job $j's coordinator is not on the eBPF path: $(grep -h 'rank 0: the' "$LOGDIR/$j/rank-0.log")"
	f=$(grep -h "^rank 0 stat foreign" "$LOGDIR/$j/rank-0.log" | awk '{print $5}')
	[ "${f:-x}" = 0 ] || fail "job $j's coordinator counted ${f:-?} foreign datagrams"
done
echo "4. two eBPF jobs on one interface: $(grep -h 'rank 0: .* rounds' "$LOGDIR/E/rank-0.log") (E);" \
	"$(grep -h 'rank 0: .* rounds' "$LOGDIR/F/rank-0.log") (F)"
# Both left cleanly: the last one took the dispatcher off.
"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 | grep -q "prog/xdp" &&
	fail "an XDP program stayed on the interface after every eBPF job ended cleanly"

# 5. An XDP program that is not libsgcoll's holds the interface: the eBPF
#    path is refused at once with a message naming it; auto falls back.
[ -f "$FOREIGN" ] || fail "no stand-in foreign XDP object (4th argument): '$FOREIGN'"
"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link set dev eth0 xdpgeneric obj "$FOREIGN" sec xdp ||
	fail "cannot attach the stand-in foreign XDP program $FOREIGN"
t0=$(date +%s)
job G 7500 ebpf -m run -k 55 -T 2
finish G && fail "the eBPF path was accepted on an interface another XDP program holds"
t1=$(date +%s)
grep -q "has another XDP program attached" "$LOGDIR/G/rank-0.log" ||
	fail "the refused coordinator's error does not say why: $(tail -2 "$LOGDIR/G/rank-0.log")"
for r in 1 2 3 4; do
	grep -qiE "abort|eBPF|XDP|busy" "$LOGDIR/G/rank-$r.log" ||
		fail "refused job, rank $r: unclear error: $(tail -2 "$LOGDIR/G/rank-$r.log")"
done
[ $((t1 - t0)) -le 30 ] || fail "the refused job took $((t1 - t0)) s to fail"
echo "5. eBPF job refused in $((t1 - t0)) s: $(grep -h 'XDP program' "$LOGDIR/G/rank-0.log" | tail -1)"
echo "   its workers: $(tail -1 "$LOGDIR/G/rank-1.log")"
job H 7500 auto -m run -k 66 -T 2
finish H || job_fail H "the same job with SGC_ACCEL=auto failed"
grep -q "eBPF path off" "$LOGDIR/H/rank-0.log" || fail "SGC_ACCEL=auto did not say it fell back"
echo "   with SGC_ACCEL=auto: $(grep -h 'rank 0: .* rounds' "$LOGDIR/H/rank-0.log") on the user-space path"
"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link set dev eth0 xdpgeneric off
echo "ok: two jobs, two communicators, four threads, two eBPF jobs on one interface, a foreign XDP program refused ($ACCEL), all exact"

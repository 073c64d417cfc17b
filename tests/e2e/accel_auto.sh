#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: what SGC_ACCEL=auto gives the kernel.  The eBPF path is loaded
# (sgc_accelerated() on rank 0), but its programs are attached only at the
# first scatter-gather: a job of allreduce, reduce, broadcast and barrier
# never meets it.  After that, scatter-gather answers are reduced in the
# kernel and the other collectives go up to user space through it, every
# result exact.  SGC_ACCEL=ebpf reduces the allreduces in the kernel.
# And when another job's eBPF path took the interface in between, the
# first scatter-gather joins it there (libsgcoll's XDP dispatcher, a slot
# per coordinator) and its answers are still reduced in the kernel.
# Reads rank 0's eBPF counters (coll_check -S).
#   accel_auto.sh CLUSTER COLL_CHECK
set -uo pipefail
CLUSTER=$1
CHECK=$2
. "$(dirname "$0")/lib.sh"
need_root
need_accel ebpf
command -v bpftool >/dev/null ||
	fail "bpftool is not installed (tools/install-deps.sh installs it); it lists the loaded programs"

LOGDIR=$(mktemp -d)
cluster_up sgcauto 2

# gather_loaded: some job's gather_prog is loaded
gather_loaded() {
	bpftool prog show name gather_prog 2>/dev/null | grep -q gather_prog
}

# counter OUT NAME: rank 0's eBPF counter NAME in coll_check's output OUT
counter() {
	grep '^rank 0: bpf:' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# run NAME ACCEL SUITES [ARGS]: coll_check on 5 ranks; fails the test unless exact
run() {
	local name=$1 accel=$2 suites=$3 args=${4:-}
	# shellcheck disable=SC2086
	"$CLUSTER" run "$CLUSTER_NAME" --ranks 5 --accel "$accel" --timeout-ms 15000 --deadline 100 \
		--logdir "$LOGDIR/$name" -- "$CHECK" -s "$suites" -c 1,363,5000 -S $args \
		>"$LOGDIR/$name.out" 2>&1 || { cat "$LOGDIR/$name.out" >&2; run_fail "$LOGDIR/$name" "$name failed"; }
	grep -q '^rank 0: bpf:' "$LOGDIR/$name.out" ||
		{ cat "$LOGDIR/$name.out" >&2; fail "$name: rank 0 did not run on the eBPF path"; }
	echo "   $name ($accel, $suites): reduced=$(counter "$LOGDIR/$name.out" reduced)" \
		"pass_user=$(counter "$LOGDIR/$name.out" pass_user)"
}

run auto_coll auto allreduce,reduce,bcast,barrier
for k in reduced pass_user pass_control; do
	[ "$(counter "$LOGDIR/auto_coll.out" $k)" = 0 ] ||
		fail "SGC_ACCEL=auto without scatter-gather: gather_prog saw traffic ($k), so it was attached"
done

# Two rounds: the first attaches gather_prog at its scatter-gather, the
# second's allreduces and the like then pass through it.
run auto_mixed auto allreduce,reduce,bcast,barrier,sg "-i 2"
[ "$(counter "$LOGDIR/auto_mixed.out" reduced)" -gt 0 ] ||
	fail "SGC_ACCEL=auto did not reduce scatter-gather answers in the kernel"
[ "$(counter "$LOGDIR/auto_mixed.out" pass_user)" -gt 0 ] ||
	fail "SGC_ACCEL=auto: after the first scatter-gather no contribution went up to user space"

run ebpf_coll ebpf allreduce
[ "$(counter "$LOGDIR/ebpf_coll.out" reduced)" -gt 0 ] ||
	fail "SGC_ACCEL=ebpf did not reduce allreduce contributions in the kernel"
# Job L (auto) loads its programs; job E (ebpf) then attaches to the same
# interface; L's first scatter-gather (held with -W until then) joins E's
# dispatcher.  Both in the kernel, both exact.
GO=$LOGDIR/go
# The kernel frees a finished job's programs after its process exits, so
# ebpf_coll's gather_prog may still be listed: wait until it is gone, or
# the check below would see it and not job L's.
for _ in $(seq 100); do
	gather_loaded || break
	sleep 0.1
done
gather_loaded &&
	fail "an earlier job's gather_prog is still loaded 10 s after it ended"
"$CLUSTER" run "$CLUSTER_NAME" --ranks 5 --port 7200 --accel auto --timeout-ms 30000 --deadline 100 \
	--logdir "$LOGDIR/L" -- "$CHECK" -s allreduce,sg -c 1,363 -S -W "$GO" >"$LOGDIR/L.out" 2>&1 &
BG_PIDS+=("$!")
loaded=0
for _ in $(seq 300); do
	gather_loaded && { loaded=1; break; }
	sleep 0.1
done
[ "$loaded" = 1 ] ||
	{ cat "$LOGDIR/L.out" >&2; fail "job L (SGC_ACCEL=auto) did not load its programs within 30 s"; }
"$CLUSTER" run "$CLUSTER_NAME" --ranks 5 --port 7400 --accel ebpf --timeout-ms 30000 --deadline 100 \
	--logdir "$LOGDIR/E" -- "$CHECK" -s allreduce -c 1,363 -i 1000000 -T 6 -S >"$LOGDIR/E.out" 2>&1 &
BG_PIDS+=("$!")
for _ in $(seq 300); do
	ip -n "$CLUSTER_NAME-c" link show dev eth0 | grep -q "prog/xdp" && break
	sleep 0.1
done
ip -n "$CLUSTER_NAME-c" link show dev eth0 | grep -q "prog/xdp" ||
	{ cat "$LOGDIR/E.out" >&2; fail "job E (SGC_ACCEL=ebpf) did not attach within 30 s"; }
touch "$GO"
wait "${BG_PIDS[0]}" || { cat "$LOGDIR/L.out" >&2; run_fail "$LOGDIR/L" "job L failed"; }
wait "${BG_PIDS[1]}" || { cat "$LOGDIR/E.out" >&2; run_fail "$LOGDIR/E" "job E failed beside job L"; }
BG_PIDS=()
grep -h "eBPF path off" "$LOGDIR/L/rank-0.log" &&
	{ cat "$LOGDIR/L/rank-0.log" >&2; fail "job L left the eBPF path though E's dispatcher had room"; }
grep -q '^rank 0: bpf:' "$LOGDIR/L.out" || fail "job L does not claim the eBPF path (sgc_accelerated)"
[ "$(counter "$LOGDIR/L.out" reduced)" -gt 0 ] ||
	fail "job L reduced nothing in the kernel beside job E"
[ "$(counter "$LOGDIR/E.out" reduced)" -gt 0 ] || fail "job E reduced nothing in the kernel"
echo "   job L beside job E: reduced=$(counter "$LOGDIR/L.out" reduced) (L)," \
	"reduced=$(counter "$LOGDIR/E.out" reduced) (E)"

echo "PASS: SGC_ACCEL=auto attaches at the first scatter-gather, reduces its answers in the kernel and leaves allreduce and the like to user space"

#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: a worker SIGKILLs itself in the middle of an allreduce (5 ranks,
# 3 s timeout).  robust_check -m kill on the survivors checks the rule in
# sgcoll.h ("Lost ranks"): WAIT_ALL calls fail within the timeout naming
# the rank, WAIT_N/WAIT_ANY complete exactly.  Here: only the victim
# failed, killed by signal 9, and the coordinator left no BPF link behind.
# Skips (77) only when need_accel finds the kernel without what the eBPF
# path needs, before the run; any failure after that, a skip included,
# fails with the rank logs.
#   kill_worker.sh CLUSTER ROBUST_CHECK ACCEL
set -uo pipefail
CLUSTER=$1
CHECK=$2
ACCEL=${3:-off}
. "$(dirname "$0")/lib.sh"
need_root
need_accel "$ACCEL"

LOGDIR=$(mktemp -d)
cluster_up sgckw 2
"$CLUSTER" run "$CLUSTER_NAME" --ranks 5 --accel "$ACCEL" --timeout-ms 3000 --deadline 100 \
	--logdir "$LOGDIR/run" -- "$CHECK" -m kill -v 4 >"$LOGDIR/out" 2>&1
rc=$?
cat "$LOGDIR/out"
# rank 4 dies, so the run exits 1 when it went as planned: the checks below
# tell.  It can only skip when a rank found a feature missing, which
# need_accel ruled out.
[ "$rc" != 77 ] || run_fail "$LOGDIR/run" "every rank skipped (exit 77) after the kernel check passed"
for r in 0 1 2 3; do
	grep -q "kill: ok" "$LOGDIR/run/rank-$r.log" ||
		run_fail "$LOGDIR/run" "survivor rank $r did not finish its checks:" \
			"$(grep -h 'FAIL\|SKIP' "$LOGDIR/run/rank-$r.log" | head -5)"
done
grep -q "SIGKILL myself" "$LOGDIR/run/rank-4.log" || run_fail "$LOGDIR/run" "rank 4 did not reach the kill"
grep -q "killed by signal 9" "$LOGDIR/out" || run_fail "$LOGDIR/run" "rank 4 was not reported killed by SIGKILL"
[ "$(grep -c 'FAIL' "$LOGDIR"/run/rank-*.log | awk -F: '{s += $2} END {print s}')" = 0 ] ||
	run_fail "$LOGDIR/run" "a rank reported a failure"
for what in allreduce barrier "small allreduce" "one-datagram WAIT_ALL" "scatter-gather WAIT_ALL" serve_stop; do
	grep -qE "rank 0: $what after the loss: -110 .*(rank 4 |no \(complete\) answer from rank 4$)" "$LOGDIR/run/rank-0.log" ||
		run_fail "$LOGDIR/run" "rank 0's $what did not time out naming rank 4"
done
if [ "$ACCEL" = ebpf ]; then
	if "$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 | grep -q "prog/xdp"; then
		fail "an XDP program is still attached to the coordinator's eth0 after sgc_finalize"
	fi
fi
grep -h "after the loss" "$LOGDIR/run/rank-0.log" | sed 's/ ms: .*/ ms/'
echo "ok: rank 4 killed mid-allreduce ($ACCEL); WAIT_ALL calls failed in time naming it," \
	"WAIT_N/WAIT_ANY exact without it"

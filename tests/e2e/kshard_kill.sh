#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# A rank lost under SGC_ALGO=shard-kernel: 9 ranks one per host on the
# eBPF path, rank 4 SIGKILLs itself after one exact sharded allreduce.
# Every other rank's next one fails with -ETIMEDOUT naming rank 4 within
# three timeouts, and its sgc_finalize() (the shards' groups saying goodbye
# side by side) ends within three timeouts and 5 s.
#   kshard_kill.sh CLUSTER COLL_CHECK
set -uo pipefail
CLUSTER=$1
CHECK=$2
. "$(dirname "$0")/lib.sh"
need_root
need_accel ebpf

LOGDIR=$(mktemp -d)
cluster_up sgckk 8
"$CLUSTER" run "$CLUSTER_NAME" --ranks 9 --accel ebpf --timeout-ms 3000 --deadline 100 \
	--env SGC_ALGO=shard-kernel --logdir "$LOGDIR/run" -- "$CHECK" -s selfkill >"$LOGDIR/out" 2>&1
cat "$LOGDIR/out"
grep -q "SIGKILL myself" "$LOGDIR/run/rank-4.log" || run_fail "$LOGDIR/run" "rank 4 did not reach the kill"
grep -q "killed by signal 9" "$LOGDIR/out" || run_fail "$LOGDIR/run" "rank 4 was not reported killed by SIGKILL"
for r in 0 1 2 3 5 6 7 8; do
	grep -q "selfkill: ok" "$LOGDIR/run/rank-$r.log" ||
		run_fail "$LOGDIR/run" "survivor rank $r did not finish as it should:" \
			"$(grep -h 'FAIL\|SKIP' "$LOGDIR/run/rank-$r.log" | head -5)"
done
grep -h "selfkill" "$LOGDIR"/run/rank-*.log | cut -c1-200
echo "ok: every survivor named rank 4 within its timeout and finalized in time"

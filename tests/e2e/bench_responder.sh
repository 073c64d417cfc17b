#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: the coordinator-bound allreduce benchmark runs and is exact.  The XDP
# responder (bench/sgc-responder) contributes for every worker, answering
# the result of collective s with the contribution to s + window, and
# sgc_bench --responder checks every result on rank 0, on both paths.
#   bench_responder.sh CLUSTER SGC_BENCH SGC_RESPONDER
set -uo pipefail
CLUSTER=$1
BENCH=$2
RESPONDER=$3
. "$(dirname "$0")/lib.sh"
need_root
need_accel ebpf

LOGDIR=$(mktemp -d)
# MTU 1532: a result of 363 x int32 in one datagram, as in bench/run.py.
cluster_up sgcresp 2 1532

"$RESPONDER" --cluster "$CLUSTER_NAME" --hosts 2 --max-rank 16 --allreduce-window 4 \
	--allreduce-count 363 --deadline 200 >"$LOGDIR/resp.log" 2>&1 &
BG_PIDS+=("$!")
for _ in $(seq 100); do
	grep -q "sgc-responder: ready" "$LOGDIR/resp.log" && break
	sleep 0.1
done
grep -q "sgc-responder: ready" "$LOGDIR/resp.log" ||
	fail "the responder did not attach: $(cat "$LOGDIR/resp.log")"

for accel in off ebpf; do
	bench_run "SGC_ACCEL=$accel" "$accel" 'tput_med\|retx' --ranks 9 --timeout-ms 15000 \
		--deadline 100 -- "$BENCH" --workload ar363 --mode tput --window 4 --ops 3000 \
		--warmup 100 --sample 100 --responder --serve-idle-ms 60000
done
stop_bg
answered=$(sed -n 's/.*ar_result_answered=\([0-9]*\).*/\1/p' "$LOGDIR/resp.log")
# 2 runs x 3,100 collectives x 8 workers, less the first window of each.
[ "${answered:-0}" -ge 40000 ] ||
	fail "the responder answered ${answered:-0} results, not every one: $(cat "$LOGDIR/resp.log")"
echo "   responder: $answered results answered"

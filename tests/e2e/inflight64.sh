#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: the 64-in-flight loop (issue 15), as bench/inflight.py runs it.  At
# 33 ranks on one worker host, `sgc_bench --mode tput --window 64` keeps 64
# allreduces of 363 x int32 in flight for 10,000 collectives on each path:
# every result exact, no call failed or timed out.  On the eBPF path with
# that many open, rank 0 batches its results (io_cork()).
#   inflight64.sh CLUSTER SGC_BENCH
set -uo pipefail
CLUSTER=$1
BENCH=$2
. "$(dirname "$0")/lib.sh"
need_root
need_accel ebpf

LOGDIR=$(mktemp -d)
# MTU 1532: a result of 363 x int32 in one datagram, as in bench/inflight.py.
cluster_up sgcif 1 1532

for accel in off ebpf; do
	bench_run "SGC_ACCEL=$accel" "$accel" 'tput_ops\|retx\|clones' --ranks 33 --timeout-ms 15000 \
		--deadline 200 -- "$BENCH" --workload ar363 --mode tput --window 64 --ops 10000 --warmup 2
done

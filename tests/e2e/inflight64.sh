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
	"$CLUSTER" run "$CLUSTER_NAME" --ranks 33 --accel "$accel" --timeout-ms 15000 --deadline 200 \
		--logdir "$LOGDIR/$accel" -- "$BENCH" --workload ar363 --mode tput --window 64 \
		--ops 10000 --warmup 2 >"$LOGDIR/$accel.out" 2>&1 ||
		{ cat "$LOGDIR/$accel.out" >&2; run_fail "$LOGDIR/$accel" "SGC_ACCEL=$accel: sgc_bench failed"; }
	line=$(grep '^RESULT' "$LOGDIR/$accel.out")
	[ -n "$line" ] || { cat "$LOGDIR/$accel.out" >&2; fail "SGC_ACCEL=$accel: no result line"; }
	grep -q ' verified=1 ' <<<"$line" || fail "SGC_ACCEL=$accel: results not exact: $line"
	grep -q ' bad_results=0 ' <<<"$line" || fail "SGC_ACCEL=$accel: wrong results: $line"
	want=$([ $accel = ebpf ] && echo 1 || echo 0)
	grep -q " accel=$want " <<<"$line" || fail "SGC_ACCEL=$accel: wrong path: $line"
	echo "   $accel: $(grep -o 'tput_ops=[0-9.]*\|retx=[0-9]*\|clones=[0-9]*' <<<"$line" | tr '\n' ' ')"
done

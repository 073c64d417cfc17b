#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: the eBPF path's coordinator keeps up with its workers' NACKs.  65
# ranks on one worker host, allreduces of 64 KiB (46 chunks), 16 in
# flight, 231 collectives, three times.  Each run takes about 9 s.  Before
# rank 0 stopped copying the kernel's slots for every NACK, about one run
# in two (5 of 11) fell into a state where that copying took its whole
# CPU, the workers waited and NACKed more, and the run crawled for minutes,
# its collectives moving a few at a time (with SGC_TIMEOUT_MS=15000 the
# workers' calls time out; with 30000 none did in 300 s); the 90 s
# deadline catches either.  Every result exact.
#   nack_storm.sh CLUSTER SGC_BENCH
set -uo pipefail
CLUSTER=$1
BENCH=$2
. "$(dirname "$0")/lib.sh"
need_root
need_accel ebpf

LOGDIR=$(mktemp -d)
cluster_up sgcns 1 1532

for run in 1 2 3; do
	start=$SECONDS
	"$CLUSTER" run "$CLUSTER_NAME" --ranks 65 --accel ebpf --timeout-ms 15000 --deadline 90 \
		--logdir "$LOGDIR/$run" --env SGC_DELIVERY=ringbuf -- "$BENCH" --workload ar64k \
		--mode tput --window 16 --ops 210 --warmup 21 --sample 5 >"$LOGDIR/$run.out" 2>&1 ||
		{ cat "$LOGDIR/$run.out" >&2; run_fail "$LOGDIR/$run" "run $run: sgc_bench failed or crawled past the 90 s deadline"; }
	line=$(grep '^RESULT' "$LOGDIR/$run.out")
	[ -n "$line" ] || { cat "$LOGDIR/$run.out" >&2; fail "run $run: no result line"; }
	grep -q ' verified=1 ' <<<"$line" || fail "run $run: results not exact: $line"
	grep -q ' bad_results=0 ' <<<"$line" || fail "run $run: wrong results: $line"
	grep -q ' accel=1 ' <<<"$line" || fail "run $run: not on the eBPF path: $line"
	echo "   run $run: $((SECONDS - start)) s, $(grep -o 'tput_med=[0-9.]*\|retx=[0-9]*' <<<"$line" | tr '\n' ' ')"
done

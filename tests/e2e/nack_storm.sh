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
	# A failure here with "ranks still running after the 90s deadline" is the crawl.
	bench_run "run $run" ebpf 'tput_med\|retx' --ranks 65 --timeout-ms 15000 --deadline 90 \
		--env SGC_DELIVERY=ringbuf -- "$BENCH" --workload ar64k --mode tput --window 16 \
		--ops 210 --warmup 21 --sample 5
	echo "   run $run: $((SECONDS - start)) s"
done

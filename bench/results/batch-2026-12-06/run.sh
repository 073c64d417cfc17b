#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Batched results on the eBPF path (transport.h): the same tree built twice,
# with batching (BUILD) and without (NOB: -DSGC_BATCH_OPEN=1000000), run
# alternately.  Worker processes on one worker host (bench/inflight.py),
# then the coordinator-bound case (workers emulated by the XDP responder).
#   run.sh BUILD NOB OUT
set -euo pipefail
BUILD=$1 NOB=$2 OUT=$3
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$OUT"
for rw in "33 64" "33 16" "9 64" "9 16"; do
	set -- $rw
	python3 "$REPO/bench/inflight.py" --build "$BUILD" --paths off,ebpf --reps 3 --ranks "$1" \
		--window "$2" --ops 10000 --out "$OUT/batch-r$1-w$2"
	python3 "$REPO/bench/inflight.py" --build "$NOB" --paths ebpf --reps 3 --ranks "$1" \
		--window "$2" --ops 10000 --out "$OUT/nobatch-r$1-w$2"
done
# Coordinator-bound: sgc_bench --responder, 16 in flight, 32 and 64 workers
# on 8 worker hosts.
CL=batchresp$$
"$REPO/tools/sgc-cluster" up "$CL" --hosts 8 --mtu 1532 >/dev/null
"$BUILD/bench/sgc-responder" --cluster "$CL" --hosts 8 --max-rank 64 --allreduce-window 16 \
	--allreduce-count 363 --deadline 900 >"$OUT/responder.log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait $RPID 2>/dev/null; "$REPO/tools/sgc-cluster" down "$CL" >/dev/null 2>&1' EXIT
for _ in $(seq 100); do grep -q "ready" "$OUT/responder.log" && break; sleep 0.1; done
for rep in 1 2 3; do
	for b in "$BUILD" "$NOB"; do
		for ranks in 33 65; do
			line=$("$REPO/tools/sgc-cluster" run "$CL" --ranks $ranks --accel ebpf --timeout-ms 15000 \
				--deadline 100 -- "$b/bench/sgc_bench" --workload ar363 --mode tput --window 16 \
				--ops 20000 --warmup 100 --sample 100 --responder --serve-idle-ms 60000 |
				grep '^RESULT')
			echo "rep=$rep build=$b ranks=$ranks load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" $line"
		done
	done
done | tee "$OUT/responder.txt"

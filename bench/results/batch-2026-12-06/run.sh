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
# Coordinator-bound: 32 and 64 workers emulated by the XDP responder.
"$REPO/bench/responder_ab.sh" "$OUT" "$BUILD" "$NOB"

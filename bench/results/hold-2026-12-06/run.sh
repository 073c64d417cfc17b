#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# How long rank 0 holds batched results on the eBPF path (SGC_BATCH_HOLD_NS,
# transport.h): the same tree built with the new hold (NEW, 100 us) and the
# old one (OLD: -DSGC_BATCH_HOLD_NS=50000ULL), run alternately; the
# user-space path (off) from NEW beside them.  Worker processes on one
# worker host, and one per host at 33 ranks (bench/inflight.py), then the
# coordinator-bound case (workers emulated by the XDP responder).
#   run.sh NEW OLD OUT
set -euo pipefail
NEW=$1 OLD=$2 OUT=$3
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$OUT"
for rwt in "33 64 one-host" "33 16 one-host" "9 64 one-host" "9 16 one-host" "65 64 one-host" \
	   "33 64 per-host"; do
	set -- $rwt
	python3 "$REPO/bench/inflight.py" --build "$NEW" --paths off,ebpf --reps 3 --ranks "$1" \
		--window "$2" --topology "$3" --ops 10000 --out "$OUT/new-r$1-w$2-$3"
	python3 "$REPO/bench/inflight.py" --build "$OLD" --paths ebpf --reps 3 --ranks "$1" \
		--window "$2" --topology "$3" --ops 10000 --out "$OUT/old-r$1-w$2-$3"
done
# Coordinator-bound: 32 and 64 workers emulated by the XDP responder.
"$REPO/bench/responder_ab.sh" "$OUT" "$NEW" "$OLD"

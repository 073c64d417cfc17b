#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Batched results on the user-space path (transport.h,
# SGC_BATCH_USER_WORKERS): the same tree built with them (NEW) and without
# (OLD: -DSGC_BATCH_USER_WORKERS=100000), the user-space path (off) of
# each run alternately, 3 runs each (bench/inflight.py); then the eBPF
# path of NEW at the 16-in-flight points, for comparison.
#   run.sh NEW OLD OUT
set -euo pipefail
NEW=$1 OLD=$2 OUT=$3
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$OUT"
for rwt in "9 16 one-host" "17 16 one-host" "17 64 one-host" "33 16 one-host" "33 64 one-host" \
	   "65 16 one-host" "65 64 one-host" "33 16 per-host"; do
	set -- $rwt
	python3 "$REPO/bench/inflight.py" --build "$NEW" --paths off --reps 3 --ranks "$1" \
		--window "$2" --topology "$3" --ops 10000 --out "$OUT/new-r$1-w$2-$3"
	python3 "$REPO/bench/inflight.py" --build "$OLD" --paths off --reps 3 --ranks "$1" \
		--window "$2" --topology "$3" --ops 10000 --out "$OUT/old-r$1-w$2-$3"
done
for r in 17 33; do
	python3 "$REPO/bench/inflight.py" --build "$NEW" --paths ebpf --reps 3 --ranks "$r" \
		--window 16 --ops 10000 --out "$OUT/new-ebpf-r$r-w16-one-host"
done

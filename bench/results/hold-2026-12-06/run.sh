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
CL=holdresp$$
"$REPO/tools/sgc-cluster" up "$CL" --hosts 8 --mtu 1532 >/dev/null
"$NEW/bench/sgc-responder" --cluster "$CL" --hosts 8 --max-rank 64 --allreduce-window 16 \
	--allreduce-count 363 --deadline 900 >"$OUT/responder.log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait $RPID 2>/dev/null; "$REPO/tools/sgc-cluster" down "$CL" >/dev/null 2>&1' EXIT
for _ in $(seq 100); do grep -q "ready" "$OUT/responder.log" && break; sleep 0.1; done
for rep in 1 2 3; do
	for b in "$NEW" "$OLD"; do
		for ranks in 33 65; do
			line=$("$REPO/tools/sgc-cluster" run "$CL" --ranks $ranks --accel ebpf --timeout-ms 15000 \
				--deadline 100 -- "$b/bench/sgc_bench" --workload ar363 --mode tput --window 16 \
				--ops 20000 --warmup 100 --sample 100 --responder --serve-idle-ms 60000 |
				grep '^RESULT')
			echo "rep=$rep build=$b ranks=$ranks load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" $line"
		done
	done
done | tee "$OUT/responder.txt"

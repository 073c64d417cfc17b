#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Coordinator-bound allreduce, builds taking turns: sgc_bench --responder
# on the eBPF path, 16 allreduces of 363 x int32 in flight, 20,000 per
# run, at 33 and 65 ranks (32 and 64 workers emulated by the XDP responder
# on 8 worker hosts), three runs per build and rank count.  The first
# build's sgc-responder answers for all.  Writes OUT/responder.log (the
# responder's) and OUT/responder.txt (one line per run: rep, build, ranks,
# load average, sgc_bench's RESULT line).  Used by the A/B scripts in
# bench/results (batch-2026-12-06, hold-2026-12-06).
#   responder_ab.sh OUT BUILD [BUILD...]
set -euo pipefail
OUT=$1
shift
REPO=$(cd "$(dirname "$0")/.." && pwd)
CL=resp$$
mkdir -p "$OUT"
"$REPO/tools/sgc-cluster" up "$CL" --hosts 8 --mtu 1532 >/dev/null
"$1/bench/sgc-responder" --cluster "$CL" --hosts 8 --max-rank 64 --allreduce-window 16 \
	--allreduce-count 363 --deadline 900 >"$OUT/responder.log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait $RPID 2>/dev/null; "$REPO/tools/sgc-cluster" down "$CL" >/dev/null 2>&1' EXIT
for _ in $(seq 100); do grep -q "ready" "$OUT/responder.log" && break; sleep 0.1; done
for rep in 1 2 3; do
	for b in "$@"; do
		for ranks in 33 65; do
			line=$("$REPO/tools/sgc-cluster" run "$CL" --ranks $ranks --accel ebpf --timeout-ms 15000 \
				--deadline 100 -- "$b/bench/sgc_bench" --workload ar363 --mode tput --window 16 \
				--ops 20000 --warmup 100 --sample 100 --responder --serve-idle-ms 60000 |
				grep '^RESULT')
			echo "rep=$rep build=$b ranks=$ranks load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" $line"
		done
	done
done | tee "$OUT/responder.txt"

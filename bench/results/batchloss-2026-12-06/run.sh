#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Batched results under loss: NEW (no batching while more than 5 per mille
# of the results are sent again; a resend ends the hold) against PREV (the
# library before that change), both paths, 17 ranks on one worker host,
# 16 allreduces of 363 x int32 in flight, 10,000 collectives, 3 runs
# each, alternating.  Loss: tools' sgc-faultinj on the switch side of the
# worker host's link, both directions, UDP, 1% per packet; the
# coordinator's and the worker host's eth0 segment GSO bursts in software
# (gso_max_segs 1) so that the injector sees datagrams, as a NIC's
# segmentation would give them.  Then the same without the injector and
# with GSO as usual.
#   run.sh NEW PREV OUT
set -euo pipefail
NEW=$1 PREV=$2 OUT=$3
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
CL=bl$$
mkdir -p "$OUT"
"$REPO/tools/sgc-cluster" up "$CL" --hosts 1 --mtu 1532 >/dev/null
FI=
cleanup() {
	[ -n "$FI" ] && kill "$FI" 2>/dev/null && wait "$FI" 2>/dev/null
	"$REPO/tools/sgc-cluster" down "$CL" >/dev/null 2>&1
}
trap cleanup EXIT
one() {	# LOSS BUILD PATH REP
	local line
	line=$("$REPO/tools/sgc-cluster" run "$CL" --ranks 17 --accel "$3" --timeout-ms 30000 \
		--deadline 200 -- "$2/bench/sgc_bench" --workload ar363 --mode tput --window 16 \
		--ops 10000 | grep '^RESULT')
	echo "loss=$1 build=$2 path=$3 rep=$4 load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" $line"
}
sweep() {	# LOSS: three runs of each path and build, alternating
	local rep path b
	for rep in 1 2 3; do
		for path in off ebpf; do
			for b in "$NEW" "$PREV"; do
				one "$1" "$b" "$path" "$rep"
			done
		done
	done
}
for h in c w1; do ip -n "$CL-$h" link set dev eth0 gso_max_segs 1; done
ip netns exec "$CL-sw" "$NEW/tools/sgc-faultinj" --dev w1 --loss 0.01 --dir both \
	--duration 900 >"$OUT/faultinj.log" 2>&1 &
FI=$!
for _ in $(seq 50); do grep -q attached "$OUT/faultinj.log" && break; sleep 0.1; done
sweep 0.01 | tee "$OUT/loss.txt"
kill "$FI"
wait "$FI" || true
FI=
for h in c w1; do ip -n "$CL-$h" link set dev eth0 gso_max_segs 65535; done
sweep 0 | tee "$OUT/noloss.txt"

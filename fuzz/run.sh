#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# run.sh - run every fuzzer for a bounded time and print what they did.
#
#   fuzz/run.sh FUZZ_BUILD PLAIN_BUILD
#
# FUZZ_BUILD holds the libFuzzer targets (cmake -DSGC_FUZZ=ON, clang);
# PLAIN_BUILD the ordinary build with fuzz_bpf (needs root; skipped with a
# note otherwise).  Environment:
#   FUZZ_SECONDS      seconds per libFuzzer target (default 60)
#   FUZZ_BPF_PACKETS  frames for fuzz_bpf (default 1000000)
#   FUZZ_BPF_SEED     its seed (default: the built-in one)
# The corpus grows in FUZZ_BUILD/fuzz/corpus/<target>; a crash is written
# to FUZZ_BUILD/fuzz/crashes/<target>/ and makes the script exit 1: add it
# to fuzz/fixtures/<target>/ once fixed, so `make test` replays it.  The
# fixtures are part of each target's starting corpus.
set -euo pipefail

fuzz_build=$(realpath "${1:?usage: run.sh FUZZ_BUILD PLAIN_BUILD}")
plain_build=$(realpath "${2:?usage: run.sh FUZZ_BUILD PLAIN_BUILD}")
src=$(cd "$(dirname "$0")" && pwd)
secs=${FUZZ_SECONDS:-60}
packets=${FUZZ_BPF_PACKETS:-1000000}
dir=$fuzz_build/fuzz
failed=0

"$dir/fuzz_make_seeds" "$dir/seeds" >/dev/null

for t in wire rx config; do
	mkdir -p "$dir/corpus/$t" "$dir/crashes/$t"
	log=$dir/fuzz_$t.log
	start=$(date +%s)
	touch "$dir/crashes/$t/.start"	# crashes of earlier runs do not count
	# -rss_limit_mb: ASan's shadow makes the rx target large.
	set +e
	"$dir/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 \
		-artifact_prefix="$dir/crashes/$t/" \
		"$dir/corpus/$t" "$dir/seeds/$t" "$src/fixtures/$t" >"$log" 2>&1
	rc=$?
	set -e
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	crashes=$(find "$dir/crashes/$t" -type f -newer "$dir/crashes/$t/.start" | wc -l)
	echo "fuzz_$t: ${runs:-0} executions in $(($(date +%s) - start)) s, coverage ${cov:-?}" \
	     "edges, corpus $(find "$dir/corpus/$t" -type f | wc -l) inputs, crashes $crashes" \
	     "(exit $rc; log $log)"
	if ((rc != 0 || crashes != 0)); then
		failed=1
		grep -m5 -E 'ERROR|SUMMARY|fuzz_' "$log" | sed 's/^/    /' || true
	fi
done

# The kernel programs, coverage-guided by outcome (fuzz_bpf_lf), then the
# long structured run (fuzz_bpf).
if [[ $(id -u) != 0 ]]; then
	echo "fuzz_bpf_lf: skipped: needs root (BPF_PROG_LOAD, BPF_PROG_RUN)"
elif [[ -x $dir/fuzz_bpf_lf ]]; then
	mkdir -p "$dir/corpus/bpf" "$dir/crashes/bpf"
	"$dir/fuzz_bpf" -w "$dir/seeds/bpf"
	log=$dir/fuzz_bpf_lf.log
	start=$(date +%s)
	touch "$dir/crashes/bpf/.start"
	set +e
	"$dir/fuzz_bpf_lf" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 \
		-artifact_prefix="$dir/crashes/bpf/" "$dir/corpus/bpf" "$dir/seeds/bpf" \
		"$src/fixtures/bpf" >"$log" 2>&1
	rc=$?
	set -e
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	frames=$(grep -o 'fuzz_bpf_lf: [0-9]* frames' "$log" | tail -1 | cut -d' ' -f2)
	crashes=$(find "$dir/crashes/bpf" -type f -newer "$dir/crashes/bpf/.start" | wc -l)
	echo "fuzz_bpf_lf: ${runs:-0} executions (${frames:-?} frames through gather_prog and" \
	     "the tc programs) in $(($(date +%s) - start)) s, corpus" \
	     "$(find "$dir/corpus/bpf" -type f | wc -l) inputs, crashes $crashes (exit $rc; log $log)"
	if ((rc != 0 || crashes != 0)); then
		failed=1
		grep -m5 -E 'ERROR|SUMMARY|fuzz_bpf' "$log" | sed 's/^/    /' || true
	fi
fi

if [[ -x $plain_build/fuzz/fuzz_bpf ]]; then
	set +e
	"$plain_build/fuzz/fuzz_bpf" -n "$packets" ${FUZZ_BPF_SEED:+-s "$FUZZ_BPF_SEED"}
	rc=$?
	set -e
	if ((rc == 77)); then
		echo "fuzz_bpf: skipped (needs root and BPF; see the reason above)"
	elif ((rc != 0)); then
		failed=1
	fi
else
	echo "fuzz_bpf: not built in $plain_build" >&2
	failed=1
fi
exit $failed

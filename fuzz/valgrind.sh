#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# valgrind.sh - valgrind memcheck over the user-space path.
#
#   fuzz/valgrind.sh BUILD [--quick]
#
# Runs under `valgrind --error-exitcode=99 --leak-check=full`:
#   1. every unit test, and the fuzz replays (the receive path of a whole
#      communicator with its socket and io_uring, over the seed corpus);
#   2. collectives in the virtual cluster (tools/sgc-cluster session, user-
#      space path SGC_ACCEL=off), EVERY rank under valgrind: world 2 with
#      every suite, world 3 and world 5 with every collective and
#      scatter-gather (--quick: world 3 only).
# Exit 0 when every run is clean, 1 otherwise; 77 when valgrind is missing.
#
# io_uring and valgrind 3.19: the io_uring syscalls are wrapped and work,
# but memcheck cannot see the kernel writing received datagrams into the
# provided-buffer ring, so without help every read of a received byte is
# an "uninitialised value".  libsgcoll/src/io.c marks the bytes each
# receive completion reports as defined (VALGRIND_MAKE_MEM_DEFINED, a no-op
# outside valgrind), so no suppression is needed.  Still out of memcheck's
# sight: whether the bytes handed to the kernel in io_uring SQEs (sends)
# are initialised, which it checks for plain send() but not for io_uring.
# The eBPF path is not run: BPF maps and programs are kernel memory.
set -uo pipefail

build=$(realpath "${1:?usage: valgrind.sh BUILD [--quick]}")
quick=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
cluster=$src/tools/sgc-cluster
vg=(valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect -q)
failed=0 runs=0

if ! command -v valgrind >/dev/null; then
	echo "SKIP: valgrind is not installed (apt-get install valgrind)" >&2
	exit 77
fi

if grep -qE '^SGC_(SANITIZE|FUZZ):BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
	echo "SKIP: $build is built with ASan, which cannot run under valgrind" >&2
	exit 77
fi

run() {
	local what=$1 rc start
	shift
	start=$(date +%s)
	"$@" >"$tmp/out" 2>&1
	rc=$?
	runs=$((runs + 1))
	if ((rc == 0)); then
		echo "valgrind: clean: $what ($(($(date +%s) - start)) s)"
	elif ((rc == 77)); then
		echo "valgrind: skipped: $what: $(grep -m1 SKIP "$tmp/out")"
	else
		failed=1
		echo "valgrind: FAILED (exit $rc): $what"
		grep -E '==[0-9]+== (ERROR SUMMARY|[A-Z].*(uninit|Invalid|lost|leak))|FAIL|rank [0-9]+.*exit' \
			"$tmp/out" | head -20 | sed 's/^/    /'
	fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# test_errors' test_debug_switch re-runs /proc/self/exe, which under
# valgrind is valgrind's own tool binary, so that one cmocka test cannot
# pass there; the rest of the program must, with no memcheck error.
check_errors_test() {
	local out rc
	out=$("${vg[@]}" "$1" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	((rc == 0 || rc == 99)) && return $rc
	if grep -q '^ 1 FAILED TEST(S)' <<<"$out" &&
	   grep -q '^\[  FAILED  \] test_debug_switch' <<<"$out"; then
		return 0
	fi
	return $rc
}

# ---- 1. in-process ----
for t in "$build"/tests/unit/test_*; do
	[[ -x $t ]] || continue
	if [[ $(basename "$t") == test_errors ]]; then
		run "test_errors (all but test_debug_switch, which execs /proc/self/exe)" \
			check_errors_test "$t"
	else
		run "$(basename "$t")" "${vg[@]}" "$t"
	fi
done
"$build/fuzz/fuzz_make_seeds" "$tmp/seeds" >/dev/null
for t in wire rx config; do
	run "fuzz_${t}_replay (seeds + fixtures)" "${vg[@]}" "$build/fuzz/fuzz_${t}_replay" \
		"$tmp/seeds/$t" "$src/fuzz/fixtures/$t"
done

# ---- 2. every rank of a cluster under valgrind ----
session() {	# HOSTS RANKS ARGS...
	local hosts=$1 ranks=$2
	shift 2
	run "coll_check, $ranks ranks, every rank under valgrind: $*" \
		"$cluster" session --hosts "$hosts" --ranks "$ranks" --accel off \
		--timeout-ms 30000 --deadline 240 --logdir "$tmp/logs-$ranks-$runs" \
		-- "${vg[@]}" "$build/tests/e2e/coll_check" "$@"
	# What rank 0 checked (its output is copied to the session's).
	grep -h "^rank 0: ok:" "$tmp/out" | sed 's/^/    /'
	rm -rf "$tmp"/logs-"$ranks"-*
}

if [[ $(id -u) != 0 ]]; then
	echo "valgrind: cluster runs skipped: they need root (network namespaces)"
elif [[ $quick == --quick ]]; then
	session 2 3 -c 0,1,363,5000 -b 363
else
	session 1 2 -c 0,1,363,100000 -b 363 -s allreduce,inplace,reduce,bcast,barrier,nb,sg,float
	session 2 3 -c 0,1,363,5000 -b 363
	session 4 5 -c 1,363 -b 1 -s allreduce,reduce,bcast,barrier,nb,sgpartial
fi

if ((failed)); then
	echo "valgrind: $runs runs, some NOT clean"
	exit 1
fi
echo "valgrind: $runs runs, all clean (0 errors, 0 definite/indirect leaks)"
exit 0

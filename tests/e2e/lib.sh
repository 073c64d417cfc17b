# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Shared helpers for the e2e scripts (sourced).  Each script gets the
# cluster tool as $CLUSTER and exits 77 with a reason when it cannot run.

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: needs root for network namespaces (run as root)" >&2
		exit 77
	fi
	if ! ip netns list >/dev/null 2>&1; then
		echo "SKIP: 'ip netns' is not available (install iproute2)" >&2
		exit 77
	fi
}

# Background PIDs this script started; killed (by PID) on exit.
BG_PIDS=()
CLUSTER_NAME=""
LOGDIR=""

# stop_bg: end the background processes started so far (by PID).
stop_bg() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	BG_PIDS=()
}

cleanup() {
	stop_bg
	[ -n "$CLUSTER_NAME" ] && "$CLUSTER" down "$CLUSTER_NAME" >/dev/null 2>&1
	[ -n "$LOGDIR" ] && rm -rf "$LOGDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# The mpirun flags DESIGN.md gives for Open MPI on these machines: tcp over
# lo, oversubscribed ranks yielding instead of spinning.  Add -np N.
# shellcheck disable=SC2034,SC2054 # used by the scripts that source this; commas are MCA values
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none --mca pml ob1
	--mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo
	--mca mpi_yield_when_idle 1)

# need_mpi PROG WHAT: skip, saying what to install, unless CMake built PROG
# (passed as "" when it found no MPI; WHAT names what was not built) and
# mpirun is installed.
need_mpi() {
	local deps="tools/install-deps.sh (as root) installs Open MPI: openmpi-bin, libopenmpi-dev"

	if [ -z "$1" ]; then
		echo "SKIP: no Open MPI at configure time, so $2 was not built;" \
			"$deps; then configure again" >&2
		exit 77
	fi
	command -v mpirun >/dev/null ||
		{ echo "SKIP: mpirun is not installed; $deps" >&2; exit 77; }
	[ -x "$1" ] || fail "no $(basename "$1") at $1"
}

# need_accel ACCEL: with ACCEL=ebpf, skip unless the kernel has what the
# eBPF path needs and the library cannot do without: BTF and tcx (Linux
# 6.6+).  Call it before the test's work begins; from then on a run that
# fails, or exits 77 anyway, is a failure (run_fail).
need_accel() {
	local maj min

	[ "$1" = ebpf ] || return 0
	if [ ! -r /sys/kernel/btf/vmlinux ]; then
		echo "SKIP: the eBPF path needs kernel BTF (/sys/kernel/btf/vmlinux," \
			"CONFIG_DEBUG_INFO_BTF=y); kernel $(uname -r) has none" >&2
		exit 77
	fi
	IFS=. read -r maj min _ <<<"$(uname -r)"
	if ((maj < 6 || (maj == 6 && ${min%%[!0-9]*} < 6))); then
		echo "SKIP: the eBPF path attaches its TC programs with tcx, which needs" \
			"Linux 6.6+; this is $(uname -r)" >&2
		exit 77
	fi
}

# run_fail RUNDIR MESSAGE: fail, first showing the end of every rank's log
# of the run that logged to RUNDIR (sgc-cluster --logdir).
run_fail() {
	local dir=$1 f
	shift
	for f in "$dir"/rank-*.log; do
		[ -e "$f" ] || continue
		echo "---- ${f##*/} (last 40 lines)" >&2
		tail -n 40 "$f" >&2
	done
	fail "$*"
}

# bench_run LABEL ACCEL FIELDS RUN_OPTIONS... -- SGC_BENCH ARGS...: one
# `sgc-cluster run` of sgc_bench on $CLUSTER_NAME with SGC_ACCEL=ACCEL
# (rank logs under $LOGDIR), and its RESULT line checked: there, every
# result exact (verified=1, bad_results=0), on the path asked for (accel=1
# for ebpf only).  Prints LABEL and the RESULT fields FIELDS names (a grep
# alternation: 'tput_med\|retx').  Fails, naming LABEL, otherwise.
BENCH_RUNS=0
bench_run() {
	local label=$1 accel=$2 fields=$3 run line want=0
	shift 3
	run=$LOGDIR/bench-$((++BENCH_RUNS))
	"$CLUSTER" run "$CLUSTER_NAME" --accel "$accel" --logdir "$run" "$@" >"$run.out" 2>&1 ||
		{ cat "$run.out" >&2; run_fail "$run" "$label: sgc_bench failed"; }
	line=$(grep '^RESULT' "$run.out")
	[ -n "$line" ] || { cat "$run.out" >&2; fail "$label: no result line"; }
	grep -q ' verified=1 ' <<<"$line" || fail "$label: results not exact: $line"
	grep -q ' bad_results=0 ' <<<"$line" || fail "$label: wrong results: $line"
	[ "$accel" = ebpf ] && want=1
	grep -q " accel=$want " <<<"$line" || fail "$label: wrong path: $line"
	echo "   $label: $(grep -o "\($fields\)=[0-9.]*" <<<"$line" | tr '\n' ' ')"
}

# cluster_up PREFIX HOSTS [MTU]: a virtual cluster PREFIX$$ of HOSTS worker
# hosts (links of MTU bytes, if given), named in $CLUSTER_NAME, which
# cleanup() tears down.
cluster_up() {
	CLUSTER_NAME=$1$$
	"$CLUSTER" up "$CLUSTER_NAME" --hosts "$2" ${3:+--mtu "$3"} >/dev/null || fail "cluster up"
}

# The coordinator's address on $CLUSTER_NAME (host c, eth0); fails the
# test when it has none.
coord_ip() {
	local ip

	ip=$("$CLUSTER" exec "$CLUSTER_NAME" c -- ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
	[ -n "$ip" ] || fail "no coordinator address"
	echo "$ip"
}

# faultinj_start LOGPREFIX FAULTINJ ARGS...: one sgc-faultinj per worker
# host of $CLUSTER_NAME ($HOSTS hosts), on the switch side of its link,
# logging to LOGPREFIX-wH.log; returns once every one has attached.
faultinj_start() {
	local pre=$1 fi=$2 h i n=0
	shift 2
	# The injector sits on the switch's veth, where a UDP GSO send is
	# still one skb: it would drop up to 64 datagrams as one.  A real
	# link loses datagrams one at a time (segmentation happens before the
	# wire), so the ranks send singly under injected faults.
	export SGC_GSO=0
	for ((h = 1; h <= HOSTS; h++)); do
		"$CLUSTER" exec "$CLUSTER_NAME" sw -- "$fi" --dev "w$h" "$@" >"$pre-w$h.log" 2>&1 &
		BG_PIDS+=($!)
	done
	for ((i = 0; i < 100; i++)); do
		n=$(grep -l attached "$pre"-w*.log 2>/dev/null | wc -l)
		[ "$n" -ge "$HOSTS" ] && return 0
		sleep 0.1
	done
	fail "fault injectors did not attach: $(cat "$pre"-w*.log)"
}

# faultinj_verify "FAULT ARGS" LOG...: 0 if the injectors that logged to
# LOG... (one each; stopped, so each printed its counters line) together
# did every fault FAULT ARGS asked for at least once: dropped for --loss,
# duplicated for --dup, reordered for --reorder, corrupted for --corrupt.
# A run under faults that were never injected tested nothing, however exact
# its results.  Prints the summed counters; 1 and the reason on stderr
# otherwise.
faultinj_verify() {
	local faults=$1 f opt rate counter n sums="" why=""
	local -a args
	shift
	(($#)) || { echo "FAIL: no fault injector logs" >&2; return 1; }
	for f in "$@"; do
		if ! grep -q '^faultinj: ' "$f" 2>/dev/null; then
			echo "FAIL: fault injector log $f has no counters line" \
				"(did it die before it was stopped?): $(cat "$f" 2>/dev/null)" >&2
			return 1
		fi
	done
	read -ra args <<<"$faults"
	for ((n = 0; n < ${#args[@]}; n++)); do
		opt=${args[n]}
		case $opt in
		--loss) counter=dropped ;;
		--dup) counter=duplicated ;;
		--reorder) counter=reordered ;;
		--corrupt) counter=corrupted ;;
		*) continue ;;
		esac
		rate=${args[n + 1]:-0}
		awk -v r="$rate" 'BEGIN { exit !(r > 0) }' || continue
		f=$(cat "$@" | sed -n "s/^faultinj: .* $counter=\([0-9]*\).*/\1/p" |
			awk '{ s += $1 } END { printf "%d", s }')
		sums+=" $counter=$f"
		if [ "$f" = 0 ]; then
			why+="FAIL: asked for $opt $rate, but the $# fault injectors report $counter=0:"
			why+=" no such fault was injected, so the run did not test it"$'\n'
		fi
	done
	echo "faultinj: $# injectors, in total:${sums:- (no faults asked for)}"
	[ -z "$why" ] || { printf '%s' "$why" >&2; return 1; }
}

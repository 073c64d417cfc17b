#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# fault_matrix.sh CLUSTER FAULTINJ COLL_CHECK [OPTIONS]
#
# Collectives under injected faults, every result checked exactly by
# coll_check against its reference, for each fault setting on each path.
# One virtual cluster; for every (path, setting) an injector on every worker
# link (switch side, both directions), then coll_check on every rank until
# rank 0 has completed COLLS collectives or SECONDS passed.  Counts per run:
# collectives (rank 0), retransmits (rank 0, and summed over ranks), wrong
# results, calls that timed out, what the injectors did, wall time.
#
# OPTIONS
#   --paths "off ebpf"       SGC_ACCEL values to run
#   --settings "A B ..."     from: none loss1 loss10 loss30 dup10 reorder
#                            mixed (loss 5% + dup 10% + reorder 10%),
#                            corrupt1, all (mixed + corrupt 1%); default:
#                            loss1 loss10 loss30 dup10 reorder mixed
#   --colls N                collectives per run (default 10000)
#   --seconds S              time bound per run (default 600)
#   --hosts H --ranks R      cluster shape (default 8 hosts, 33 ranks)
#   --out PREFIX             write PREFIX.csv and PREFIX.md
#   --keep-logs DIR          keep each run's rank logs under DIR
#   --title TEXT             first line of PREFIX.md
#   --strict                 a timeout or an unfinished run fails (ctest)
#   -- ARGS                  coll_check arguments (default: a mix of small
#                            allreduce/reduce/bcast/barrier/non-blocking/sg)
# Exit: 0 if no result was wrong and the injectors did every fault asked
# for (their counters above 0; and, with --strict, every run completed its
# collectives without a timeout), 1 otherwise; 77 (skip) only before any
# run, when the kernel lacks what a path in --paths needs (need_accel).
set -uo pipefail
CLUSTER=${1:?usage: fault_matrix.sh CLUSTER FAULTINJ COLL_CHECK [OPTIONS]}
FAULTINJ=${2:?}
CHECK=${3:?}
shift 3
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

PATHS="off ebpf"
SETTINGS="loss1 loss10 loss30 dup10 reorder mixed"
COLLS=10000
SECONDS_PER_RUN=600
HOSTS=8
RANKS=33
OUT=""
KEEP=""
STRICT=0
TITLE="Collectives under injected faults"
CHECK_ARGS=(-s "allreduce,reduce,bcast,barrier,nb,sg" -c "1,363" -b 1)
while (($#)); do
	case $1 in
	--paths) PATHS=$2; shift 2 ;;
	--settings) SETTINGS=$2; shift 2 ;;
	--colls) COLLS=$2; shift 2 ;;
	--seconds) SECONDS_PER_RUN=$2; shift 2 ;;
	--hosts) HOSTS=$2; shift 2 ;;
	--ranks) RANKS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--keep-logs) KEEP=$2; shift 2 ;;
	--strict) STRICT=1; shift ;;
	--title) TITLE=$2; shift 2 ;;
	--) shift; CHECK_ARGS=("$@"); break ;;
	*) fail "unknown option $1" ;;
	esac
done

faults_of() {
	case $1 in
	none) echo "" ;;
	loss1) echo "--loss 0.01" ;;
	loss10) echo "--loss 0.1" ;;
	loss30) echo "--loss 0.3" ;;
	dup10) echo "--dup 0.1" ;;
	reorder) echo "--reorder 0.1" ;;
	mixed) echo "--loss 0.05 --dup 0.1 --reorder 0.1" ;;
	soak) echo "--loss 0.02 --dup 0.02 --reorder 0.05" ;;
	corrupt1) echo "--corrupt 0.01" ;;
	all) echo "--loss 0.05 --dup 0.1 --reorder 0.1 --corrupt 0.01" ;;
	*) return 1 ;;
	esac
}
for s in $SETTINGS; do
	faults_of "$s" >/dev/null || fail "unknown setting '$s'"
done

need_root
for path in $PATHS; do
	need_accel "$path"
done
[ -x "$FAULTINJ" ] || fail "no sgc-faultinj at $FAULTINJ"
[ -x "$CHECK" ] || fail "no coll_check at $CHECK"

LOGDIR=$(mktemp -d /tmp/sgc-faultmatrix.XXXXXX)
cluster_up sgcfm "$HOSTS"

# sum FIELD FILES...: the sum of FIELD=N over the "counts:" lines in FILES
sum_counts() {
	local f=$1
	shift
	cat "$@" 2>/dev/null | grep ' counts: ' |
		sed -n "s/.* $f=\([0-9.]*\).*/\1/p" | awk '{ s += $1 } END { printf "%d", s }'
}
# field FIELD LINE
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
# sum of FIELD over the injectors' counter lines
sum_fi() {
	cat "$LOGDIR"/fi-*.log 2>/dev/null | grep '^faultinj:' |
		sed -n "s/.* $1=\([0-9]*\).*/\1/p" | awk '{ s += $1 } END { printf "%d", s }'
}

CSV="path,setting,faults,ranks,collectives,checks,retransmits_rank0,retransmits_all_ranks,wrong,timeouts,failed_ranks,seconds,injected_dropped,injected_duplicated,injected_reordered,injected_corrupted,status"
MD=""
bad=0
t_all=$(date +%s)
for path in $PATHS; do
	for s in $SETTINGS; do
		faults=$(faults_of "$s")
		rm -f "$LOGDIR"/fi-*.log
		rm -rf "$LOGDIR/run"
		if [ -n "$faults" ]; then
			# shellcheck disable=SC2086 # faults is a list of options
			faultinj_start "$LOGDIR/fi" "$FAULTINJ" --dir both $faults
		fi
		echo "== path=$path setting=$s (${faults:-no faults}): $COLLS collectives (0: no bound) or ${SECONDS_PER_RUN}s at $RANKS ranks"
		t0=$(date +%s.%N)
		"$CLUSTER" run "$CLUSTER_NAME" --ranks "$RANKS" --timeout-ms 30000 \
			--deadline $((SECONDS_PER_RUN + 120)) --accel "$path" --logdir "$LOGDIR/run" \
			-- "$CHECK" "${CHECK_ARGS[@]}" -i 100000000 -N "$COLLS" -T "$SECONDS_PER_RUN" -S 2>&1 |
			tee "$LOGDIR/run.out" | grep --line-buffered -E '^rank 0: (progress|counts)'
		rc=${PIPESTATUS[0]}
		t1=$(date +%s.%N)
		stop_bg
		r0=$(grep ' counts: ' "$LOGDIR/run/rank-0.log" 2>/dev/null | tail -1)
		colls=$(field collectives "$r0")
		checks=$(field checks "$r0")
		rt0=$(field retransmits "$r0")
		rtall=$(sum_counts retransmits "$LOGDIR"/run/rank-*.log)
		wrong=$(sum_counts wrong "$LOGDIR"/run/rank-*.log)
		touts=$(sum_counts timeouts "$LOGDIR"/run/rank-*.log)
		nfailed=$(grep -l 'FAIL' "$LOGDIR"/run/rank-*.log 2>/dev/null | wc -l)
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
		status=ok
		if [ -z "$r0" ] || [ "$rc" != 0 ]; then
			status=failed
			grep -h 'FAIL\|SKIP' "$LOGDIR"/run/rank-*.log | sort | uniq -c | sort -rn | head -5
			# need_accel found what the path needs: a run that skips
			# tested nothing, --strict or not.
			[ "$rc" = 77 ] && bad=1
			grep -E 'hung|failed ranks|more failed' "$LOGDIR/run.out" | head -3
		fi
		[ "${wrong:-0}" -gt 0 ] && status=WRONG
		[ "$status" = WRONG ] && bad=1
		# A row for faults the injectors never did would claim what was
		# not tested: a failure, --strict or not.
		if [ -n "$faults" ] && ! faultinj_verify "$faults" "$LOGDIR"/fi-w*.log; then
			[ "$status" = ok ] && status=not-injected
			bad=1
		fi
		[ "$STRICT" = 1 ] && [ "$status" != ok ] && bad=1
		[ "$STRICT" = 1 ] && [ "${colls:-0}" -lt "$COLLS" ] && {
			echo "only ${colls:-0} of $COLLS collectives within ${SECONDS_PER_RUN}s" >&2
			bad=1
		}
		line="$path,$s,$faults,$RANKS,${colls:-0},${checks:-0},${rt0:-0},${rtall:-0},${wrong:-0},${touts:-0},$nfailed,$secs,$(sum_fi dropped),$(sum_fi duplicated),$(sum_fi reordered),$(sum_fi corrupted),$status"
		echo "result: $line"
		CSV+=$'\n'"$line"
		MD+="| $path | $s | ${faults:-none} | ${colls:-0} | ${rt0:-0} | ${rtall:-0} | ${wrong:-0} | ${touts:-0} | $secs | $(sum_fi dropped) / $(sum_fi duplicated) / $(sum_fi reordered) / $(sum_fi corrupted) | $status |"$'\n'
		if [ -n "$KEEP" ]; then
			mkdir -p "$KEEP/$path-$s"
			cp "$LOGDIR"/run/rank-*.log "$LOGDIR"/fi-*.log "$LOGDIR/run.out" "$KEEP/$path-$s/" 2>/dev/null
		fi
	done
done
t_end=$(date +%s)

echo "$CSV"
if [ -n "$OUT" ]; then
	mkdir -p "$(dirname "$OUT")"
	echo "$CSV" >"$OUT.csv"
	{
		echo "# $TITLE"
		echo
		echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs; $RANKS ranks on $HOSTS worker hosts;"
		echo "faults on every worker link (switch side, both directions); coll_check ${CHECK_ARGS[*]};"
		if [ "$COLLS" -gt 0 ]; then
			echo "up to $COLLS collectives or ${SECONDS_PER_RUN}s per run; SGC_TIMEOUT_MS=30000. Total $((t_end - t_all)) s."
		else
			echo "${SECONDS_PER_RUN}s per run; SGC_TIMEOUT_MS=30000. Total $((t_end - t_all)) s."
		fi
		echo
		echo "| path | setting | faults | collectives | retransmits (rank 0) | retransmits (all ranks) | wrong | timeouts | wall s | injected drop / dup / reorder / corrupt | status |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|"
		printf '%s' "$MD"
	} >"$OUT.md"
	echo "wrote $OUT.csv and $OUT.md"
fi
[ "$bad" = 0 ] || fail "wrong results, runs that skipped, faults that were not injected, or (--strict) runs that did not complete"
echo "ok: no wrong result in any run"

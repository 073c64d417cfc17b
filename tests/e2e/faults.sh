#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: collectives under injected loss/duplication on every worker link
# (both directions, switch side) still give exact results.
#   faults.sh CLUSTER FAULTINJ COLL_CHECK HOSTS RANKS "FAULT ARGS" [COLL_CHECK ARGS...]
set -uo pipefail
CLUSTER=$1
FAULTINJ=$2
CHECK=$3
HOSTS=$4
RANKS=$5
FAULTS=$6
shift 6
. "$(dirname "$0")/lib.sh"
need_root

CLUSTER_NAME=sgcflt$$
LOGDIR=$(mktemp -d)
"$CLUSTER" up "$CLUSTER_NAME" --hosts "$HOSTS" >/dev/null || fail "cluster up"
for ((h = 1; h <= HOSTS; h++)); do
	# shellcheck disable=SC2086 # FAULTS is a list of options
	"$CLUSTER" exec "$CLUSTER_NAME" sw -- "$FAULTINJ" --dev "w$h" ${FAULT_DIR:---dir both} $FAULTS \
		>"$LOGDIR/faultinj-w$h.log" 2>&1 &
	BG_PIDS+=($!)
done
for ((i = 0; i < 100; i++)); do
	n=$(grep -l attached "$LOGDIR"/faultinj-*.log 2>/dev/null | wc -l)
	[ "$n" -ge "$HOSTS" ] && break
	sleep 0.1
done
[ "$n" -ge "$HOSTS" ] || fail "fault injectors did not attach: $(cat "$LOGDIR"/faultinj-*.log)"

"$CLUSTER" run "$CLUSTER_NAME" --ranks "$RANKS" --timeout-ms 30000 --deadline 600 \
	--accel "${SGC_TEST_ACCEL:-off}" --logdir "$LOGDIR/run" -- "$CHECK" "$@"
rc=$?
for p in "${BG_PIDS[@]}"; do
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
BG_PIDS=()
cat "$LOGDIR"/faultinj-*.log | grep '^faultinj:' | head -3
[ "$rc" = 0 ] || fail "collectives under faults ($FAULTS) failed"
grep -q "retransmits" "$LOGDIR/run/rank-0.log" || true
echo "ok: exact results under $FAULTS"

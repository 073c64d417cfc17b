#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: collectives under injected loss/duplication on every worker link
# (both directions, switch side) still give exact results, and the
# injectors really did each fault asked for (their counters above 0).
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

LOGDIR=$(mktemp -d)
cluster_up sgcflt "$HOSTS"
# shellcheck disable=SC2086 # FAULT_DIR and FAULTS are lists of options
faultinj_start "$LOGDIR/faultinj" "$FAULTINJ" ${FAULT_DIR:---dir both} $FAULTS

# SGC_TEST_KEY: run the job with that SGC_KEY.
keyenv=()
[ -z "${SGC_TEST_KEY:-}" ] || keyenv=(--env "SGC_KEY=$SGC_TEST_KEY")
# SGC_TEST_ALGO: run the job with that SGC_ALGO.
[ -z "${SGC_TEST_ALGO:-}" ] || keyenv+=(--env "SGC_ALGO=$SGC_TEST_ALGO")
"$CLUSTER" run "$CLUSTER_NAME" --ranks "$RANKS" --timeout-ms 30000 --deadline 600 \
	--accel "${SGC_TEST_ACCEL:-off}" "${keyenv[@]}" --logdir "$LOGDIR/run" -- "$CHECK" "$@"
rc=$?
stop_bg
cat "$LOGDIR"/faultinj-*.log | grep '^faultinj:' | head -3
[ "$rc" = 0 ] || fail "collectives under faults ($FAULTS) failed"
faultinj_verify "$FAULTS" "$LOGDIR"/faultinj-w*.log ||
	fail "the fault injectors did not inject $FAULTS"
echo "ok: exact results under $FAULTS"

#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# soak.sh CLUSTER FAULTINJ COLL_CHECK [--seconds S] [--paths "off ebpf"]
#         [--faults SETTING] [--out PREFIX]
#
# The soak run: mixed collectives (allreduce, in-place allreduce, reduce,
# broadcast, barrier, non-blocking, scatter-gather; 1 to 100,000 elements,
# every dtype) at 33 ranks, with loss, duplication and reordering injected
# on every worker link, for S seconds in all (default 600), split evenly
# between the paths.  Every result is checked exactly.  Prints and writes
# (PREFIX.csv, PREFIX.md) operations done, retransmits and wrong results;
# exits 1 if any result was wrong or a run failed.  Not part of `make test`:
# `make soak` (SOAK_SECONDS=180 for a short one).
set -uo pipefail
CLUSTER=${1:?usage: soak.sh CLUSTER FAULTINJ COLL_CHECK [--seconds S] [--paths P] [--out PREFIX]}
FAULTINJ=${2:?}
CHECK=${3:?}
shift 3
TOTAL=600
PATHS="off ebpf"
FAULTS=soak
OUT=""
while (($#)); do
	case $1 in
	--seconds) TOTAL=$2; shift 2 ;;
	--paths) PATHS=$2; shift 2 ;;
	--faults) FAULTS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
npaths=$(wc -w <<<"$PATHS")
per=$((TOTAL / npaths))
((per >= 10)) || { echo "soak.sh: --seconds too small" >&2; exit 2; }
out_args=()
[ -n "$OUT" ] && out_args=(--out "$OUT")

echo "soak: ${TOTAL}s in all, ${per}s per path ($PATHS), faults setting '$FAULTS'"
# No collective count bound: each run stops at the end of the iteration
# during which its time ran out.
exec bash "$(dirname "$0")/../tests/e2e/fault_matrix.sh" "$CLUSTER" "$FAULTINJ" "$CHECK" \
	--paths "$PATHS" --settings "$FAULTS" --colls 0 --seconds "$per" --strict \
	--title "Soak: mixed collectives under faults" "${out_args[@]}" \
	-- -s allreduce,inplace,reduce,bcast,barrier,nb,sg -c 1,363,5000,100000 -b 363

#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Runs a rank's program; on rank 1 it first starts sending junk datagrams to
# the coordinator for SECONDS (at most 500,000 of them), so that rank 0 joins
# the job and starts its eBPF path while its socket is busy.
#   flood_rank1.sh SECONDS PROGRAM ARGS...
set -u
secs=$1
shift
if [ "${SGC_RANK:-}" = 1 ]; then
	(
		exec 3>"/dev/udp/${SGC_COORDINATOR%:*}/${SGC_COORDINATOR##*:}" || exit 0
		end=$((SECONDS + secs))
		for ((n = 0; n < 500000 && SECONDS < end; n++)); do
			printf 'not-sgcoll' >&3 2>/dev/null
		done
	) &
fi
exec "$@"

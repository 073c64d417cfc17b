#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: examples/mpi_compare under mpirun (sgc_init_mpi: rank and size from
# MPI_COMM_WORLD), with the coordinator rank 0 picks, then named in
# SGC_COORDINATOR, then in SGC_COORDINATOR_FILE; MPI_Allreduce and
# sgc_allreduce must agree.  Loopback only.
#   mpirun.sh MPI_COMPARE
# MPI_COMPARE is "" when CMake found no MPI and did not build it: then, or
# without mpirun, the test skips saying what to install.
set -uo pipefail
PROG=${1:-}
. "$(dirname "$0")/lib.sh"
need_mpi "$PROG" examples/mpi_compare
LOGDIR=$(mktemp -d)
mpi=("${MPIRUN[@]}" -np 4)
port=$((20000 + $$ % 20000))
unset SGC_COORDINATOR SGC_COORDINATOR_FILE SGC_PORT

timeout 120 "${mpi[@]}" -x SGC_ACCEL=off -x SGC_TIMEOUT_MS=20000 \
	"$PROG" -n 50 >"$LOGDIR/picked.log" 2>&1 ||
	fail "mpirun without SGC_COORDINATOR failed: $(tail -5 "$LOGDIR/picked.log")"
grep "results identical" "$LOGDIR/picked.log" || fail "no comparison line: $(tail -5 "$LOGDIR/picked.log")"

timeout 120 "${mpi[@]}" -x SGC_COORDINATOR=127.0.0.1:$port -x SGC_ACCEL=off -x SGC_TIMEOUT_MS=20000 \
	"$PROG" -n 200 >"$LOGDIR/env.log" 2>&1 ||
	fail "mpirun with SGC_COORDINATOR failed: $(tail -5 "$LOGDIR/env.log")"
grep "results identical" "$LOGDIR/env.log" || fail "no comparison line: $(tail -5 "$LOGDIR/env.log")"

echo "127.0.0.1:$((port + 1))" >"$LOGDIR/coordinator"
timeout 120 "${mpi[@]}" -x SGC_COORDINATOR_FILE="$LOGDIR/coordinator" -x SGC_ACCEL=off \
	-x SGC_TIMEOUT_MS=20000 "$PROG" -n 50 >"$LOGDIR/file.log" 2>&1 ||
	fail "mpirun with SGC_COORDINATOR_FILE failed: $(tail -5 "$LOGDIR/file.log")"
grep "results identical" "$LOGDIR/file.log" || fail "no comparison line: $(tail -5 "$LOGDIR/file.log")"

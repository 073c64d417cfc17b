#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Runs one Open MPI rank in its host of a virtual cluster (tools/sgc-cluster),
# as libsgcoll's ranks are placed: rank 0 in NAME-c, rank r >= 1 in worker
# host NAME-w((r - 1) % HOSTS + 1).  So Open MPI and libsgcoll cross the
# same veths and switch.  mpirun runs in NAME-c and exports the two
# variables:
#   ip netns exec NAME-c env PMIX_MCA_ptl_tcp_remote_connections=1 \
#       PMIX_MCA_ptl_tcp_if_include=eth0 mpirun --mca btl_tcp_if_include eth0 \
#       --mca oob_tcp_if_include eth0 -x SGC_NS_CLUSTER=NAME -x SGC_NS_HOSTS=HOSTS \
#       -np N bench/mpi_netns.sh PROG ARGS...
# (PMIx's server listens on eth0, not loopback, which each namespace has
# its own of.)
set -euo pipefail
r=${OMPI_COMM_WORLD_RANK:?"unset: run this under Open MPI's mpirun"}
cl=${SGC_NS_CLUSTER:?"unset: the cluster's name, passed by mpirun -x"}
hosts=${SGC_NS_HOSTS:?"unset: its worker host count, passed by mpirun -x"}
if ((r == 0)); then
	ns=$cl-c
else
	ns=$cl-w$(((r - 1) % hosts + 1))
fi
exec ip netns exec "$ns" "$@"

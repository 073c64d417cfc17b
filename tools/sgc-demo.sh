#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# `make demo`: 1 coordinator + 15 workers on a virtual cluster of network
# namespaces; allreduce, broadcast, barrier and a scatter-gather vote, each
# result checked, timings shown.  The cluster is torn down on any exit.
#   sgc-demo.sh BUILD_DIR
set -uo pipefail
BUILD=${1:-build}
here=$(dirname "$(readlink -f "$0")")
if [ "$(id -u)" != 0 ]; then
	echo "make demo needs root to create network namespaces: run it as root" >&2
	exit 1
fi
exec "$here/sgc-cluster" session --hosts 4 --ranks 16 --accel "${SGC_ACCEL:-auto}" \
	--timeout-ms 20000 --deadline 300 -- "$BUILD/examples/demo" "$@"

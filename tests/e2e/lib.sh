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

cleanup() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	[ -n "$CLUSTER_NAME" ] && "$CLUSTER" down "$CLUSTER_NAME" >/dev/null 2>&1
	[ -n "$LOGDIR" ] && rm -rf "$LOGDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

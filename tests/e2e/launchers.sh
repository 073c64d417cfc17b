#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: a job started the way torchrun and srun start it, with no SGC_*
# variable at all: 3 ranks on loopback, each with nothing in its
# environment but PATH and what the launcher would set, join as one job
# and run allreduces checked against a reference (coll_check).
#  1. torchrun: RANK, WORLD_SIZE, MASTER_ADDR=localhost, MASTER_PORT; the
#     coordinator listens on MASTER_PORT + 1.
#  2. srun: SLURM_PROCID, SLURM_NTASKS, SLURM_STEP_NODELIST,
#     SLURM_JOB_NODELIST, SLURM_JOB_ID, SLURM_STEP_ID; the coordinator is
#     the first host of the step's list, on port 20000 + 10 * (job id mod
#     1000) + step id mod 10.  As root, each rank runs in a mount
#     namespace whose /etc/hosts names sgcnode01..03 as 127.0.0.1, and the
#     list is "sgcnode[01-03]", as Slurm writes it; otherwise "localhost".
#   launchers.sh COLL_CHECK
set -uo pipefail
CHECK=$1
. "$(dirname "$0")/lib.sh"
[ -x "$CHECK" ] || fail "no coll_check at $CHECK"
command -v ss >/dev/null || fail "ss not found (install iproute2)"
LOGDIR=$(mktemp -d)
ARGS=(-s allreduce -c "1,363" -b 0)

# run_ranks NAME ADDR:PORT VAR=VALUE...: start rank 0 with nothing in its
# environment but PATH and VAR=VALUE... (@r@ in a VALUE is the rank),
# wait until it listens on ADDR:PORT, where the launcher's variables say
# the coordinator is, then start ranks 1 and 2 likewise; all must pass
# their checks, as one job of three.
run_ranks() {
	local name=$1 want=$2 r rc=0 i v
	local -a pids=() vars
	shift 2
	for r in 0 1 2; do
		vars=()
		for v in "$@"; do
			vars+=("${v//@r@/$r}")
		done
		env -i PATH="$PATH" "${vars[@]}" timeout 120 "$CHECK" "${ARGS[@]}" \
			>"$LOGDIR/$name-$r.log" 2>&1 &
		pids+=($!)
		BG_PIDS+=($!)
		[ "$r" = 0 ] || continue
		for ((i = 0; i < 100; i++)); do
			[ -n "$(ss -Hnul "src $want")" ] && break
			kill -0 "${pids[0]}" 2>/dev/null || break
			sleep 0.1
		done
		[ -n "$(ss -Hnul "src $want")" ] ||
			fail "$name: rank 0 does not listen on $want: $(cat "$LOGDIR/$name-0.log")"
	done
	for r in 0 1 2; do
		wait "${pids[r]}" || {
			rc=$?
			echo "---- $name rank $r (exit $rc):" >&2
			cat "$LOGDIR/$name-$r.log" >&2
		}
	done
	BG_PIDS=()
	[ "$rc" = 0 ] || fail "$name: a rank failed"
	# (every rank checks its results and fails if one is wrong; rank 0
	# reports.)  A job of three, not three jobs of one: rank 0 heard from
	# the others.
	grep -q "^rank 0: ok: [1-9][0-9]* checks .* [1-9][0-9]* received" "$LOGDIR/$name-0.log" ||
		fail "$name: rank 0 did not report its checks as one of three: $(cat "$LOGDIR/$name-0.log")"
	echo "ok: $name: coordinator on $want; $(grep -h '^rank 0: ok:' "$LOGDIR/$name-0.log")"
}

# 1. torchrun
port=$((30000 + $$ % 10000))
run_ranks torchrun "127.0.0.1:$((port + 1))" \
	RANK=@r@ WORLD_SIZE=3 MASTER_ADDR=localhost MASTER_PORT=$port

# 2. srun
job=$(($$ % 100000))
step=$((($$ / 7) % 10))
want_port=$((20000 + 10 * (job % 1000) + step))
if [ "$(id -u)" = 0 ] && unshare --mount --propagation private true 2>/dev/null; then
	{ cat /etc/hosts; echo "127.0.0.1 sgcnode01 sgcnode02 sgcnode03"; } >"$LOGDIR/hosts"
	real=$CHECK
	CHECK=$LOGDIR/check-with-hosts
	# (the mount is the wrapper's namespace's alone, gone when it exits)
	printf '#!/bin/sh\nexec unshare --mount --propagation private sh -c %s %s "$@"\n' \
		"'mount --bind $LOGDIR/hosts /etc/hosts && exec \"\$0\" \"\$@\"'" "$real" >"$CHECK"
	chmod +x "$CHECK"
	nodes="sgcnode[01-03]"
	first=sgcnode01
else
	echo "note: not root, so no /etc/hosts of its own: the Slurm host list is \"localhost\""
	nodes=localhost
	first=localhost
fi
run_ranks srun "127.0.0.1:$want_port" SLURM_PROCID=@r@ SLURM_NTASKS=3 SLURM_JOB_ID=$job \
	SLURM_STEP_ID=$step SLURM_STEP_NODELIST="$nodes" SLURM_JOB_NODELIST="$nodes,gpu[1-2]"
# A name other than localhost for a loopback address: rank 0 warns that
# ranks on other hosts could not reach it.
if [ "$first" != localhost ]; then
	grep -q "\"$first:$want_port\" resolves to 127.0.0.1:$want_port on this host, a loopback" \
		"$LOGDIR/srun-0.log" ||
		fail "srun: rank 0 did not warn that $first is a loopback address: $(cat "$LOGDIR/srun-0.log")"
fi
echo "ok: srun: the coordinator $first:$want_port from SLURM_STEP_NODELIST=$nodes"

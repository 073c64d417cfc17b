#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: a HELLO for rank 2 from a process that is not rank 2 (on host w1,
# another port), sent before the real rank 2 starts and never followed by
# a READY, does not keep rank 2 out: the claim gives way once its WELCOME
# goes unanswered, the job runs, and the stranger is told the rank is
# taken, under its own nonce, never with the job id.
#   join_spoof.sh CLUSTER COLL_CHECK
set -uo pipefail
CLUSTER=$1
CHECK=$2
. "$(dirname "$0")/lib.sh"
need_root

LOGDIR=$(mktemp -d)
cluster_up sgcjoin 2
coord_ip=$(coord_ip) || exit 1

# The stranger: HELLO "rank 2 of 3" every 50 ms for 4 s (the job runs
# barriers for 3 s after it starts); it answers
# nothing and writes down every answer (type, aux, job id).
"$CLUSTER" exec "$CLUSTER_NAME" w1 -- /usr/bin/python3 - "$coord_ip" >"$LOGDIR/stranger" 2>&1 <<'PY' &
import socket, struct, sys, time
NONCE = 0x5eed1234
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7999))
s.settimeout(0.05)
# struct sgc_hdr: magic version type seq job_id chunk nchunks rank count
# dtype op coll policy arg flags aux fan_first fan_end stamp
hello = struct.pack("<HBBIQIIHHBBBBHHIHHI", 0x4753, 2, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0,
                    NONCE, 0, 0, 0)
end = time.time() + 4
while time.time() < end:
    s.sendto(hello, (sys.argv[1], 7000))
    try:
        d = s.recv(4096)
        if len(d) >= 48:
            f = struct.unpack("<HBBIQIIHHBBBBHHIHHI", d[:48])
            print("got type %d aux %d job %016x" % (f[2], f[15], f[4]), flush=True)
    except socket.timeout:
        pass
PY
BG_PIDS+=($!)
sleep 0.3
# Rank 2 starts late, so the stranger's HELLO is first.
"$CLUSTER" run "$CLUSTER_NAME" --ranks 3 --timeout-ms 5000 --deadline 60 --env SGC_DEBUG=1 \
	--logdir "$LOGDIR/run" -- \
	bash -c 'if [ "$SGC_RANK" = 2 ]; then sleep 0.5; fi; exec "$0" "$@"' \
	"$CHECK" -s barrier -i 1000000 -T 3 >"$LOGDIR/out" 2>&1
rc=$?
wait "${BG_PIDS[@]}"
BG_PIDS=()
[ "$rc" = 0 ] || fail "the job did not run with a stranger's HELLO for rank 2 (rc $rc): $(cat "$LOGDIR"/run/rank-*.log)"
job=$(sed -n 's/.*joined job \([0-9a-f]*\).*/\1/p' "$LOGDIR/run/rank-0.log" | head -1)
[ -n "$job" ] || fail "no job id in the coordinator's log"
! grep -q "type 9 .*job $job" "$LOGDIR/stranger" ||
	fail "an ABORT to the stranger carries the job id"
grep -q "type 9 aux 98 job 000000005eed1234" "$LOGDIR/stranger" ||
	fail "the stranger was not told the rank is taken (EADDRINUSE, its nonce): $(sort "$LOGDIR/stranger" | uniq -c)"
grep -h "claims it now\|claimed rank" "$LOGDIR/run/rank-0.log" | head -2
echo "ok: a stranger's HELLO for rank 2 did not keep rank 2 out; it was told EADDRINUSE under its nonce"

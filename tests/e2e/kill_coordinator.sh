#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: SIGKILL the coordinator in the middle of collectives.  The workers'
# calls fail within their timeout with a clear error, and no BPF link,
# program or map of the coordinator is left on its host.  The ranks run
# robust_check -m run, which stops at its first failed call.
#   kill_coordinator.sh CLUSTER ROBUST_CHECK ACCEL
set -uo pipefail
CLUSTER=$1
CHECK=$2
ACCEL=${3:-ebpf}
. "$(dirname "$0")/lib.sh"
need_root
command -v bpftool >/dev/null || { echo "SKIP: bpftool is not installed" >&2; exit 77; }

LOGDIR=$(mktemp -d)
cluster_up sgckill 2
# libsgcoll's programs held by BPF links (XDP and tcx), as "id name" lines.
our_links() {
	bpftool -j link list 2>/dev/null | /usr/bin/python3 -c '
import json, subprocess, sys
for link in json.load(sys.stdin) or []:
    pid = link.get("prog_id")
    out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(pid)],
                         capture_output=True, text=True).stdout
    name = json.loads(out).get("name", "") if out.strip() else ""
    if name in ("gather_prog", "notify_prog", "scatter_prog"):
        print(link.get("id"), name)'
}
before=$(our_links)
# Each rank records its PID, then runs collectives for a long time.
"$CLUSTER" run "$CLUSTER_NAME" --ranks 5 --accel "$ACCEL" --timeout-ms 2000 --deadline 60 \
	--logdir "$LOGDIR/run" -- \
	bash -c 'echo $$ > "'"$LOGDIR"'/pid.$SGC_RANK"; exec "$0" "$@"' \
	"$CHECK" -m run -T 50 >"$LOGDIR/run.out" 2>&1 &
run_pid=$!
BG_PIDS+=("$run_pid")
for ((i = 0; i < 100; i++)); do
	[ -s "$LOGDIR/pid.0" ] && break
	sleep 0.1
done
[ -s "$LOGDIR/pid.0" ] || fail "the coordinator did not start"
# Well into the collectives: the coordinator's first results are out (its
# eBPF object can take seconds to load on a busy machine).
listening() {
	"$CLUSTER" exec "$CLUSTER_NAME" c -- ss -Huan "sport = :7000" 2>/dev/null | grep -q .
}
for ((i = 0; i < 300; i++)); do
	listening && break
	sleep 0.1
done
listening || fail "the coordinator never opened its socket"
if [ "$ACCEL" = ebpf ]; then
	for ((i = 0; i < 150; i++)); do
		"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 2>/dev/null |
			grep -q "name gather_prog" && break
		sleep 0.1
	done
fi
sleep 1.5
# The links of this test's coordinator: those present now and not before
# it started (another job on the machine may hold links of its own).
ours=""
if [ "$ACCEL" = ebpf ]; then
	"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 | grep -q "name gather_prog" ||
		fail "the eBPF path was not attached while the coordinator ran"
	ours=$(comm -13 <(echo "$before" | sort) <(our_links | sort))
	[ "$(echo "$ours" | grep -c .)" -ge 3 ] ||
		fail "expected 3 libsgcoll links of this coordinator, found: $ours"
	# The programs behind those links and every map they use, as
	# "prog ID" / "map ID" lines: all must go with the process.
	objs=$(for l in $(echo "$ours" | awk '{print $1}'); do
		bpftool -j link show id "$l" 2>/dev/null
		echo
	done | /usr/bin/python3 -c '
import json, subprocess, sys
seen = set()
for line in sys.stdin:
    if not line.strip():
        continue
    pid = json.loads(line).get("prog_id")
    if pid is None or ("prog", pid) in seen:
        continue
    seen.add(("prog", pid))
    out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(pid)],
                         capture_output=True, text=True).stdout
    for m in (json.loads(out).get("map_ids", []) if out.strip() else []):
        seen.add(("map", m))
for kind, i in sorted(seen):
    print(kind, i)')
	[ "$(echo "$objs" | grep -c '^map')" -ge 3 ] ||
		fail "could not find the maps of this coordinator's programs: $objs"
fi
kill -9 "$(cat "$LOGDIR/pid.0")"
t0=$(date +%s)
wait "$run_pid"
t1=$(date +%s)
BG_PIDS=()
# One call's timeout (2 s), then the goodbye the workers try for 2 s.
if [ $((t1 - t0)) -gt 10 ]; then
	# What the cluster tool and each worker said: which rank hung, and in which call.
	tail -n 30 "$LOGDIR/run.out" >&2
	for r in 1 2 3 4; do
		echo "--- rank $r:" >&2
		tail -n 8 "$LOGDIR/run/rank-$r.log" >&2
	done
	fail "workers took $((t1 - t0)) s to give up after the coordinator died"
fi
for r in 1 2 3 4; do
	grep -qE "coordinator|timed out|did not answer|no result" "$LOGDIR/run/rank-$r.log" ||
		fail "rank $r's error does not explain: $(tail -3 "$LOGDIR/run/rank-$r.log")"
done
# Links are released when the last reference (the dead process) goes;
# give the kernel a moment to run the release.
survivors() {
	comm -12 <(echo "$ours" | sort) <(our_links | sort)
}
for ((i = 0; i < 50; i++)); do
	[ -z "$(survivors)" ] && break
	sleep 0.1
done
[ -z "$(survivors)" ] || fail "BPF links survived the coordinator: $(survivors)"
# Programs and maps are freed once nothing holds them (after an RCU
# grace period): give it a few seconds.
left_objs() {
	local kind id
	while read -r kind id; do
		[ -n "$kind" ] && bpftool "$kind" show id "$id" >/dev/null 2>&1 && echo "$kind $id"
	done <<<"$objs"
}
if [ "$ACCEL" = ebpf ]; then
	for ((i = 0; i < 100; i++)); do
		[ -z "$(left_objs)" ] && break
		sleep 0.1
	done
	[ -z "$(left_objs)" ] || fail "BPF objects survived the coordinator: $(left_objs | tr '\n' ' ')"
fi
if "$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 | grep -q "prog/xdp"; then
	fail "an XDP program is still attached to the coordinator's eth0"
fi
echo "ok: coordinator killed ($ACCEL), workers failed in $((t1 - t0)) s with clear errors," \
	"nothing left attached${objs:+; $(echo "$objs" | grep -c .) programs and maps freed}"

#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: SIGKILL the coordinator in the middle of collectives.  The workers'
# calls fail within their timeout with a clear error, and no BPF link,
# program or map of the coordinator is left on its host: on the eBPF path
# only libsgcoll's XDP dispatcher stays on the interface, empty, and the
# next job reuses it and takes it off when it ends.  The ranks run
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
# Loaded gather_progs, as "prog ID" lines (in a dispatcher slot, no link).
gathers() {
	bpftool -j prog show 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for p in json.load(sys.stdin) or []:
    if p.get("name") == "gather_prog":
        print("prog", p["id"])'
}
before=$(our_links)
gathers_before=$(gathers)
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
			grep -q "name sgc_dispatch" && break
		sleep 0.1
	done
fi
sleep 1.5
# The links of this test's coordinator: those present now and not before
# it started (another job on the machine may hold links of its own).
ours=""
if [ "$ACCEL" = ebpf ]; then
	"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 | grep -q "name sgc_dispatch" ||
		fail "the eBPF path was not attached while the coordinator ran"
	ours=$(comm -13 <(echo "$before" | sort) <(our_links | sort))
	[ "$(echo "$ours" | grep -c .)" -ge 2 ] ||
		fail "expected 2 libsgcoll tcx links of this coordinator, found: $ours"
	our_gather=$(comm -13 <(echo "$gathers_before" | sort) <(gathers | sort))
	[ "$(echo "$our_gather" | grep -c .)" = 1 ] ||
		fail "expected this coordinator's gather_prog, found: $our_gather"
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
	objs=$(printf '%s\n%s\n' "$objs" "$our_gather")
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
if [ "$ACCEL" != ebpf ]; then
	"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 | grep -q "prog/xdp" &&
		fail "an XDP program is attached to the coordinator's eth0 without the eBPF path"
else
	# What may stay: the dispatcher alone, its gather_prog gone (above).
	xdp=$("$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 | grep -o "prog/xdp.*")
	[ -z "$xdp" ] || echo "$xdp" | grep -q "name sgc_dispatch" ||
		fail "an XDP program other than the empty dispatcher stayed on eth0: $xdp"
	# The next job on that interface takes the dispatcher over, runs in the
	# kernel, and takes it off when it ends.
	"$CLUSTER" run "$CLUSTER_NAME" --ranks 5 --accel ebpf --timeout-ms 10000 --deadline 60 \
		--logdir "$LOGDIR/next" -- "$CHECK" -m run -T 2 >"$LOGDIR/next.out" 2>&1 ||
		{ cat "$LOGDIR/next.out" >&2; run_fail "$LOGDIR/next" "the next eBPF job after the crash failed"; }
	grep -q "rank 0: the eBPF path" "$LOGDIR/next/rank-0.log" ||
		fail "the next job's coordinator is not on the eBPF path"
	"$CLUSTER" exec "$CLUSTER_NAME" c -- ip link show dev eth0 | grep -q "prog/xdp" &&
		fail "an XDP program is still attached to eth0 after the next job ended cleanly"
fi
echo "ok: coordinator killed ($ACCEL), workers failed in $((t1 - t0)) s with clear errors," \
	"nothing of it left${objs:+; $(echo "$objs" | grep -c .) programs and maps freed}${xdp:+; the next job reused the dispatcher and took it off}"

#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: hostile datagrams during running collectives.  Five ranks run
# robust_check -m run (exact allreduce, broadcast, barrier, non-blocking
# and scatter-gather rounds, every result checked); meanwhile sgc_hostile,
# on worker host w1, captures a real contribution and sends variants of it
# to the coordinator for a few seconds: another job's id, an unregistered
# address, the rank's address from another port, another rank's number,
# truncated, short body, count too large, oversized (fragmented), chunk,
# rank, dtype, op, collective and nchunks out of range, unknown type, bad
# magic and version, a forged RESULT, the captured datagram replayed later,
# and a RESULT to the worker from a stranger.  No result may change, and
# each class must show in the counter for its reason: sgc_get_stats() on
# the user path, sgc_bpf_stats() (with the user counters for what the
# kernel passes up) on the eBPF path.
#   hostile.sh CLUSTER ROBUST_CHECK SGC_HOSTILE ACCEL [SECONDS]
set -uo pipefail
CLUSTER=$1
CHECK=$2
HOSTILE=$3
ACCEL=${4:-off}
SECS=${5:-6}
. "$(dirname "$0")/lib.sh"
need_root

LOGDIR=$(mktemp -d)
cluster_up sgchx 2
coord_ip=$(coord_ip) || exit 1
"$CLUSTER" run "$CLUSTER_NAME" --ranks 5 --accel "$ACCEL" --timeout-ms 10000 --deadline 150 \
	--logdir "$LOGDIR/run" -- "$CHECK" -m run -S "$LOGDIR/stop" -T 100 >"$LOGDIR/out" 2>&1 &
run_pid=$!
BG_PIDS+=("$run_pid")
"$CLUSTER" exec "$CLUSTER_NAME" w1 -- "$HOSTILE" -i eth0 -c "$coord_ip:7000" -W 5 -d "$SECS" \
	-o "$LOGDIR/counts" >"$LOGDIR/hostile.out" 2>&1
hrc=$?
touch "$LOGDIR/stop"
wait "$run_pid"
rc=$?
BG_PIDS=()
cat "$LOGDIR/hostile.out"
if [ "$rc" = 77 ]; then
	echo "SKIP: $(grep -h '^SKIP' "$LOGDIR"/run/rank-*.log | head -1)" >&2
	exit 77
fi
[ "$rc" = 0 ] || { cat "$LOGDIR/out"; fail "the job failed or a result was wrong under hostile input"; }
[ "$hrc" = 0 ] || fail "sgc_hostile failed"
grep -h "rounds" "$LOGDIR"/run/rank-*.log
victim=$(sed -n 's/.* of rank \([0-9]*\) from .*/\1/p' "$LOGDIR/hostile.out")
cat "$LOGDIR"/run/rank-*.log | grep -E "^rank [0-9]+ (bpf)?stat " >"$LOGDIR/stats"
/usr/bin/python3 - "$LOGDIR/counts" "$LOGDIR/stats" "$ACCEL" "$victim" <<'PY'
import sys
sent = {k: int(v) for k, v in (l.split() for l in open(sys.argv[1]))}
st = {}
for l in open(sys.argv[2]):
    w = l.split()	# rank R stat|bpfstat NAME VALUE
    st[(int(w[1]), w[3])] = int(w[4])
accel, victim = sys.argv[3], int(sys.argv[4])
u = lambda r, k: st.get((r, k), 0)
def S(*ks): return sum(sent[k] for k in ks)
if accel == "ebpf":
    groups = [
        ("drop_job", ["job"], u(0, "drop_job")),
        ("drop_source", ["unreg", "port", "rankswap"], u(0, "drop_source")),
        ("drop_malformed", ["short", "magic", "version", "type"], u(0, "drop_malformed")),
        ("drop_field", ["body", "count", "chunk", "dtype", "op", "coll", "nchunks", "result"],
         u(0, "drop_field")),
        ("drop_rank", ["rank"], u(0, "drop_rank")),
        ("drop_window+stale+late+dup", ["replay"],
         u(0, "drop_window") + u(0, "drop_stale") + u(0, "drop_late") + u(0, "drop_dup")),
        ("drop_ip (fragments)", ["oversized"], u(0, "drop_ip")),
    ]
else:
    groups = [
        ("foreign", ["job", "unreg", "port", "rankswap", "magic"], u(0, "foreign")),
        ("rejected", ["short", "body", "count", "oversized", "chunk", "rank", "dtype", "op", "coll",
                      "nchunks", "type", "version", "result"], u(0, "rejected")),
        ("late+duplicates", ["replay"], u(0, "late") + u(0, "duplicates")),
    ]
groups.append(("rank %d foreign" % victim, ["worker"], u(victim, "foreign")))
bad = 0
for name, classes, got in groups:
    want = S(*classes)
    ok = want > 0 and got >= want * 0.99
    print("%-40s sent %6d (%s) counted %6d %s" % (name, want, "+".join(classes), got,
                                                  "ok" if ok else "MISSING"))
    bad += not ok
missing = [k for k, v in sent.items() if v == 0]
if missing:
    print("classes never sent:", missing)
    bad += 1
sys.exit(1 if bad else 0)
PY
[ $? = 0 ] || fail "a class of hostile datagram was not counted by its reason"
echo "ok: $(awk '{s += $2} END {print s}' "$LOGDIR/counts") hostile datagrams ($ACCEL), results exact, each counted by reason"

#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: well-formed forgeries during a job (issue 16).  hostile.sh sends
# datagrams broken in one field; these are whole and plausible, from
# sgc_forge on worker host w1 (AF_PACKET, any source address):
#   - an SGC_F_KERNEL RESULT to the coordinator from a registered rank,
#     plain, in IP fragments and with IP options;
#   - an answer marked WAIT_ANY to a WAIT_ALL scatter-gather query, with
#     the values the rank itself will send (robust_check fails a WAIT_ALL
#     query that completes without every worker);
#   - HELLOs (another world size, rank 0, a confirmed rank from another
#     port, one with a job id) and READYs (all right but the job id, the
#     nonce or the port; rank 0), during the join and after it;
#   - the datagrams of an earlier job on the same cluster (job 1, captured
#     on w1), replayed into this one;
#   - with a key (SGC_KEY, which sgc_forge does not know): contributions
#     from a registered rank's address and port with the real job id, in
#     the window, ahead of the real ones or racing them, and RESULTs from
#     the coordinator's address to the ranks of w2 before the real ones,
#     all with a wrong payload; the same in fragments and with options.
#     Without a key these are the documented limit (the job id is all a
#     datagram is checked by, and an on-path sender sees it), so they are
#     not sent, except the fragmented and optioned contributions on the
#     eBPF path, whose kernel must drop such frames whatever they carry.
# Five ranks run robust_check -m run (every result exact).  No result may
# change, no rank be kept out, and each forgery must show in a counter for
# its reason (sgc_get_stats(); sgc_bpf_stats() on the eBPF path; bad_mac
# and DROP_MAC with a key), or, for a HELLO, which no counter counts, in
# the ABORT it is answered with: under its own nonce, with the right code,
# never with the job id.  No claim may change hands.
# The counters must explain the forgeries together: for every set of
# classes, the counters any of them may land in add up to what was sent.
#   forgery.sh CLUSTER ROBUST_CHECK SGC_FORGE ACCEL [key|nokey] [SECONDS]
set -uo pipefail
CLUSTER=$1
CHECK=$2
FORGE=$3
ACCEL=${4:-off}
MODE=${5:-nokey}
SECS=${6:-6}
RANKS=5
HOSTS=2
. "$(dirname "$0")/lib.sh"
need_root
case $MODE in
key | nokey) ;;
*) fail "the mode is key or nokey, not '$MODE'" ;;
esac

LOGDIR=$(mktemp -d)
cluster_up sgcfg "$HOSTS"
coord_ip=$(coord_ip) || exit 1
envs=()
fargs=(-W "$RANKS" -t 7)
if [ "$MODE" = key ]; then
	envs+=(--env "SGC_KEY=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')")
	fargs+=(-K)
fi
[ "$ACCEL" = ebpf ] && fargs+=(-x)

# wait_line FILE TEXT: until FILE has TEXT (sgc_forge is listening).
wait_line() {
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "sgc_forge did not start: $(cat "$1")"
}

# Job 1 (tag 1, the same key): what w1's ranks send and get, recorded.
"$CLUSTER" exec "$CLUSTER_NAME" w1 -- "$FORGE" -m capture -i eth0 -c "$coord_ip:7000" -d 120 \
	-o "$LOGDIR/job1.frames" >"$LOGDIR/capture.out" 2>&1 &
cap_pid=$!
BG_PIDS+=("$cap_pid")
wait_line "$LOGDIR/capture.out" "capture on"
"$CLUSTER" run "$CLUSTER_NAME" --ranks "$RANKS" --accel "$ACCEL" --timeout-ms 10000 --deadline 100 \
	"${envs[@]}" --logdir "$LOGDIR/run1" -- "$CHECK" -m run -k 1 -T 2 >"$LOGDIR/out1" 2>&1
rc=$?
kill -TERM "$cap_pid"
wait "$cap_pid"
crc=$?
BG_PIDS=()
cat "$LOGDIR/capture.out"
if [ "$rc" = 77 ]; then
	echo "SKIP: $(grep -h '^SKIP' "$LOGDIR"/run1/rank-*.log | head -1)" >&2
	exit 77
fi
[ "$rc" = 0 ] || { cat "$LOGDIR/out1"; fail "job 1 (the one to replay) failed"; }
[ "$crc" = 0 ] || fail "nothing of job 1 was captured"

# Job 2 (tag 7), sgc_forge on w1 from before its join.  The last rank
# starts a second after the coordinator first answers a HELLO (which on
# the eBPF path waits for the programs to load), so that the join lasts
# long enough to be forged at.
"$CLUSTER" exec "$CLUSTER_NAME" w1 -- "$FORGE" -m attack -i eth0 -c "$coord_ip:7000" -d "$SECS" \
	-r "$LOGDIR/job1.frames" -J "$LOGDIR/joining" "${fargs[@]}" -o "$LOGDIR/counts" \
	>"$LOGDIR/forge.out" 2>&1 &
forge_pid=$!
BG_PIDS+=("$forge_pid")
wait_line "$LOGDIR/forge.out" "attack on"
"$CLUSTER" run "$CLUSTER_NAME" --ranks "$RANKS" --accel "$ACCEL" --timeout-ms 10000 --deadline 150 \
	"${envs[@]}" --logdir "$LOGDIR/run" -- \
	bash -c 'if [ "$SGC_RANK" = $((SGC_WORLD_SIZE - 1)) ]; then
			for ((i = 0; i < 300; i++)); do [ -e "$1" ] && break; sleep 0.1; done
			sleep 1
		fi
		shift; exec "$0" "$@"' \
	"$CHECK" "$LOGDIR/joining" -m run -k 7 -S "$LOGDIR/stop" -T 100 >"$LOGDIR/out" 2>&1 &
run_pid=$!
BG_PIDS+=("$run_pid")
wait "$forge_pid"
frc=$?
# The job runs on a second, so that the ranks take in (and count) the
# last forgeries still queued for them before they print their counters.
sleep 1
touch "$LOGDIR/stop"
wait "$run_pid"
rc=$?
BG_PIDS=()
cat "$LOGDIR/forge.out"
if [ "$rc" = 77 ]; then
	echo "SKIP: $(grep -h '^SKIP' "$LOGDIR"/run/rank-*.log | head -1)" >&2
	exit 77
fi
[ "$rc" = 0 ] || { cat "$LOGDIR/out"; fail "the job failed or a result was wrong under forgeries ($ACCEL, $MODE)"; }
[ "$frc" = 0 ] || fail "sgc_forge failed"
grep -h "rounds" "$LOGDIR"/run/rank-*.log
# A claim that changed hands after it was confirmed, or before, to a forger.
if grep -h "claims it now\|is open again\|takes it back" "$LOGDIR/run/rank-0.log"; then
	fail "a forged HELLO or READY moved a rank's claim"
fi
cat "$LOGDIR"/run/rank-*.log | grep -E "^rank [0-9]+ (bpf)?stat " >"$LOGDIR/stats"
/usr/bin/python3 - "$LOGDIR/counts" "$LOGDIR/stats" "$ACCEL" "$MODE" "$HOSTS" "$RANKS" <<'PY'
import sys
sent = {}
for l in open(sys.argv[1]):
    k, v = l.split()
    sent[k] = int(v)
st = {}
for l in open(sys.argv[2]):
    w = l.split()	# rank R stat|bpfstat NAME VALUE
    st[(int(w[1]), w[3].lower())] = int(w[4])
accel, key, hosts, world = sys.argv[3], sys.argv[4] == "key", int(sys.argv[5]), int(sys.argv[6])
E = accel == "ebpf"
on = {"c": [0]}
for h in range(1, hosts + 1):
    on["w%d" % h] = [r for r in range(1, world) if (r - 1) % hosts + 1 == h]

def C(*names, at="c"):
    return [(at, n) for n in names]

def A(cls):
    return [("ans", cls)]

# Where each class may be counted.  HELLOs are counted by their answers
# (a refused one counts in rejected too, which other classes share).
table = {
    "kernel": C("drop_field") if E else C("rejected"),
    "frag_kernel": C("drop_ip") if E else C("rejected"),
    "opt_kernel": C("drop_ip") if E else C("rejected"),
    "frag_contrib": C("drop_ip") if E else [],
    "opt_contrib": C("drop_ip") if E else [],
    "waitany": C("drop_mismatch", "drop_window") if E else C("rejected", "duplicates", "late"),
    "hello_world": A("hello_world"), "hello_rank0": A("hello_rank0"),
    "hello_taken": A("hello_taken"), "hello_job": C("foreign"),
    "ready_job": C("drop_job") if E else C("foreign"),
    "ready_nonce": C("rejected"),
    "ready_port": C("drop_source") if E else C("rejected"),
    "ready_rank0": C("drop_source") if E else C("rejected"),
    "join_hello_world": A("join_hello_world"), "join_hello_rank0": A("join_hello_rank0"),
    "join_hello_taken": A("join_hello_taken"), "join_hello_job": C("foreign"),
    # before the eBPF path is attached, user space counts them
    "join_ready_job": C("foreign", "drop_job") if E else C("foreign"),
    "join_ready_nonce": C("rejected"),
    "join_ready_port": C("rejected", "drop_source") if E else C("rejected"),
    "oldjob": C("drop_job") if E else C("foreign"),
    # answered with an ABORT under the old nonce, which the rank ignores
    "oldjob_hello": C("foreign", at="w1"),
    "oldjob_w2": C("foreign", at="w2"),
    "spoof_ahead": [], "spoof_race": [], "spoof_result": [],
}
spoofed = ["spoof_ahead", "spoof_race", "spoof_result"]
must = [k for k in table if k not in spoofed and (E or k not in ("frag_contrib", "opt_contrib"))]
bad = 0
if key:
    if not any(n == "bad_mac" for (_, n) in st):
        print("FAIL: robust_check prints no bad_mac counter: the library has no job key")
        sys.exit(1)
    if E and not any(n == "drop_mac" for (_, n) in st):
        print("FAIL: sgc_bpf_stats() has no drop_mac counter")
        bad += 1
    mac = C("bad_mac") + (C("drop_mac") if E else [])
    for k in table:
        # With a key nothing of the earlier job fails the tag (it is the
        # same key), but every forgery may: whichever check comes first.
        table[k] = table[k] + (C("bad_mac", at="w2") if k in ("spoof_result", "oldjob_w2") else mac)
    # Right in all but the tag, mostly: gather_prog reads the fields
    # before the tag (reading only), so one that also breaks a field rule
    # (a broadcast's contribution from a rank that is not its root, say)
    # is refused by that rule first.
    table["spoof_ahead"] = mac + (C("drop_field") if E else [])
    table["spoof_race"] = mac + (C("drop_field") if E else [])
    table["spoof_result"] = C("bad_mac", at="w2")
    must += spoofed
else:
    print("not sent without a key (a registered rank's or the coordinator's address and port "
          "with the real job id: the documented limit): " + ", ".join(
              spoofed + ([] if E else ["frag_contrib", "opt_contrib"])))

def value(c):
    at, n = c
    if at == "ans":
        return sent.get("ans:" + n, 0)
    return sum(st.get((r, n), 0) for r in on[at])

for k in must:
    if sent.get(k, 0) == 0:
        print("FAIL: class %s was never sent" % k)
        bad += 1
for k in ("leak", "claimed", "bad_answer"):
    if sent.get(k, 0):
        print("FAIL: %d answers to the stranger of kind %s" % (sent[k], k))
        bad += 1
groups = {}
for k, n in sent.items():
    if k not in table or n == 0:
        continue
    if not table[k]:
        print("FAIL: %s sent %d times where nothing may count it" % (k, n))
        bad += 1
        continue
    groups.setdefault(frozenset(table[k]), []).append(k)
G = list(groups.items())
name = lambda c: "%s.%s" % c
for ctrs, classes in G:
    want = sum(sent[k] for k in classes)
    got = sum(value(c) for c in ctrs)
    print("%-44s sent %6d, %-40s %6d" % ("+".join(classes), want, "+".join(sorted(map(name, ctrs))),
                                           got))
# The counters must explain the forgeries together, a count going to one
# forgery only: a flow from each group (what it sent) through the counters
# it may land in (what they counted, with 1% slack) must carry it all.
# If not, the groups still reachable in the residual graph are a set whose
# counters, all told, counted less than it sent (Hall's condition).
nodes = ["src"] + ["g%d" % i for i in range(len(G))] + sorted({c for c, _ in G for c in c}) + ["dst"]
idx = {n: i for i, n in enumerate(nodes)}
cap = [[0] * len(nodes) for _ in nodes]
for i, (ctrs, classes) in enumerate(G):
    cap[0][idx["g%d" % i]] = sum(sent[k] for k in classes)
    for c in ctrs:
        cap[idx["g%d" % i]][idx[c]] = float("inf")
for c in {c for ctrs, _ in G for c in ctrs}:
    cap[idx[c]][-1] = value(c) / 0.99
total = sum(cap[0])
flow = 0
while True:
    prev = {0: None}
    queue = [0]
    while queue and len(nodes) - 1 not in prev:
        u = queue.pop(0)
        for v in range(len(nodes)):
            if v not in prev and cap[u][v] > 1e-9:
                prev[v] = u
                queue.append(v)
    if len(nodes) - 1 not in prev:
        break
    v, push = len(nodes) - 1, float("inf")
    while prev[v] is not None:
        push = min(push, cap[prev[v]][v])
        v = prev[v]
    v = len(nodes) - 1
    while prev[v] is not None:
        cap[prev[v]][v] -= push
        cap[v][prev[v]] += push
        v = prev[v]
    flow += push
if flow < total - 1e-6:
    short = [G[i] for i in range(len(G)) if idx["g%d" % i] in prev]
    ctrs = set().union(*(c for c, _ in short))
    print("MISSING: %s sent %d, but %s counted %d" % (
        "+".join(k for _, cl in short for k in cl), sum(sent[k] for _, cl in short for k in cl),
        "+".join(sorted(map(name, ctrs))), sum(value(c) for c in ctrs)))
    print("rank 0's counters:", " ".join("%s=%d" % (k, v) for (r, k), v in sorted(st.items())
                                          if r == 0 and v))
    bad += 1
sys.exit(1 if bad else 0)
PY
[ $? = 0 ] || fail "a forgery was not counted by its reason ($ACCEL, $MODE)"
echo "ok: $(awk '$1 !~ /:|leak|claimed|bad_answer/ {s += $2} END {print s}' "$LOGDIR/counts") forged datagrams ($ACCEL, $MODE), results exact, each counted by its reason"

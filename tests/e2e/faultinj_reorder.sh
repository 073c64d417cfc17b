#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# faultinj_reorder.sh SGC_FAULTINJ
#
# Checks sgc-faultinj --reorder on its own: two namespaces joined by a veth
# pair, a UDP sender pinned to one CPU (so that the only reordering is ours)
# and a receiver that counts what it gets.  Once with the injector on the
# sender's egress, once on the receiver's ingress (the two release a held
# packet differently).  Every held packet that is released must arrive
# exactly once, intact, after a newer one, so the receiver's inversions equal
# the injector's "reordered" count and the datagrams missing equal the ones
# still held when it detached.  Then reorder + duplication + loss together:
# no datagram is ever altered.
# Needs root; exits 77 (skip) with the reason otherwise.
set -uo pipefail

FAULTINJ=${1:?usage: faultinj_reorder.sh SGC_FAULTINJ}
N=${SGC_REORDER_N:-3000}
PORT=9400

NS_A=sgcroa$$
NS_B=sgcrob$$
NET=10.251.$(($$ % 250))
FI_PID=""
RX_PID=""
TMP=""

log() { echo "faultinj_reorder: $*"; }
skip() { echo "faultinj_reorder: SKIP: $*" >&2; exit 77; }
fail() { echo "faultinj_reorder: FAIL: $*" >&2; exit 1; }

cleanup() {
	[[ -z $FI_PID ]] || kill -TERM "$FI_PID" 2>/dev/null
	[[ -z $RX_PID ]] || kill -TERM "$RX_PID" 2>/dev/null
	[[ -z $FI_PID ]] || wait "$FI_PID" 2>/dev/null
	[[ -z $RX_PID ]] || wait "$RX_PID" 2>/dev/null
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	[[ -z $TMP ]] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

((EUID == 0)) || skip "needs root (network namespaces, BPF)"
command -v ip >/dev/null 2>&1 || skip "ip not found (install iproute2)"
command -v taskset >/dev/null 2>&1 || skip "taskset not found (install util-linux)"
[[ -x /usr/bin/python3 ]] || skip "python3 not found (the UDP probe uses it)"
[[ -x $FAULTINJ ]] || fail "no sgc-faultinj at $FAULTINJ"
ip netns add "$NS_A" 2>/dev/null || skip "ip netns unavailable here (cannot create a network namespace)"
ip netns add "$NS_B" || fail "ip netns add $NS_B"
TMP=$(mktemp -d /tmp/sgc-reorder.XXXXXX) || fail "mktemp"

ip -n "$NS_A" link add va type veth peer name vb netns "$NS_B" || fail "veth"
ip -n "$NS_A" addr add "$NET.1/24" dev va
ip -n "$NS_B" addr add "$NET.2/24" dev vb
ip -n "$NS_A" link set va up
ip -n "$NS_B" link set vb up
ip -n "$NS_A" link set lo up
ip -n "$NS_B" link set lo up

# Datagram k: 4-byte sequence number, then a pattern of a length that
# depends on k (so a mix-up of lengths or bytes shows).
cat >"$TMP/probe.py" <<'EOF'
import socket, struct, sys, time

def body(k):
    n = 16 + (k * 37) % 1400
    return struct.pack("!I", k) + bytes(((k * 131 + i * 7) & 0xff) for i in range(n))

mode, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if mode == "send":
    for k in range(n):
        s.sendto(body(k), (addr, port))
        if k % 64 == 63:
            time.sleep(0.001)
    sys.exit(0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((addr, port))
print("ready", flush=True)
seen, got, dups, bad, inv, top, maxdisp = set(), 0, 0, 0, 0, -1, 0
s.settimeout(10.0)
while True:
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    s.settimeout(1.5)
    got += 1
    k = struct.unpack("!I", d[:4])[0] if len(d) >= 4 else -1
    if k < 0 or k >= n or d != body(k):
        bad += 1
        continue
    if k in seen:
        dups += 1
        continue
    seen.add(k)
    if k < top:
        inv += 1
        maxdisp = max(maxdisp, top - k)
    top = max(top, k)
print("rx got=%d unique=%d dups=%d bad=%d inversions=%d maxdisp=%d" %
      (got, len(seen), dups, bad, inv, maxdisp), flush=True)
EOF

# field NAME LINE: the number after NAME= in LINE
field() { sed -n "s/.*[ :]$1=\([0-9]*\).*/\1/p" <<<"$2"; }

# run_case NAME NS DEV DIR FAULTS: one sender run through the injector.
run_case() {
	local name=$1 ns=$2 dev=$3 dir=$4 faults=$5 i rx fic
	log "$name: sgc-faultinj --dev $dev --dir $dir $faults, $N datagrams"
	# shellcheck disable=SC2086 # faults is a list of options
	ip netns exec "$ns" "$FAULTINJ" --dev "$dev" --dir "$dir" $faults \
		>"$TMP/$name.fi" 2>"$TMP/$name.fierr" &
	FI_PID=$!
	ip netns exec "$NS_B" /usr/bin/python3 "$TMP/probe.py" recv "$NET.2" $PORT "$N" \
		>"$TMP/$name.rx" 2>&1 &
	RX_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q attached "$TMP/$name.fi" && grep -q ready "$TMP/$name.rx" && break
		kill -0 "$FI_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q attached "$TMP/$name.fi" ||
		fail "$name: injector did not attach: $(cat "$TMP/$name.fierr")"
	grep -q ready "$TMP/$name.rx" || fail "$name: receiver did not start: $(cat "$TMP/$name.rx")"
	ip netns exec "$NS_A" taskset -c 0 /usr/bin/python3 "$TMP/probe.py" send "$NET.2" $PORT "$N" ||
		fail "$name: sender failed"
	wait "$RX_PID"
	RX_PID=""
	kill -TERM "$FI_PID"
	wait "$FI_PID" || fail "$name: sgc-faultinj exited $?: $(cat "$TMP/$name.fierr")"
	FI_PID=""
	rx=$(grep '^rx ' "$TMP/$name.rx")
	fic=$(grep '^faultinj:' "$TMP/$name.fi")
	[[ -n $rx && -n $fic ]] || fail "$name: no counters: $(cat "$TMP/$name.rx" "$TMP/$name.fi")"
	log "$name: $rx"
	log "$name: $fic"
	CASE_RX=$rx
	CASE_FI=$fic
}

# check_exact NAME: reorder only; every count must match.
check_exact() {
	local name=$1 unique dups bad inv held reord
	unique=$(field unique "$CASE_RX")
	dups=$(field dups "$CASE_RX")
	bad=$(field bad "$CASE_RX")
	inv=$(field inversions "$CASE_RX")
	held=$(field held "$CASE_FI")
	reord=$(field reordered "$CASE_FI")
	((bad == 0)) || fail "$name: $bad datagrams altered"
	((dups == 0)) || fail "$name: $dups duplicates without --dup"
	((reord >= N / 20)) || fail "$name: only $reord of $N reordered at rate 0.2"
	((inv == reord)) || fail "$name: receiver saw $inv inversions, injector reordered $reord"
	((held - reord <= 1)) || fail "$name: $((held - reord)) datagrams still held at the end (at most 1)"
	((unique == N - (held - reord))) ||
		fail "$name: $unique of $N arrived, expected $((N - (held - reord))) (held $held, released $reord)"
	log "$name: ok ($inv inversions = reordered, $((N - unique)) still held at detach)"
}

run_case egress "$NS_A" va egress "--reorder 0.2"
check_exact egress
run_case ingress "$NS_B" vb ingress "--reorder 0.2"
check_exact ingress

# Everything at once on both ends: nothing altered, duplicates and losses
# as injected, some reordering left after the losses.
run_case mixed "$NS_A" va egress "--reorder 0.1 --dup 0.1 --loss 0.05"
bad=$(field bad "$CASE_RX")
inv=$(field inversions "$CASE_RX")
dups=$(field dups "$CASE_RX")
((bad == 0)) || fail "mixed: $bad datagrams altered"
((inv > 0 && dups > 0)) || fail "mixed: expected inversions and duplicates, got $inv and $dups"
# The receiver cannot tell a drop from a datagram still held: the
# injector's own counters say whether it dropped, duplicated and reordered.
for c in dropped duplicated reordered; do
	v=$(field "$c" "$CASE_FI")
	((${v:-0} > 0)) ||
		fail "mixed: the injector reports $c=${v:-?} for --loss 0.05 --dup 0.1 --reorder 0.1 on $N datagrams"
done
log "mixed: ok"

ip netns del "$NS_A" || fail "deleting $NS_A"
ip netns del "$NS_B" || fail "deleting $NS_B"
NS_A=""
NS_B=""
log "PASS"

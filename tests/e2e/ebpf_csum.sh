#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: every datagram the coordinator sends on the eBPF path, the results
# notify_prog builds in the kernel and clones to the workers included,
# reaches the worker hosts with a right UDP checksum, never 0.  An AF_PACKET
# capture on each worker host's eth0 checks each one: a finished checksum
# must be right, and one the sender left to be finished (CHECKSUM_PARTIAL,
# the veth default: the field holds the pseudo-header's sum) must be the
# seed a device finishes right.  Three times: the workers offloading their
# own checksums (the coordinator's skbs defer theirs), the workers summing
# them in software (the kernel's results carry the sum gather_prog makes),
# and with a job key, where the capture also checks every datagram's tag
# with its own implementation of the MAC (sgcoll/wire.h).
#   ebpf_csum.sh CLUSTER COLL_CHECK
set -uo pipefail
CLUSTER=$1
CHECK=$2
. "$(dirname "$0")/lib.sh"
need_root
[[ -x /usr/bin/python3 ]] || { echo "SKIP: python3 not found (the capture uses it)" >&2; exit 77; }

HOSTS=2
RANKS=5
LOGDIR=$(mktemp -d)
cluster_up sgccsum $HOSTS
coord_ip=$(coord_ip) || exit 1

# The capture: UDP from the coordinator's port arriving on eth0, until
# SIGTERM; then one line of counts, and the first bad datagrams.
cat >"$LOGDIR/capture.py" <<'PY'
import signal, socket, struct, sys

coord, port = socket.inet_aton(sys.argv[1]), int(sys.argv[2])
key = bytes.fromhex(sys.argv[3]) if len(sys.argv) > 3 else None
SOL_PACKET, PACKET_AUXDATA, CSUMNOTREADY = 263, 8, 8
n = {"all": 0, "kernel": 0, "kernel_deferred": 0, "kernel_finished": 0, "bad": 0, "tagged": 0}
bad = []
M64, M32 = (1 << 64) - 1, (1 << 32) - 1

def siphash(k0, k1, data):
    """SipHash-2-4 of bytes @data under the key words k0, k1."""
    v = [0x736f6d6570736575 ^ k0, 0x646f72616e646f6d ^ k1, 0x6c7967656e657261 ^ k0,
         0x7465646279746573 ^ k1]
    rotl = lambda x, b: ((x << b) | (x >> (64 - b))) & M64

    def rnd():
        v[0] = (v[0] + v[1]) & M64; v[1] = rotl(v[1], 13) ^ v[0]; v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M64; v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & M64; v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & M64; v[1] = rotl(v[1], 17) ^ v[2]; v[2] = rotl(v[2], 32)
    full = len(data) // 8 * 8
    words = list(struct.unpack("<%dQ" % (full // 8), data[:full]))
    words.append(int.from_bytes(data[full:], "little") | (len(data) & 255) << 56)
    for m in words:
        v[3] ^= m; rnd(); rnd(); v[0] ^= m
    v[2] ^= 0xff
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]

if key:
    k0, k1 = struct.unpack("<QQ", key)
    LABEL = 0x6e69662d636773
    fin = (siphash(k0, k1, struct.pack("<Q", LABEL)), siphash(k0, k1, struct.pack("<Q", LABEL + 1)))
    nh = []
    for i in range((48 // 4 + 256 * 4 + 8) // 2):
        o = siphash(k0, k1, struct.pack("<Q", i))
        nh += [o & M32, o >> 32]

def tag_ok(dgram):
    """The datagram (header, body, tag) carries the job key's tag."""
    body = dgram[48:-8]
    m = dgram[:48] + body + bytes(-len(body) % 16)
    w = struct.unpack("<%dI" % (len(m) // 4), m)
    a = b = 0
    for j in range(0, len(w), 2):
        a += ((w[j] + nh[j]) & M32) * ((w[j + 1] + nh[j + 1]) & M32)
        b += ((w[j] + nh[j + 4]) & M32) * ((w[j + 1] + nh[j + 5]) & M32)
    t = siphash(fin[0], fin[1], struct.pack("<QQQ", a & M64, b & M64, 48 + len(body)))
    return struct.pack("<Q", t) == dgram[-8:]

def fold(s):
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s

def sum16(b):
    if len(b) & 1:
        b += b"\0"
    return sum(struct.unpack("!%dH" % (len(b) // 2), b))

def check(ip, deferred):
    """None if the UDP checksum is right (see t_udp_csum_check)."""
    ihl = (ip[0] & 15) * 4
    ulen, field = struct.unpack("!HH", ip[ihl + 4:ihl + 8])
    seg = ip[ihl:ihl + ulen]
    if ulen < 8 or len(seg) != ulen:
        return "UDP length %d does not fit" % ulen
    if field == 0:
        return "no UDP checksum (0)"
    pseudo = sum16(ip[12:20]) + 17 + ulen
    if deferred:
        fin = ~fold(sum16(seg)) & 0xffff
        if fold(pseudo + sum16(seg) + (~field & 0xffff) + fin) != 0xffff:
            return "deferred: seed 0x%04x, pseudo-header sum 0x%04x" % (field, fold(pseudo))
    elif fold(pseudo + sum16(seg)) != 0xffff:
        return "checksum 0x%04x is wrong" % field
    return None

def done(*_):
    print(" ".join("%s=%d" % kv for kv in n.items()), flush=True)
    for b in bad[:5]:
        print("bad: " + b, flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, done)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("eth0", 0))
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
print("ready", flush=True)
while True:
    frame, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(20))
    if addr[2] == socket.PACKET_OUTGOING or len(frame) < 42 + 48 or frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17 or ip[12:16] != coord or struct.unpack("!H", ip[ihl:ihl + 2])[0] != port:
        continue
    status = 0
    for lvl, typ, data in anc:
        if lvl == SOL_PACKET and typ == PACKET_AUXDATA:
            status = struct.unpack("I", data[:4])[0]
    deferred = bool(status & CSUMNOTREADY)
    hdr = ip[ihl + 8:]
    kernel = hdr[3] == 5 and struct.unpack("<H", hdr[34:36])[0] & 0x20
    n["all"] += 1
    if kernel:
        n["kernel"] += 1
        n["kernel_deferred" if deferred else "kernel_finished"] += 1
    why = check(ip, deferred)
    if not why and key:
        ulen = struct.unpack("!H", ip[ihl + 4:ihl + 6])[0]
        data = ip[ihl + 8:ihl + ulen]
        # A UDP GSO send of the user-space path arrives here as one
        # packet: datagrams of the first one's size, the last shorter.
        seg = len(data)
        if seg >= 48:
            typ, flags = data[3], struct.unpack("<H", data[34:36])[0]
            count, dtype = struct.unpack("<HB", data[26:29])
            if typ in (4, 5) and not flags & 0x2:    # CONTRIB, RESULT with data
                seg = 48 + count * (1 << (dtype >> 1)) + 8
            elif typ in (5, 6, 10, 11, 12, 13):     # no body
                seg = 48 + 8
        for off in range(0, len(data), seg):
            dgram = data[off:off + seg]
            flags = struct.unpack("<H", dgram[34:36])[0] if len(dgram) >= 36 else 0
            if not flags & 0x80 or len(dgram) < 56 or not tag_ok(dgram):
                why = "%s job-key tag (type %d, flags 0x%x, seq %d, %d of %d bytes)" % (
                    "no" if not flags & 0x80 else "wrong", dgram[3], flags,
                    struct.unpack("<I", dgram[4:8])[0], len(dgram), len(data))
                break
        else:
            n["tagged"] += 1
    if why:
        n["bad"] += 1
        bad.append("%s%s, tp_status 0x%x" % ("kernel RESULT: " if kernel else "", why, status))
PY

# Transmit checksum offload of a host's eth0 (ETHTOOL_STXCSUM).
cat >"$LOGDIR/txcsum.py" <<'PY'
import array, fcntl, socket, struct, sys
ev = array.array("I", [0x17, int(sys.argv[1])])
ifr = struct.pack("16sP", b"eth0", ev.buffer_info()[0]) + bytes(16)
fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8946, ifr)
PY

# run_case NAME TXCSUM [KEY]: the workers' transmit offload TXCSUM, captures
# on, a job (with SGC_KEY=KEY if given), captures off; the counts per host
# in $LOGDIR/NAME-wH.
run_case() {
	local name=$1 tx=$2 key=${3:-} h i rc
	local -a env=()

	[ -z "$key" ] || env=(--env "SGC_KEY=$key")
	for ((h = 1; h <= HOSTS; h++)); do
		"$CLUSTER" exec "$CLUSTER_NAME" "w$h" -- /usr/bin/python3 "$LOGDIR/txcsum.py" "$tx" ||
			fail "cannot set transmit checksum offload on w$h"
		"$CLUSTER" exec "$CLUSTER_NAME" "w$h" -- /usr/bin/python3 -u "$LOGDIR/capture.py" \
			"$coord_ip" 7000 $key >"$LOGDIR/$name-w$h" 2>&1 &
		BG_PIDS+=($!)
	done
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -l ready "$LOGDIR/$name"-w* 2>/dev/null | wc -l)" -ge $HOSTS ] && break
		sleep 0.1
	done
	[ "$i" -lt 100 ] || fail "the captures did not start: $(cat "$LOGDIR/$name"-w*)"
	"$CLUSTER" run "$CLUSTER_NAME" --ranks $RANKS --accel ebpf --timeout-ms 20000 --deadline 120 \
		"${env[@]}" --logdir "$LOGDIR/run-$name" -- "$CHECK" -s allreduce,bcast,barrier,reduce -c 1,363,5000 \
		-b 1 >"$LOGDIR/out-$name" 2>&1
	rc=$?
	stop_bg
	if [ "$rc" = 77 ] || grep -q "refused the eBPF programs" "$LOGDIR/run-$name/rank-0.log" 2>/dev/null; then
		echo "SKIP: no eBPF path here: $(tail -n1 "$LOGDIR/run-$name/rank-0.log")" >&2
		exit 77
	fi
	[ "$rc" = 0 ] || fail "$name: coll_check failed ($rc): $(tail -n5 "$LOGDIR/out-$name")"
}

# count FILE KEY: a count from a capture's summary line.
count() {
	sed -n "s/.*\<$2=\([0-9]*\).*/\1/p" "$1" | head -1
}

KEY=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
for c in offloaded:1 software:0 keyed:1; do
	name=${c%:*}
	run_case "$name" "${c#*:}" "$([ "$name" = keyed ] && echo "$KEY")"
	for ((h = 1; h <= HOSTS; h++)); do
		f=$LOGDIR/$name-w$h
		all=$(count "$f" all) kernel=$(count "$f" kernel) bad=$(count "$f" bad)
		deferred=$(count "$f" kernel_deferred) finished=$(count "$f" kernel_finished)
		[ -n "$all" ] || fail "$name: no summary from the capture on w$h: $(cat "$f")"
		echo "$name w$h: $(grep all= "$f")"
		[ "$bad" = 0 ] || fail "$name: $bad datagrams with a wrong UDP checksum on w$h: $(grep bad: "$f")"
		# Nothing tested is a failure: the kernel fan-out is on by default.
		[ "$kernel" -gt 0 ] || fail "$name: no kernel-built result reached w$h"
		# Each case shows its own way of holding the checksum.
		if [ "$name" = keyed ]; then
			[ "$(count "$f" tagged)" = "$all" ] ||
				fail "$name: $all datagrams on w$h, $(count "$f" tagged) with a right tag"
		elif [ "$name" = offloaded ]; then
			[ "$deferred" -gt 0 ] || fail "$name: no kernel-built result on w$h had a deferred checksum"
		else
			[ "$finished" -gt 0 ] || fail "$name: no kernel-built result on w$h had a finished checksum"
		fi
	done
done
echo "ok: every datagram from the coordinator, kernel-built results included, had a right UDP" \
	"checksum, and with a key a right tag"

#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# cluster_selftest.sh SGC_CLUSTER SGC_FAULTINJ
#
# Checks the test tools themselves:
#  1. `sgc-cluster session` with 3 hosts and 7 ranks: every rank gets its
#     environment and reaches the coordinator (ping); failures and skips of
#     ranks come back as exit 1 and 77.
#  2. sgc-faultinj --loss 1.0 on a worker's eth0 stops UDP (an echo probe)
#     but not ICMP; once it is stopped, UDP flows again.
#  3. Every host has a permanent neighbour entry for every other host.
#  4. Nothing is left: no namespace of ours, no BPF program or link of ours.
# Needs root; exits 77 (skip) with the reason otherwise.
# Single-quoted scripts below expand in the ranks and in perl, not here.
# shellcheck disable=SC2016
set -uo pipefail

CLUSTER=${1:?usage: cluster_selftest.sh SGC_CLUSTER SGC_FAULTINJ}
FAULTINJ=${2:?usage: cluster_selftest.sh SGC_CLUSTER SGC_FAULTINJ}
ECHO_PORT=9000

NAME=""		# cluster of phase 2
SESSION_NAME=""	# cluster of phase 1, reported by its ranks
FI_PID=""
ECHO_PID=""
TMP=""

log() { echo "cluster_selftest: $*"; }
skip() { echo "cluster_selftest: SKIP: $*" >&2; exit 77; }
fail() { echo "cluster_selftest: FAIL: $*" >&2; exit 1; }

cleanup() {
	[[ -z $FI_PID ]] || kill -TERM "$FI_PID" 2>/dev/null
	[[ -z $ECHO_PID ]] || kill -TERM "$ECHO_PID" 2>/dev/null
	[[ -z $FI_PID ]] || wait "$FI_PID" 2>/dev/null
	[[ -z $ECHO_PID ]] || wait "$ECHO_PID" 2>/dev/null
	[[ -z $NAME ]] || "$CLUSTER" down "$NAME"
	[[ -z $TMP ]] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

((EUID == 0)) || skip "needs root (network namespaces, BPF)"
command -v ip >/dev/null 2>&1 || skip "ip not found (install iproute2)"
PATH=$PATH:/usr/sbin:/sbin
command -v bpftool >/dev/null 2>&1 || skip "bpftool not found (install bpftool)"
command -v ping >/dev/null 2>&1 || skip "ping not found (install iputils-ping)"
command -v perl >/dev/null 2>&1 || skip "perl not found (the UDP probe uses it)"
probe=sgcst-probe-$$
ip netns add "$probe" 2>/dev/null || skip "ip netns unavailable here (cannot create a network namespace)"
ip netns del "$probe"
[[ -x $CLUSTER ]] || fail "no sgc-cluster at $CLUSTER"
[[ -x $FAULTINJ ]] || fail "no sgc-faultinj at $FAULTINJ"
TMP=$(mktemp -d /tmp/sgc-selftest.XXXXXX) || fail "mktemp"

# IDs of loaded BPF programs named faultinj_*, one per line.
faultinj_prog_ids() {
	bpftool prog show 2>/dev/null |
		awk '$3 == "name" && $4 ~ /^faultinj_/ { sub(":", "", $1); print $1 }'
}

# Link IDs whose program is one of the IDs in file $1.
links_of_progs() {
	bpftool link list 2>/dev/null |
		awk -v f="$1" 'BEGIN { while ((getline l < f) > 0) p[l] = 1 }
		     { for (i = 1; i < NF; i++) if ($i == "prog" && ($(i + 1) in p)) { sub(":", "", $1); print $1 } }'
}

# ---- 1. session -------------------------------------------------------------
log "session: 3 hosts, 7 ranks, each pings the coordinator"
rank_cmd='echo "rank=$SGC_RANK world=$SGC_WORLD_SIZE bind=$SGC_BIND coord=$SGC_COORDINATOR cluster=$SGC_CLUSTER ifname=${SGC_IFNAME-}"
ip=${SGC_COORDINATOR%:*}
ping -c1 -W1 "$ip" >/dev/null || { echo "rank $SGC_RANK: no reply from $ip"; exit 1; }
echo "rank $SGC_RANK: ping ok"'
"$CLUSTER" session --hosts 3 --ranks 7 --deadline 60 --logdir "$TMP/s1" \
	-- sh -c "$rank_cmd" >"$TMP/s1.out" 2>&1
rc=$?
cat "$TMP/s1.out"
((rc == 0)) || fail "session exited $rc"
grep -q '^rank 0: ping ok$' "$TMP/s1.out" || fail "rank 0's output was not streamed"
SESSION_NAME=$(sed -n 's/.* cluster=\([^ ]*\) .*/\1/p' "$TMP/s1/rank-0.log")
[[ -n $SESSION_NAME ]] || fail "rank 0 did not see SGC_CLUSTER"
for ((r = 0; r < 7; r++)); do
	f=$TMP/s1/rank-$r.log
	grep -q "^rank $r: ping ok\$" "$f" || fail "rank $r did not reach the coordinator: $(cat "$f")"
	line=$(head -n1 "$f")
	if ((r == 0)); then
		want_bind='\.0\.1:7000'
		want_if=eth0
	else
		want_bind="\\.1\\.$(((r - 1) % 3 + 1)):$((7000 + r))"
		want_if=""
	fi
	[[ $line =~ rank=$r\ world=7\ bind=[0-9]+\.[0-9]+$want_bind\ coord=[0-9.]+\.0\.1:7000\ .*ifname=$want_if$ ]] ||
		fail "rank $r has the wrong environment: $line"
done
log "session: all 7 ranks ok (cluster $SESSION_NAME)"

"$CLUSTER" session --hosts 2 --ranks 3 --deadline 30 --logdir "$TMP/s2" \
	-- sh -c '[ "$SGC_RANK" != 2 ] || exit 3' >"$TMP/s2.out" 2>&1
rc=$?
((rc == 1)) || fail "a failing rank gave exit $rc, not 1: $(cat "$TMP/s2.out")"
grep -q 'rank 2 .*exit code 3' "$TMP/s2.out" || fail "the failing rank was not reported: $(cat "$TMP/s2.out")"
"$CLUSTER" session --hosts 1 --ranks 2 --deadline 30 --logdir "$TMP/s3" \
	-- sh -c 'exit 77' >"$TMP/s3.out" 2>&1
rc=$?
((rc == 77)) || fail "ranks that all skip gave exit $rc, not 77"
log "session: failures and skips reported"

# ---- 2. fault injection -------------------------------------------------------
NAME=sgcst$$
log "up $NAME: 2 hosts"
"$CLUSTER" up "$NAME" --hosts 2 >/dev/null || fail "sgc-cluster up failed"
subnet=$("$CLUSTER" list | awk -v n="$NAME" '$1 == n { sub("subnet=", "", $2); print $2 }')
[[ -n $subnet ]] || fail "sgc-cluster list does not show $NAME"
coord=$subnet.0.1

# Every host has a permanent neighbour entry for every other one (the ARP
# table is shared by all namespaces; a big mesh would overflow it).
for h in c w1 w2; do
	n=$("$CLUSTER" exec "$NAME" "$h" -- ip neigh show nud permanent | grep -c lladdr)
	((n == 2)) || fail "host $h has $n permanent neighbour entries, not 2: $("$CLUSTER" exec "$NAME" "$h" -- ip neigh)"
done
log "neighbour tables: 2 permanent entries on each of 3 hosts"

# UDP echo server on the coordinator host; alarm bounds its life.
"$CLUSTER" exec "$NAME" c -- perl -MIO::Socket::INET -e '
	my $s = IO::Socket::INET->new(LocalAddr => $ARGV[0], Proto => "udp")
		or die "echo server: $!\n";
	alarm 100;
	while (1) { my $peer = $s->recv(my $buf, 65535); $s->send($buf, 0, $peer) if defined $peer }
' "$coord:$ECHO_PORT" &
ECHO_PID=$!

# Exit 0 if an echo comes back within 3 tries of 0.5 s.
udp_probe() {
	"$CLUSTER" exec "$NAME" w1 -- perl -MIO::Socket::INET -MIO::Select -e '
		my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0], Proto => "udp") or exit 2;
		my $sel = IO::Select->new($s);
		for my $try (1 .. 3) {
			my $msg = "probe-$$-$try";
			$s->send($msg);
			while ($sel->can_read(0.5)) {
				$s->recv(my $buf, 65535);
				exit 0 if defined $buf && $buf eq $msg;
			}
		}
		exit 1;
	' "$coord:$ECHO_PORT"
}

icmp_probe() {
	"$CLUSTER" exec "$NAME" w1 -- ping -c1 -W1 "$coord" >/dev/null
}

ok=0
for ((i = 0; i < 10; i++)); do	# the server may still be starting
	if udp_probe; then
		ok=1
		break
	fi
done
((ok)) || fail "no UDP echo from $coord before fault injection"
icmp_probe || fail "no ping reply from $coord before fault injection"
log "UDP echo and ping work"

faultinj_prog_ids | sort >"$TMP/progs.before"
"$CLUSTER" exec "$NAME" w1 -- "$FAULTINJ" --dev eth0 --dir both --loss 1.0 \
	>"$TMP/fi.out" 2>"$TMP/fi.err" &
FI_PID=$!
for ((i = 0; i < 100; i++)); do
	grep -qx attached "$TMP/fi.out" && break
	kill -0 "$FI_PID" 2>/dev/null || break
	sleep 0.1
done
grep -qx attached "$TMP/fi.out" || fail "sgc-faultinj did not attach: $(cat "$TMP/fi.err")"
faultinj_prog_ids | sort | comm -13 "$TMP/progs.before" - >"$TMP/progs.ours"
(($(wc -l <"$TMP/progs.ours") == 2)) ||
	fail "expected 2 faultinj programs (ingress, egress), found: $(tr '\n' ' ' <"$TMP/progs.ours")"
links_of_progs "$TMP/progs.ours" >"$TMP/links.ours"
(($(wc -l <"$TMP/links.ours") == 2)) || fail "expected 2 tcx links, found: $(bpftool link list)"
log "sgc-faultinj attached: programs $(tr '\n' ' ' <"$TMP/progs.ours")links $(tr '\n' ' ' <"$TMP/links.ours")"

udp_probe && fail "UDP echo still works with --loss 1.0"
icmp_probe || fail "ping failed under UDP loss: the injector must touch UDP only"
log "with --loss 1.0: UDP is lost, ping still works"

kill -TERM "$FI_PID"
rc=0
wait "$FI_PID" || rc=$?
FI_PID=""
cat "$TMP/fi.out"
((rc == 0)) || fail "sgc-faultinj exited $rc: $(cat "$TMP/fi.err")"
grep -Eq '^faultinj: passed=[0-9]+ dropped=[1-9][0-9]* duplicated=0 corrupted=0( |$)' "$TMP/fi.out" ||
	fail "unexpected counters line"

udp_probe || fail "no UDP echo after sgc-faultinj was stopped"
log "after detaching: UDP echo works again"

kill -TERM "$ECHO_PID" 2>/dev/null
wait "$ECHO_PID" 2>/dev/null
ECHO_PID=""
"$CLUSTER" down "$NAME" || fail "sgc-cluster down failed"
"$CLUSTER" down "$NAME" || fail "a second sgc-cluster down failed"
down_name=$NAME
NAME=""

# ---- 3. nothing left ------------------------------------------------------------
left=$(ip netns list | awk -v a="$SESSION_NAME-" -v b="$down_name-" \
	'index($1, a) == 1 || index($1, b) == 1 { print $1 }')
[[ -z $left ]] || fail "namespaces left behind: $left"
# Programs are freed shortly after their last reference goes.
for ((i = 0; i < 30; i++)); do
	faultinj_prog_ids | sort | comm -12 "$TMP/progs.ours" - >"$TMP/progs.left"
	[[ -s $TMP/progs.left ]] || break
	sleep 0.1
done
[[ ! -s $TMP/progs.left ]] || fail "BPF programs left: $(tr '\n' ' ' <"$TMP/progs.left")"
links_of_progs "$TMP/progs.ours" >"$TMP/links.left"
[[ ! -s $TMP/links.left ]] || fail "BPF links left: $(tr '\n' ' ' <"$TMP/links.left")"
log "no namespace, BPF program or link of ours is left"
log "PASS"

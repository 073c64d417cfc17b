// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * faultinj.bpf.c - a TC (tcx) fault injector for IPv4.
 *
 * There is no sch_netem on these machines, so tests inject loss, duplication
 * and corruption with this program instead.  It acts on IPv4 packets of one
 * protocol, UDP by default, TCP, or any (cfg.proto), optionally only those
 * with a given port as source or destination (UDP and TCP); everything else
 * passes untouched.
 *
 * Per matching packet, in this order:
 *   loss       drop it (TC_ACT_SHOT);
 *   reorder    if a packet is held for this direction, send the current
 *              packet first and the held one right after it (the older
 *              packet arrives after the newer one); otherwise, at the set
 *              rate, copy the packet into the per-CPU hold slot and drop it
 *              (see release_held() below).  A held packet waits for the
 *              next matching packet in its direction on its CPU: that is a
 *              delay of one packet or more, and when that next packet comes
 *              much later the held one arrives as a replay of old traffic;
 *              one still held when the program is detached is lost;
 *   dup        clone it to the same device in the same direction, marked so
 *              that the clone passes this program once, untouched;
 *   corrupt    flip one random byte of the UDP or TCP payload and fix the
 *              checksum, so the kernel delivers it and only the
 *              application's own validation can notice (other protocols
 *              are not corrupted).
 *
 * The loader (sgc-faultinj.c) writes the rates into `cfg` before load; both
 * `cfg` and `stats` live in this object's .bss, an array map with one entry
 * that the skeleton maps into the loader's memory.
 */
#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PPM_ONE		1000000u
/* skb->mark carried by our own clones, so they are not faulted again */
#define FAULTINJ_MARK	0x5347f1d0u
/* tcx: "no verdict, run the next program"; ends as a pass if none is left */
#define TCX_NEXT	TC_ACT_UNSPEC
#define IP_OFFSET	0x1fff
/* Largest frame the hold slot takes (jumbo MTU + L2); larger ones pass. */
#define HOLD_MAX	9216u
#define HOLD_INGRESS	0
#define HOLD_EGRESS	1
#define HOLD_SCRATCH	2

/*
 * Anonymous struct types on purpose: bpftool 7.1 writes anonymous types out
 * in full in the skeleton, so the loader sees these exact layouts without a
 * second definition (named types would only be forward-declared there).
 */
struct {
	__u32 loss_ppm;		/* parts per million, 0..1000000 */
	__u32 dup_ppm;
	__u32 corrupt_ppm;
	__u16 port;		/* host order; 0 = every UDP packet */
	__u16 pad;
	__u32 reorder_ppm;
	__u32 proto;		/* IPPROTO_UDP, IPPROTO_TCP, or 0: any IPv4 packet */
} cfg;

/* Counters over the matching packets; `passed` counts those let through. */
struct {
	__u64 passed;
	__u64 dropped;
	__u64 duplicated;
	__u64 corrupted;
	__u64 held;		/* taken out of the stream to be sent later */
	__u64 reordered;	/* held packets sent after a newer one */
	__u64 hold_skipped;	/* picked for holding but too big or GSO */
} stats;

/*
 * One frame, L2 header included.  Slots HOLD_INGRESS and HOLD_EGRESS hold a
 * packet per direction; HOLD_SCRATCH keeps the current packet while ingress
 * sends the held one (release_held()).  Per CPU, so that no lock is needed:
 * tc programs run with bottom halves off, and the one nested run, on our own
 * clone redirected to egress, returns before it looks at a slot.
 */
struct hold_slot {
	__u32 len;		/* 0: empty */
	__u32 pad;
	__u8 data[HOLD_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct hold_slot);
} hold SEC(".maps");

static __always_inline bool roll(__u32 ppm)
{
	if (!ppm)
		return false;
	if (ppm >= PPM_ONE)
		return true;
	return bpf_get_prandom_u32() % PPM_ONE < ppm;
}

/* Where the parts of a matching packet are, for corrupt_payload(). */
struct l4_info {
	__u32 payload_off;	/* 0: no payload known (not UDP or TCP) */
	__u32 payload_len;
	__u32 csum_off;
	__u8 proto;
};

/*
 * Decides whether the packet is one to fault, and finds its payload.
 * Headers are copied with bpf_skb_load_bytes() rather than read in place:
 * that works on non-linear skbs too, and the copies stay valid after
 * bpf_clone_redirect(), which invalidates packet pointers.  UDP and TCP
 * share the place of their ports, so one load serves the port filter.
 */
static __always_inline int parse_l4(struct __sk_buff *skb, struct l4_info *l4)
{
	struct tcphdr tcp;
	struct udphdr udp;
	struct iphdr ip;
	__u32 ihl, l4_off, l4_len, hdr_len, avail;
	__u16 port;
	bool ports;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return -1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
		return -1;
	if (ip.version != 4)
		return -1;
	if (cfg.proto && ip.protocol != cfg.proto)
		return -1;
	port = cfg.port;
	ports = ip.protocol == IPPROTO_UDP || ip.protocol == IPPROTO_TCP;
	l4->payload_off = 0;
	l4->payload_len = 0;
	l4->proto = ip.protocol;
	/* A later fragment has no L4 header: with "any" it is still a packet. */
	if (ip.frag_off & bpf_htons(IP_OFFSET))
		return cfg.proto || port ? -1 : 0;
	if (!ports)
		return port ? -1 : 0;
	ihl = ip.ihl * 4;
	if (ihl < sizeof(ip))
		return -1;
	l4_off = ETH_HLEN + ihl;
	/* the ports: the first four bytes of both headers */
	if (bpf_skb_load_bytes(skb, l4_off, &udp, sizeof(udp)))
		return -1;
	if (port && udp.source != bpf_htons(port) && udp.dest != bpf_htons(port))
		return -1;

	avail = skb->len > l4_off ? skb->len - l4_off : 0;
	if (ip.protocol == IPPROTO_UDP) {
		hdr_len = sizeof(udp);
		l4_len = bpf_ntohs(udp.len);
		l4->csum_off = l4_off + offsetof(struct udphdr, check);
	} else {
		if (bpf_skb_load_bytes(skb, l4_off, &tcp, sizeof(tcp)))
			return 0;	/* a TCP packet, with no payload we know of */
		hdr_len = tcp.doff * 4;
		if (hdr_len < sizeof(tcp))
			return 0;
		l4_len = bpf_ntohs(ip.tot_len) > ihl ? bpf_ntohs(ip.tot_len) - ihl : 0;
		l4->csum_off = l4_off + offsetof(struct tcphdr, check);
	}
	/* A first fragment holds only part of the datagram. */
	if (l4_len > avail)
		l4_len = avail;
	if (l4_len > hdr_len) {
		l4->payload_off = l4_off + hdr_len;
		l4->payload_len = l4_len - hdr_len;
	}
	return 0;
}

/*
 * Flips one byte of the payload and updates the L4 checksum by the change
 * of the 16-bit word that holds it.  Offsets inside the datagram are even
 * from the L4 header on (UDP's is 8 bytes, TCP's a multiple of 4), so that
 * word starts at an even payload offset; a trailing odd byte is summed as if
 * padded with a zero.
 * Sums are taken over the words as they lie in memory, the same way
 * bpf_l4_csum_replace() applies them, so no byte swapping is needed: only
 * the shift that selects a byte of the loaded word depends on byte order.
 */
static __always_inline int corrupt_payload(struct __sk_buff *skb, const struct l4_info *l4)
{
	__u32 rnd = bpf_get_prandom_u32();
	__u32 payload_len = l4->payload_len;
	__u32 idx, word_off, shift, flags;
	__u16 from = 0, to;
	__u8 byte, mask;

	if (!l4->payload_off || !payload_len || payload_len > 0xffff)
		return -1;
	idx = (rnd >> 8) % payload_len;
	mask = rnd & 0xff;
	if (!mask)
		mask = 0x80;

	word_off = l4->payload_off + (idx & ~1u);
	if ((idx | 1) < payload_len) {
		if (bpf_skb_load_bytes(skb, word_off, &from, 2))
			return -1;
	} else {
		if (bpf_skb_load_bytes(skb, word_off, &from, 1))
			return -1;
	}
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	shift = (idx & 1) * 8;
#else
	shift = (~idx & 1) * 8;
#endif
	to = from ^ ((__u16)mask << shift);
	byte = to >> shift;

	if (bpf_skb_store_bytes(skb, word_off + (idx & 1), &byte, 1, 0))
		return -1;
	/*
	 * A UDP checksum 0 means "none" over IPv4: BPF_F_MARK_MANGLED_0 leaves
	 * it so (TCP has no such value).  On a CHECKSUM_PARTIAL skb (local
	 * sender, veth, lo) the field holds only the pseudo-header sum and the
	 * helper rightly leaves it alone: the final sum is computed later over
	 * the corrupted payload.
	 */
	flags = sizeof(__u16);
	if (l4->proto == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, l4->csum_off, from, to, flags))
		return -1;
	return 0;
}

static __always_inline struct hold_slot *slot(__u32 idx)
{
	return bpf_map_lookup_elem(&hold, &idx);
}

/* Copies the whole frame into @s; fails for frames it cannot hold. */
static __always_inline int save_frame(struct __sk_buff *skb, struct hold_slot *s)
{
	__u32 len = skb->len;

	if (len < ETH_HLEN || len > HOLD_MAX || skb->gso_size)
		return -1;
	if (bpf_skb_load_bytes(skb, 0, s->data, len))
		return -1;
	s->len = len;
	return 0;
}

/* Makes the skb's frame a copy of @s's (length, headers and payload). */
static __always_inline int load_frame(struct __sk_buff *skb,
				      const struct hold_slot *s)
{
	__u32 len = s->len;

	if (len < ETH_HLEN || len > HOLD_MAX)
		return -1;
	if (bpf_skb_change_tail(skb, len, 0))
		return -1;
	return bpf_skb_store_bytes(skb, 0, s->data, len, BPF_F_RECOMPUTE_CSUM);
}

/* Sends a copy of the skb's current frame out again, past this program. */
static __always_inline int send_copy(struct __sk_buff *skb, bool ingress)
{
	__u32 mark = skb->mark;
	int err;

	/* the clone takes the mark along; the original gets its own back */
	skb->mark = FAULTINJ_MARK;
	err = bpf_clone_redirect(skb, skb->ifindex, ingress ? BPF_F_INGRESS : 0);
	skb->mark = mark;
	return err;
}

/*
 * Delivers the current packet and then the held one.  A clone redirected to
 * egress is transmitted before the helper returns, while one redirected to
 * ingress is queued to the CPU's backlog and received after the current
 * skb.  So egress sends the current frame as the clone and turns the skb
 * into the held frame; ingress turns the skb into the held frame, sends that
 * as the clone (to be received later) and puts the current frame back.
 * Returns true with the verdict in @verdict, or false to go on with the
 * current packet as if nothing was held.
 */
static __always_inline bool release_held(struct __sk_buff *skb, bool ingress,
					 struct hold_slot *held, int *verdict)
{
	struct hold_slot *cur;

	if (!ingress) {
		if (send_copy(skb, false))
			return false;
		/* if the held frame cannot be loaded, the current one went out */
		*verdict = load_frame(skb, held) ? TC_ACT_SHOT : TCX_NEXT;
		held->len = 0;
		return true;
	}
	cur = slot(HOLD_SCRATCH);
	if (!cur || save_frame(skb, cur))
		return false;
	if (load_frame(skb, held) || send_copy(skb, true)) {
		/* put the current frame back; the held one stays held */
		if (!load_frame(skb, cur))
			return false;
		*verdict = TC_ACT_SHOT;
		return true;
	}
	held->len = 0;
	*verdict = load_frame(skb, cur) ? TC_ACT_SHOT : TCX_NEXT;
	return true;
}

static __always_inline int faultinj(struct __sk_buff *skb, bool ingress)
{
	struct l4_info l4;
	struct hold_slot *held;
	int verdict;

	if (skb->mark == FAULTINJ_MARK) {
		/* our clone, made below: let it through once */
		skb->mark = 0;
		return TCX_NEXT;
	}
	if (parse_l4(skb, &l4))
		return TCX_NEXT;

	if (roll(cfg.loss_ppm)) {
		__sync_fetch_and_add(&stats.dropped, 1);
		return TC_ACT_SHOT;
	}

	if (cfg.reorder_ppm) {
		held = slot(ingress ? HOLD_INGRESS : HOLD_EGRESS);
		if (!held)
			return TCX_NEXT;
		if (held->len) {
			if (release_held(skb, ingress, held, &verdict)) {
				if (verdict == TCX_NEXT) {
					__sync_fetch_and_add(&stats.reordered, 1);
					__sync_fetch_and_add(&stats.passed, 1);
				} else {
					/* a frame lost on the way: rare */
					__sync_fetch_and_add(&stats.dropped, 1);
				}
				return verdict;
			}
		} else if (roll(cfg.reorder_ppm)) {
			if (!save_frame(skb, held)) {
				__sync_fetch_and_add(&stats.held, 1);
				return TC_ACT_SHOT;
			}
			__sync_fetch_and_add(&stats.hold_skipped, 1);
		}
	}

	if (roll(cfg.dup_ppm) && !send_copy(skb, ingress))
		__sync_fetch_and_add(&stats.duplicated, 1);

	if (roll(cfg.corrupt_ppm) && !corrupt_payload(skb, &l4))
		__sync_fetch_and_add(&stats.corrupted, 1);

	__sync_fetch_and_add(&stats.passed, 1);
	return TCX_NEXT;
}

SEC("tc")
int faultinj_ingress(struct __sk_buff *skb)
{
	return faultinj(skb, true);
}

SEC("tc")
int faultinj_egress(struct __sk_buff *skb)
{
	return faultinj(skb, false);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

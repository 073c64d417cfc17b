/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Fan-out by bpf_clone_redirect, shared by scatter_prog (TC egress) and
 * notify_prog (TC ingress): for each rank of a range, rewrite the frame's
 * addresses and hdr.rank for that rank and clone it out of cfg.ifindex.
 *
 * The rewrite goes through helpers only (bpf_skb_store_bytes): the L2-L4
 * headers are built in a stack image with a recomputed IPv4 checksum and
 * stored in one go, then hdr.rank.  The UDP checksum is kept right by
 * deltas (bpf_l4_csum_replace), which handles both states the field may
 * be in: a seed (CHECKSUM_PARTIAL: the coordinator's socket with checksum
 * offload, or a result built from a local worker's datagram) or the full
 * sum (without offload; a result gather_prog summed).  So the clones stay
 * valid on any device.  The stores leave skb->csum alone: each changes
 * bytes the UDP checksum covers and the delta changes the field by as
 * much the other way, or (Ethernet, a valid IPv4 header) bytes that add
 * nothing to it.
 *
 * notify_prog stops at the first clone that fails (the per-CPU backlog a
 * veth feeds is full while the softirq that would drain it is busy with
 * us) and leaves that rank and the rest to user space.
 *
 * Clones re-enter the egress hook: scatter_prog sees them and lets them by
 * (it acts only on SGC_F_FANOUT, which is clear on every clone).  Nothing
 * here touches the per-CPU `jobs` record, which notify_prog may hold
 * across the loop.
 */
#ifndef SGC_FANOUT_BPF_H
#define SGC_FANOUT_BPF_H

#include <linux/pkt_cls.h>

#include "parse.bpf.h"

/* The tcx verdict for "not ours" (linux/bpf.h of kernels >= 6.6; Debian
 * 12's is older).  The others used here are the TC_ACT_* values. */
#ifndef TCX_NEXT
#define TCX_NEXT	-1	/* on to the next program */
#endif

struct sgc_fan {
	struct __sk_buff *skb;
	struct sgc_frame f;	/* the frame's headers as the next clone gets them */
	__u32 first;		/* ranks [first, end) ... */
	__u32 end;
	__u32 skip;		/* ... except this one (a broadcast's root) */
	__u32 clones;
	__u32 errors;
	__u32 stop;		/* stop_on_err: the rank whose clone failed, else 0 */
	__u8 stop_on_err;	/* leave the rest of the range to user space */
	__u16 rank_now;		/* hdr.rank in the packet now */
	/* With a job key (sgc_fan_mac_setup()): every clone's header differs
	 * (hdr.rank), so each gets its own tag, from the body's NH sums taken
	 * once and its header. */
	const struct sgc_mac_key *mk;	/* NULL: no tags */
	struct sgc_nh nh;
	__u32 body_len;
	__u32 tag_off;		/* the tag's offset in the frame */
	__u64 tag_now;		/* the tag in the packet now */
};

/*
 * The clone's tag for hdr.rank @rank into the packet, the UDP checksum
 * following by the difference.  0, or -1 when a helper failed.
 */
static __always_inline int sgc_fan_tag(struct sgc_fan *fan, __u16 rank)
{
	__s64 diff;
	__u64 tag;

	fan->f.hdr.rank = rank;
	tag = sgc_mac_hdr_tag(fan->mk, &fan->f.hdr, fan->body_len, &fan->nh);
	diff = bpf_csum_diff((__be32 *)&fan->tag_now, sizeof(tag), (__be32 *)&tag, sizeof(tag), 0);
	if (diff < 0 ||
	    bpf_l4_csum_replace(fan->skb, SGC_OFF_UDP_CSUM, 0, (__u32)diff, BPF_F_MARK_MANGLED_0) ||
	    bpf_skb_store_bytes(fan->skb, fan->tag_off, &tag, sizeof(tag), 0))
		return -1;
	fan->tag_now = tag;
	return 0;
}

static long sgc_fan_one(__u64 i, void *arg)
{
	struct sgc_fan *fan = arg;
	struct __sk_buff *skb = fan->skb;
	const struct sgc_bpf_rank *rk;
	__u32 r = fan->first + (__u32)i, old_daddr;
	__u16 old_dport, rank;

	if (r >= fan->end || fan->stop)
		return 1;
	if (r == 0 || r == fan->skip)
		return 0;
	rk = bpf_map_lookup_elem(&ranks, &r);
	if (!rk || !rk->ip) {
		fan->errors++;
		return 0;
	}
	old_daddr = fan->f.ip.daddr;
	old_dport = fan->f.udp.dest;
	__builtin_memcpy(fan->f.eth.h_dest, rk->mac, ETH_ALEN);
	fan->f.ip.daddr = rk->ip;
	fan->f.ip.check = sgc_ip_csum(&fan->f.ip);
	fan->f.udp.dest = rk->port;
	rank = (__u16)r;

	/* Ethernet, IPv4, and UDP up to (not including) its checksum... */
	if (bpf_skb_store_bytes(skb, 0, &fan->f.eth, SGC_OFF_UDP_CSUM, 0))
		goto err;
	/* ...which follows by deltas. */
	if (bpf_l4_csum_replace(skb, SGC_OFF_UDP_CSUM, old_daddr, rk->ip,
				BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4) ||
	    bpf_l4_csum_replace(skb, SGC_OFF_UDP_CSUM, old_dport, rk->port,
				BPF_F_MARK_MANGLED_0 | 2) ||
	    bpf_l4_csum_replace(skb, SGC_OFF_UDP_CSUM, fan->rank_now, rank,
				BPF_F_MARK_MANGLED_0 | 2))
		goto err;
	if (bpf_skb_store_bytes(skb, SGC_OFF_H(rank), &rank, sizeof(rank), 0))
		goto err;
	fan->rank_now = rank;
	if (fan->mk && sgc_fan_tag(fan, rank))
		goto err;
	if (bpf_clone_redirect(skb, cfg.ifindex, 0))
		goto err;
	fan->clones++;
	return 0;
err:
	fan->errors++;
	/* A full backlog stays full for the rest of this softirq. */
	if (fan->stop_on_err)
		fan->stop = r;
	return 0;
}

/*
 * The clones' source address and port, when they are not the frame's
 * (notify_prog: a result that came from a worker goes out from the
 * coordinator): into the image, which the first clone stores, and into
 * the UDP checksum now.  0, or -1 when the checksum could not be changed.
 */
static __always_inline int sgc_fan_source(struct sgc_fan *fan, __u32 ip, __u16 port)
{
	if (bpf_l4_csum_replace(fan->skb, SGC_OFF_UDP_CSUM, fan->f.ip.saddr, ip,
				BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4) ||
	    bpf_l4_csum_replace(fan->skb, SGC_OFF_UDP_CSUM, fan->f.udp.source, port,
				BPF_F_MARK_MANGLED_0 | 2))
		return -1;
	fan->f.ip.saddr = ip;
	fan->f.udp.source = port;
	return 0;
}

/*
 * With a job key, what the clones' tags need: the body's NH sums (the
 * body is what the UDP length says between our header and the tag) and
 * SGC_F_MAC in the header, set here if the frame lacks it (a RESULT that
 * gather_prog wrote).  Without a key, fan->mk = NULL.  0, or -1 when the
 * frame cannot carry a tag.
 */
static __always_inline int sgc_fan_mac_setup(struct sgc_fan *fan)
{
	struct sgc_bpf_event *ev;
	__u64 n, ulen;	/* 64-bit: clang 14 tests a 32-bit one's bound on a copy */
	__u32 zero = 0;
	__u16 flags;

	fan->mk = NULL;
	if (!(cfg.flags & SGC_BPF_CFG_MAC))
		return 0;
	ulen = bpf_ntohs(fan->f.udp.len);
	if (ulen < sizeof(struct udphdr) + SGC_HDR_SIZE + SGC_MAC_TAG_SIZE)
		return -1;
	n = ulen - sizeof(struct udphdr) - SGC_HDR_SIZE - SGC_MAC_TAG_SIZE;
	if (n > SGC_MAX_BODY)
		return -1;
	ev = bpf_map_lookup_elem(&mac_scratch, &zero);
	fan->mk = bpf_map_lookup_elem(&mac_key, &zero);
	if (!ev || !fan->mk)
		return -1;
	if (n && bpf_skb_load_bytes(fan->skb, SGC_OFF_HDR + SGC_HDR_SIZE, ev->body, n))
		return -1;
	__builtin_memset(fan->nh.tail, 0, sizeof(fan->nh.tail));
	if ((n & 15) && bpf_skb_load_bytes(fan->skb, SGC_OFF_HDR + SGC_HDR_SIZE + (n & ~15ULL),
					   fan->nh.tail, n & 15))
		return -1;
	if (sgc_mac_body(ev, fan->mk, (__u32)n, &fan->nh))
		return -1;
	fan->body_len = (__u32)n;
	fan->tag_off = SGC_OFF_HDR + SGC_HDR_SIZE + (__u32)n;
	if (bpf_skb_load_bytes(fan->skb, fan->tag_off, &fan->tag_now, sizeof(fan->tag_now)))
		return -1;
	if (!(fan->f.hdr.flags & SGC_F_MAC)) {
		flags = fan->f.hdr.flags | SGC_F_MAC;
		if (bpf_l4_csum_replace(fan->skb, SGC_OFF_UDP_CSUM, fan->f.hdr.flags, flags,
					BPF_F_MARK_MANGLED_0 | 2) ||
		    bpf_skb_store_bytes(fan->skb, SGC_OFF_H(flags), &flags, sizeof(flags), 0))
			return -1;
		fan->f.hdr.flags = flags;
	}
	return 0;
}

/* Clone to ranks [first, end) except skip; counts clones and failures. */
static __always_inline void sgc_fan_run(struct sgc_fan *fan)
{
	if (fan->end > fan->first)
		bpf_loop(fan->end - fan->first, sgc_fan_one, fan, 0);
	if (fan->clones)
		sgc_agg_count(SGC_ST_FANOUT_CLONES, fan->clones);
	if (fan->errors)
		sgc_agg_count(SGC_ST_FANOUT_ERR, fan->errors);
}

#endif /* SGC_FANOUT_BPF_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libsgcoll's coordinator-side eBPF programs, one object so they share
 * their maps (see sgc_common.h for the contract with the loader):
 *
 *   gather_prog   XDP on the coordinator's interface: checks contributions
 *                 and tail-calls the reduction for their dtype and op
 *                 (reduce_<dtype>_<op>, or the user's program for
 *                 SGC_OP_CUSTOM), which reduces them into their slot and
 *                 drops them; the one that completes a chunk leaves as the
 *                 RESULT (ring buffer, or passed on with metadata).
 *   notify_prog   tcx ingress: clones a completed RESULT to its receivers
 *                 and delivers it to the coordinator.
 *   scatter_prog  tcx egress: turns one SGC_F_FANOUT datagram from the
 *                 coordinator into one per rank of its range.
 */
#include "maps.bpf.h"
#include "parse.bpf.h"
#include "reduce.bpf.h"
#include "fanout.bpf.h"

/* ------------------------------------------------------------ reductions */

SGC_BPF_DTYPES(SGC_DEFINE_REDUCE_DTYPE, unused)

/*
 * SGC_BPF_REDUCE_INDEX(dtype, op) -> reduce_<dtype>_<op>; libbpf fills these
 * 56 entries at load.  Entry 56, SGC_BPF_CUSTOM_INDEX (SGC_OP_CUSTOM), is
 * the loader's: the user's program.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SGC_BPF_NVARIANTS);
	__uint(key_size, sizeof(__u32));
	__array(values, int (struct xdp_md *));
} reduce_progs SEC(".maps") = {
	.values = { SGC_BPF_DTYPES(SGC_REDUCE_ROW, unused) },
};

/* ------------------------------------------------------------ gather */

SEC("xdp")
int gather_prog(struct xdp_md *ctx)
{
	struct sgc_agg_job *job = NULL;
	__u32 stat, idx, n;
	int v;

	v = sgc_gather_check(ctx, &job, &stat);
	if ((v != SGC_GATHER_REDUCE && v != SGC_GATHER_USER) || !job) {
		sgc_count(stat);
		return v == SGC_GATHER_REDUCE || v == SGC_GATHER_USER ? XDP_DROP : v;
	}
	/* With a job key, the tag before anything changes; its check loads
	 * the body into the record, for the reduction too. */
	if ((cfg.flags & SGC_BPF_CFG_MAC) && sgc_gather_mac(ctx, job)) {
		sgc_count(SGC_ST_DROP_MAC);
		return XDP_DROP;
	}
	sgc_gather_commit(job);
	if (v == SGC_GATHER_USER) {
		sgc_count(SGC_ST_PASS_USER);
		return XDP_PASS;
	}
	/* Read back, not forwarded from the check: the bound below must be on
	 * the register the helper gets. */
	n = *(volatile __u32 *)&job->bytes;
	if (n > SGC_MAX_BODY) {
		sgc_count(SGC_ST_DROP_MALFORMED);
		return XDP_DROP;
	}
	/* (with a key, the tag's check loaded it already) */
	if (n && !(cfg.flags & SGC_BPF_CFG_MAC) &&
	    bpf_xdp_load_bytes(ctx, SGC_AGG_BODY_OFF, job->ev.body, n)) {
		sgc_count(SGC_ST_DROP_MALFORMED);
		return XDP_DROP;
	}
	idx = SGC_BPF_REDUCE_INDEX(job->dtype, job->op);
	job->armed = SGC_AGG_ARMED;
	bpf_tail_call(ctx, &reduce_progs, idx);

	/* No program for it (custom op without one): user space reduces. */
	job->armed = 0;
	sgc_count(SGC_ST_PASS_USER);
	return XDP_PASS;
}

/* ------------------------------------------------------------ notify */

/* Which ranks get a copy of a completed result. */
static __always_inline void sgc_receivers(const struct sgc_frame *f, struct sgc_fan *fan)
{
	__u32 lim = cfg.world < SGC_BPF_FANOUT_MAX + 1 ? cfg.world : SGC_BPF_FANOUT_MAX + 1;
	__u32 root = f->hdr.arg;

	fan->first = 1;
	fan->end = lim;
	fan->skip = 0;
	switch (f->hdr.coll) {
	case SGC_COLL_ALLREDUCE:
	case SGC_COLL_BARRIER:
		break;
	case SGC_COLL_BCAST:
		fan->skip = root;
		break;
	case SGC_COLL_REDUCE:
		if (root == 0 || root >= lim) {
			fan->end = 0;
		} else {
			fan->first = root;
			fan->end = root + 1;
		}
		break;
	default:	/* QUERY: the coordinator's alone */
		fan->end = 0;
	}
}

/*
 * Pacing of notify_prog's clones, per CPU.  A clone goes to the per-CPU
 * backlog that a veth feeds (netdev_max_backlog), and on a bridge, or on
 * a host that carries many workers, it is queued there again for each
 * further veth it crosses, in the same softirq, where bpf_clone_redirect()
 * cannot see it dropped.  One NAPI poll on the coordinator's interface
 * completes tens of results, each cloned to every worker: with 64
 * collectives in flight at 33 ranks the second hop dropped 12,000-18,000
 * clones a run.  So a CPU clones at most cfg.fan_burst at once, refilled
 * at that many per SGC_FAN_REFILL_NS; the ranks beyond go to user space
 * (fan_first, counted in SGC_ST_FANOUT_PACED), whose sends leave one by
 * one, each drained before the next.
 */
#define SGC_FAN_REFILL_NS	1000000ULL

struct sgc_fan_pace {
	__u64 at;	/* last refill */
	__u64 tokens;	/* clones this CPU may send now */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sgc_fan_pace);
} fan_pace SEC(".maps");

/* This CPU's clone budget, refilled up to now; NULL when unpaced. */
static __always_inline struct sgc_fan_pace *sgc_fan_budget(void)
{
	__u64 burst = cfg.fan_burst, now, add;
	struct sgc_fan_pace *p;
	__u32 zero = 0;

	if (!burst)
		return NULL;
	p = bpf_map_lookup_elem(&fan_pace, &zero);
	if (!p)
		return NULL;
	now = bpf_ktime_get_ns();
	add = (now - p->at) * burst / SGC_FAN_REFILL_NS;
	if (add) {
		p->tokens = p->tokens + add < burst ? p->tokens + add : burst;
		p->at = now;
	}
	return p;
}

/* The RESULT as a ring-buffer record; 0 when queued. */
static __always_inline int sgc_notify_ring(struct __sk_buff *skb, const struct sgc_frame *orig,
					   __u32 slot_idx)
{
	struct sgc_bpf_slot *s;
	struct sgc_agg_job *j;
	__u32 zero = 0, w, words = (cfg.world + 63) / 64;
	__u64 n;	/* 64-bit, so that its bound holds for the helper (alu32) */
	__u16 nseen = 0;
	int match;

	j = bpf_map_lookup_elem(&jobs, &zero);
	if (!j)
		return -1;
	__builtin_memcpy(&j->ev.hdr, &orig->hdr, sizeof(j->ev.hdr));
	n = (__u32)orig->hdr.count * sgc_wire_dtype_size(orig->hdr.dtype & 7);
	asm volatile("" : "+r"(n));	/* a 64-bit bound below, not a 32-bit one */
	if (n > SGC_MAX_BODY)
		return -1;
	if (n && bpf_skb_load_bytes(skb, SGC_OFF_HDR + SGC_HDR_SIZE, j->ev.body, n))
		return -1;
	s = bpf_map_lookup_elem(&slots, &slot_idx);
	if (!s)
		return -1;
	bpf_spin_lock(&s->lock);
	match = s->state == SGC_SLOT_DONE && s->seq == orig->hdr.seq &&
		s->chunk == orig->hdr.chunk && s->coll == orig->hdr.coll;
	for (w = 0; w < SGC_BPF_SEEN_WORDS; w++) {
		if (w >= words)
			break;
		j->ev.seen[w] = match ? s->seen[w] : 0;
	}
	if (match)
		nseen = s->nseen;
	bpf_spin_unlock(&s->lock);
	j->ev.slot = slot_idx;
	j->ev.nseen = nseen;
	j->ev.reserved = 0;
	return bpf_ringbuf_output(&events, &j->ev, sizeof(j->ev), 0) ? -1 : 0;
}

SEC("tc")
int notify_prog(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct sgc_bpf_meta *meta = (void *)(long)skb->data_meta;
	struct sgc_frame orig;
	struct sgc_fan fan;
	__u32 slot_idx, old_aux;
	__u16 old_fan_first;
	int moved = 0;		/* the fan-out rewrote the headers */
	__u32 paced = 0;	/* the first rank left to user space by pacing */
	struct sgc_fan_pace *pace = NULL;	/* this CPU's clone budget */

	if ((void *)(meta + 1) > data || meta->magic != SGC_BPF_META_MAGIC)
		return TCX_NEXT;
	slot_idx = meta->slot;
	if (slot_idx >= SGC_BPF_SLOTS || sgc_skb_frame(skb, &orig) ||
	    orig.ip.daddr != cfg.coord_ip || orig.udp.dest != cfg.coord_port ||
	    !sgc_frame_is_sgc(&orig) || orig.hdr.type != SGC_MSG_RESULT ||
	    !(orig.hdr.flags & SGC_F_KERNEL))
		return TCX_NEXT;
	/* The UDP checksum as this skb wants it; the image keeps it too, so
	 * that putting the image back puts it back. */
	if (sgc_skb_udp_csum_settle(skb, &orig)) {
		sgc_count(SGC_ST_FANOUT_ERR);
		return TC_ACT_SHOT;
	}

	fan.clones = sgc_opaque_zero;
	fan.errors = sgc_opaque_zero;
	fan.stop = 0;
	fan.stop_on_err = 1;
	if (cfg.flags & SGC_BPF_CFG_ALLGATHER) {
		__u32 n, room;

		sgc_receivers(&orig, &fan);
		n = fan.end > fan.first ? fan.end - fan.first : 0;
		/* How many this CPU clones: none while many collectives are
		 * open (win.fan_user), else what its budget holds. */
		pace = n && !win.fan_user ? sgc_fan_budget() : NULL;
		room = win.fan_user ? 0 : pace && pace->tokens < n ? (__u32)pace->tokens : n;
		if (room < n) {
			sgc_agg_count(SGC_ST_FANOUT_PACED, n - room);
			fan.end = fan.first + room;
			paced = fan.end;
		}
		if (fan.end > fan.first) {
			fan.skb = skb;
			fan.f = orig;
			fan.rank_now = orig.hdr.rank;
			sgc_coord_mac(fan.f.eth.h_source);
			moved = 1;
			if (sgc_fan_source(&fan, cfg.coord_ip, cfg.coord_port) ||
			    sgc_fan_mac_setup(&fan))
				fan.errors++;
			else
				sgc_fan_run(&fan);
			if (pace)	/* at most the tokens, as fan.end was cut to them */
				pace->tokens -= fan.clones + fan.errors;
		}
		/* Not cloned here: user space sends from here. */
		if (paced && !fan.stop)
			fan.stop = paced;
	}
	/* Where user space takes over from us (see struct sgc_hdr). */
	old_fan_first = orig.hdr.fan_first;
	orig.hdr.fan_first = (__u16)fan.stop;

	/* Ring-buffer delivery without re-broadcast happened in XDP already;
	 * such a result comes here only when the ring was full then, and
	 * takes the socket. */
	if ((cfg.flags & SGC_BPF_CFG_RINGBUF) && (cfg.flags & SGC_BPF_CFG_ALLGATHER)) {
		if (!sgc_notify_ring(skb, &orig, slot_idx)) {
			sgc_count(SGC_ST_DELIVERED);
			return TC_ACT_SHOT;
		}
		sgc_count(SGC_ST_RINGBUF_FULL);
	}

	/* To the coordinator's socket, as it arrived (the clones changed
	 * the addresses, hdr.rank and the UDP checksum with them; the stored
	 * image puts all of them back), with this load's token in aux: the
	 * mark by which user space tells it from an SGC_F_KERNEL RESULT off
	 * the wire.  The clones have gone, so no worker ever sees the token.
	 * The copy never leaves the host, but its UDP checksum is kept right
	 * too (two deltas, for aux and fan_first) rather than zeroed: then
	 * every RESULT built here carries one, and a stack that verifies it
	 * checks what the kernel wrote. */
	old_aux = orig.hdr.aux;
	orig.hdr.aux = cfg.result_token;
	if (moved &&
	    (bpf_skb_store_bytes(skb, 0, &orig.eth, SGC_L2L4_LEN, 0) ||
	     bpf_skb_store_bytes(skb, SGC_OFF_H(rank), &orig.hdr.rank, sizeof(orig.hdr.rank), 0))) {
		sgc_count(SGC_ST_FANOUT_ERR);
		return TC_ACT_SHOT;
	}
	/* aux and fan_first are neighbours: one store. */
	_Static_assert(offsetof(struct sgc_hdr, fan_first) == offsetof(struct sgc_hdr, aux) + 4,
		       "aux, fan_first");
	if (bpf_l4_csum_replace(skb, SGC_OFF_UDP_CSUM, old_aux, orig.hdr.aux,
				BPF_F_MARK_MANGLED_0 | 4) ||
	    bpf_l4_csum_replace(skb, SGC_OFF_UDP_CSUM, old_fan_first, orig.hdr.fan_first,
				BPF_F_MARK_MANGLED_0 | 2) ||
	    bpf_skb_store_bytes(skb, SGC_OFF_H(aux), &orig.hdr.aux,
				sizeof(orig.hdr.aux) + sizeof(orig.hdr.fan_first), 0)) {
		sgc_count(SGC_ST_FANOUT_ERR);
		return TC_ACT_SHOT;
	}
	sgc_count(SGC_ST_DELIVERED);
	return TC_ACT_OK;
}

/* ------------------------------------------------------------ scatter */

SEC("tc")
int scatter_prog(struct __sk_buff *skb)
{
	struct sgc_fan fan;
	__u16 flags, fan_end;
	__u32 fan_old, zero32 = 0;

	if (sgc_skb_frame(skb, &fan.f) || fan.f.ip.saddr != cfg.coord_ip ||
	    fan.f.udp.source != cfg.coord_port || !sgc_frame_is_sgc(&fan.f) ||
	    !(fan.f.hdr.flags & SGC_F_FANOUT))
		return TCX_NEXT;

	/* First of all clear the request, so that the clones, which come
	 * back through this hook, pass; and the rank range. */
	flags = fan.f.hdr.flags & ~SGC_F_FANOUT;
	fan_end = fan.f.hdr.fan_end;
	fan.first = fan.f.hdr.fan_first;
	__builtin_memcpy(&fan_old, (const void *)&fan.f.hdr.fan_first, 4);
	if (bpf_l4_csum_replace(skb, SGC_OFF_UDP_CSUM, fan.f.hdr.flags, flags,
				BPF_F_MARK_MANGLED_0 | 2) ||
	    bpf_skb_store_bytes(skb, SGC_OFF_H(flags), &flags, sizeof(flags), 0) ||
	    bpf_l4_csum_replace(skb, SGC_OFF_UDP_CSUM, fan_old, 0, BPF_F_MARK_MANGLED_0 | 4) ||
	    bpf_skb_store_bytes(skb, SGC_OFF_H(fan_first), &zero32, 4, 0)) {
		sgc_count(SGC_ST_FANOUT_ERR);
		return TC_ACT_SHOT;
	}

	/* The image as the packet is now: the clones' tags cover it. */
	fan.f.hdr.flags = flags;
	fan.f.hdr.fan_first = 0;
	fan.f.hdr.fan_end = 0;
	fan.skb = skb;
	if (sgc_fan_mac_setup(&fan)) {
		sgc_count(SGC_ST_FANOUT_ERR);
		return TC_ACT_SHOT;
	}
	fan.end = fan_end < cfg.world ? fan_end : cfg.world;
	fan.skip = 0;
	fan.clones = sgc_opaque_zero;
	fan.errors = sgc_opaque_zero;
	fan.stop = 0;
	fan.stop_on_err = 0;
	fan.rank_now = fan.f.hdr.rank;
	sgc_coord_mac(fan.f.eth.h_source);
	sgc_fan_run(&fan);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

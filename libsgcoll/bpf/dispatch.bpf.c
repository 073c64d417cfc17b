/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sgc_dispatch, the XDP program libsgcoll attaches to an interface, so that
 * every eBPF-path coordinator on it (any job, any communicator) shares the
 * one XDP hook.  Each coordinator puts its gather_prog into a slot of
 * `gather_slots` and its address into `jobs`; sgc_dispatch tail-calls the
 * gather_prog whose job a UDP datagram is addressed to and passes every
 * other frame untouched.
 *
 * Why not a chain of freplace programs (libxdp's dispatcher): on these
 * kernels an extension, like any tracing program, is refused (EPERM under
 * lockdown=integrity), and libxdp pins its programs in bpffs, which
 * outlives a crashed job and is not shared between `ip netns exec`
 * mount namespaces.  Here nothing is pinned: when the last process
 * holding `gather_slots` ends, the kernel empties it, and what may stay
 * on the interface after a crash is this program alone, passing all.
 */
#include "udp4.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SGC_XDP_SLOTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} gather_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SGC_XDP_SLOTS);
	__type(key, struct sgc_xdp_job_key);
	__type(value, struct sgc_xdp_job);
} jobs SEC(".maps");

SEC("xdp")
int sgc_dispatch(struct xdp_md *ctx)
{
	struct sgc_xdp_job_key key = {};
	struct sgc_xdp_job *job;
	struct udphdr *udp;
	struct iphdr *ip;

	udp = sgc_udp4((void *)(long)ctx->data, (void *)(long)ctx->data_end, &ip);
	if (!udp)
		return XDP_PASS;
	key.ip = ip->daddr;
	key.port = udp->dest;
	job = bpf_map_lookup_elem(&jobs, &key);
	if (!job)
		return XDP_PASS;
	bpf_tail_call(ctx, &gather_slots, job->slot);
	/* The slot is empty: its job is leaving. */
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

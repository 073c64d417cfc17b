/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Finding the UDP header of an Ethernet/IPv4 frame in XDP: shared by the
 * dispatcher (dispatch.bpf.c), which routes by the destination it finds,
 * and gather_prog (parse.bpf.h), which claims by the same, so that the
 * dispatcher hands a coordinator exactly the frames it would take.
 */
#ifndef SGC_UDP4_BPF_H
#define SGC_UDP4_BPF_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sgc_common.h"

/*
 * The UDP header of the IPv4 datagram in [@data, @data_end), *@ipp its IP
 * header; NULL for anything else, a later fragment (it has no UDP header)
 * or a frame cut short.
 */
static __always_inline struct udphdr *sgc_udp4(void *data, void *data_end, struct iphdr **ipp)
{
	struct ethhdr *eth = data;
	struct udphdr *udp;
	struct iphdr *ip;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5 ||
	    ip->protocol != IPPROTO_UDP)
		return NULL;
	if (ip->frag_off & bpf_htons(SGC_IP_OFFSET))
		return NULL;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return NULL;
	*ipp = ip;
	return udp;
}

#endif /* SGC_UDP4_BPF_H */

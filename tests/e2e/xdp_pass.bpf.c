/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * An XDP program that is not libsgcoll's and passes every frame:
 * multi_job.sh attaches it to stand for another tool's program on the
 * coordinator's interface, which the eBPF path must refuse to displace.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int other_tool(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

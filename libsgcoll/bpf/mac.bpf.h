/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The job key's MAC in the kernel: the same tag as libsgcoll/src/mac.c
 * (construction next to struct sgc_mac_key in sgcoll/wire.h), computed
 * over a header and a body that sit in map memory (the per-CPU `jobs`
 * record), so every read is a bounded index into a map value.  Only with
 * SGC_BPF_CFG_MAC set at load: without a key the verifier drops it all.
 */
#ifndef SGC_MAC_BPF_H
#define SGC_MAC_BPF_H

#include "maps.bpf.h"

/* The derived key words; the loader writes entry 0 before attaching. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sgc_mac_key);
} mac_key SEC(".maps");

/* The fan-outs' copy of a body, for its NH sums (per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sgc_bpf_event);
} mac_scratch SEC(".maps");

/* SipHash-2-4 of the three words (a, b, len): the tag's last step. */
static __always_inline __u64 sgc_mac_fin(const struct sgc_mac_key *k, __u64 a, __u64 b, __u64 len)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ k->fin[0], v1 = 0x646f72616e646f6dULL ^ k->fin[1];
	__u64 v2 = 0x6c7967656e657261ULL ^ k->fin[0], v3 = 0x7465646279746573ULL ^ k->fin[1];
	__u64 m[4] = { a, b, len, 24ULL << 56 };
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		v3 ^= m[i];
		SGC_SIPROUND(v0, v1, v2, v3);
		SGC_SIPROUND(v0, v1, v2, v3);
		v0 ^= m[i];
	}
	v2 ^= 0xff;
#pragma unroll
	for (i = 0; i < 4; i++)
		SGC_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* One 16-byte block (words w0..w3) against key words from @kw: both NH sums. */
#define SGC_NH_BLOCK(w0, w1, w2, w3, kw, a, b)                                                   \
	do {                                                                                       \
		a += (__u64)(__u32)((w0) + (kw)[0]) * (__u32)((w1) + (kw)[1]);                     \
		a += (__u64)(__u32)((w2) + (kw)[2]) * (__u32)((w3) + (kw)[3]);                     \
		b += (__u64)(__u32)((w0) + (kw)[4]) * (__u32)((w1) + (kw)[5]);                     \
		b += (__u64)(__u32)((w2) + (kw)[6]) * (__u32)((w3) + (kw)[7]);                     \
	} while (0)

/* Both NH sums, as they stand after some words; in: the body's last,
 * partial 16-byte block zero-padded (see sgc_mac_tail()). */
struct sgc_nh {
	__u64 a, b;
	__u32 tail[4];
};

/*
 * The body's part of both NH sums: the @n bytes of @ev->body, whose last
 * partial block the caller put in @out->tail (the verifier cannot follow
 * a bounded variable index into the body there).  A global function, so
 * the verifier walks its loop once, not once per path of every caller;
 * the fan-out calls it once for all clones, whose headers differ.
 * Returns 0, or -1 for a bad argument.
 */
__attribute__((noinline)) int sgc_mac_body(const struct sgc_bpf_event *ev,
					   const struct sgc_mac_key *k, __u32 n, struct sgc_nh *out)
{
	const __u32 *bw, *kw;
	__u64 a = 0, b = 0;
	__u32 i, full;

	if (!ev || !k || !out || n > SGC_MAX_BODY)
		return -1;
	bw = (const __u32 *)ev->body;
	full = n / 16;
	for (i = 0; i < SGC_MAX_BODY / 16; i++) {
		if (i >= full)
			break;
		SGC_NH_BLOCK(bw[4 * i], bw[4 * i + 1], bw[4 * i + 2], bw[4 * i + 3],
			     &k->nh[SGC_HDR_SIZE / 4 + 4 * i], a, b);
	}
	if (n % 16) {
		/* Masked, the block number stays within the key words. */
		kw = &k->nh[SGC_HDR_SIZE / 4 + 4 * (full & 0xff)];
		SGC_NH_BLOCK(out->tail[0], out->tail[1], out->tail[2], out->tail[3], kw, a, b);
	}
	out->a = a;
	out->b = b;
	return 0;
}

/* The tag of header @h (8-aligned copy) over a body of @n bytes whose
 * sums sgc_mac_body() gave. */
static __always_inline __u64 sgc_mac_hdr_tag(const struct sgc_mac_key *k, const void *h, __u32 n,
					    const struct sgc_nh *body)
{
	const __u32 *hw = h;
	__u64 a = body->a, b = body->b;
	int i;

#pragma unroll
	for (i = 0; i < SGC_HDR_SIZE / 16; i++)
		SGC_NH_BLOCK(hw[4 * i], hw[4 * i + 1], hw[4 * i + 2], hw[4 * i + 3], &k->nh[4 * i], a, b);
	return sgc_mac_fin(k, a, b, SGC_HDR_SIZE + n);
}

#endif /* SGC_MAC_BPF_H */

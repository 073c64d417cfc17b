// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The job key's MAC: NH over the datagram, twice (Toeplitz), finished by
 * SipHash-2-4 under a key of its own.  The construction is written down
 * next to struct sgc_mac_key in sgcoll/wire.h; the eBPF programs compute
 * the same in libsgcoll/bpf/mac.bpf.h, and tests/bpf checks that both
 * agree.
 */
#include <string.h>

#include "mac.h"

uint64_t sgc_siphash(const uint64_t k[2], const void *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ k[0], v1 = 0x646f72616e646f6dULL ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ k[0], v3 = 0x7465646279746573ULL ^ k[1];
	const uint8_t *p = in;
	uint64_t m, last = (uint64_t)len << 56;
	size_t i, tail = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);	/* little-endian host (sgc_internal.h) */
		v3 ^= m;
		SGC_SIPROUND(v0, v1, v2, v3);
		SGC_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (i = 0; i < tail; i++)
		last |= (uint64_t)p[len - tail + i] << (8 * i);
	v3 ^= last;
	SGC_SIPROUND(v0, v1, v2, v3);
	SGC_SIPROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	SGC_SIPROUND(v0, v1, v2, v3);
	SGC_SIPROUND(v0, v1, v2, v3);
	SGC_SIPROUND(v0, v1, v2, v3);
	SGC_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

void sgc_mac_derive(const uint8_t key[SGC_KEY_BYTES], struct sgc_mac_key *mk)
{
	uint64_t k[2], in, out;
	unsigned i;

	memcpy(k, key, sizeof(k));
	in = SGC_MAC_FIN_LABEL;
	mk->fin[0] = sgc_siphash(k, &in, 8);
	in = SGC_MAC_FIN_LABEL + 1;
	mk->fin[1] = sgc_siphash(k, &in, 8);
	for (i = 0; i < SGC_MAC_NH_WORDS / 2; i++) {
		in = i;
		out = sgc_siphash(k, &in, 8);
		mk->nh[2 * i] = (uint32_t)out;
		mk->nh[2 * i + 1] = (uint32_t)(out >> 32);
	}
}

/* NH sums of @nw words at @m (a multiple of 4) against key words from @k. */
static void nh2(const uint32_t *m, size_t nw, const uint32_t *k, uint64_t *a, uint64_t *b)
{
	uint64_t sa = 0, sb = 0;
	size_t j;

	for (j = 0; j < nw; j += 2) {
		sa += (uint64_t)(uint32_t)(m[j] + k[j]) * (uint32_t)(m[j + 1] + k[j + 1]);
		sb += (uint64_t)(uint32_t)(m[j] + k[j + 4]) * (uint32_t)(m[j + 1] + k[j + 5]);
	}
	*a += sa;
	*b += sb;
}

uint64_t sgc_mac_tag(const struct sgc_mac_key *mk, const void *hdr, const void *body, size_t n)
{
	uint32_t w[SGC_HDR_SIZE / 4], tail[4] = { 0 };
	uint64_t fin[3] = { 0, 0, SGC_HDR_SIZE + n };
	size_t full = n / 16 * 16, off = SGC_HDR_SIZE / 4;
	const uint8_t *bp = body;
	uint32_t blk[64];
	size_t i, len;

	if (n > SGC_MAX_BODY)	/* callers check; a tag nobody accepts */
		return 0;
	memcpy(w, hdr, sizeof(w));
	nh2(w, SGC_HDR_SIZE / 4, mk->nh, &fin[0], &fin[1]);
	/* Whole 16-byte blocks through an aligned copy, a block of 256 at a time. */
	for (i = 0; i < full; i += len) {
		len = full - i < sizeof(blk) ? full - i : sizeof(blk);
		memcpy(blk, bp + i, len);
		nh2(blk, len / 4, mk->nh + off, &fin[0], &fin[1]);
		off += len / 4;
	}
	if (n > full) {
		memcpy(tail, bp + full, n - full);
		nh2(tail, 4, mk->nh + off, &fin[0], &fin[1]);
	}
	return sgc_siphash((const uint64_t *)mk->fin, fin, sizeof(fin));
}

bool sgc_mac_ok(const struct sgc_mac_key *mk, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t tag;

	/* No body is longer than SGC_MAX_BODY: one that is has no tag
	 * (sgc_mac_tag() would give 0, which anyone can write). */
	if (len < SGC_HDR_SIZE + SGC_MAC_TAG_SIZE ||
	    len > SGC_HDR_SIZE + SGC_MAX_BODY + SGC_MAC_TAG_SIZE)
		return false;
	len -= SGC_MAC_TAG_SIZE;
	memcpy(&tag, p + len, sizeof(tag));
	return sgc_mac_tag(mk, p, p + SGC_HDR_SIZE, len - SGC_HDR_SIZE) == tag;
}

void sgc_mac_seal(const struct sgc_mac_key *mk, void *buf, size_t len)
{
	struct sgc_hdr *h = buf;
	uint8_t *p = buf;
	uint64_t tag;

	h->flags |= SGC_F_MAC;
	tag = sgc_mac_tag(mk, p, p + SGC_HDR_SIZE, len - SGC_HDR_SIZE);
	memcpy(p + len, &tag, sizeof(tag));
}

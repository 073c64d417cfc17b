/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The job key's MAC (see struct sgc_mac_key in sgcoll/wire.h for the
 * construction): deriving the key words, computing a tag, and sealing and
 * opening datagrams.
 */
#ifndef SGC_MAC_H
#define SGC_MAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sgc_internal.h"

#define SGC_KEY_BYTES 16

/* SipHash-2-4 of @len bytes at @in under the 128-bit key @k. */
SGC_HIDDEN uint64_t sgc_siphash(const uint64_t k[2], const void *in, size_t len);

/* Derive the MAC's key words from the job key. */
SGC_HIDDEN void sgc_mac_derive(const uint8_t key[SGC_KEY_BYTES], struct sgc_mac_key *mk);

/* The tag of a header (SGC_HDR_SIZE bytes) and a body of @n bytes. */
SGC_HIDDEN uint64_t sgc_mac_tag(const struct sgc_mac_key *mk, const void *hdr, const void *body,
				size_t n);

/*
 * The datagram @buf of @len bytes (header, body, tag) with SGC_F_MAC set:
 * true when its tag is right.  False for one too short to hold a tag.
 */
SGC_HIDDEN bool sgc_mac_ok(const struct sgc_mac_key *mk, const void *buf, size_t len);

/* Set SGC_F_MAC in the datagram at @buf (header and body, @len bytes) and
 * write its tag after it: @buf must have room for SGC_MAC_TAG_SIZE more. */
SGC_HIDDEN void sgc_mac_seal(const struct sgc_mac_key *mk, void *buf, size_t len);

#endif /* SGC_MAC_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Small helpers every layer uses: bitmaps, the [chunk][rank] maps of who
 * contributed, the kernel's per-rank 64-bit masks, a clock in ns.
 */
#ifndef SGC_UTIL_H
#define SGC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <linux/types.h>
#include <netinet/in.h>

/* @id's time in ns (clock_gettime()), 0 if it cannot be read. */
static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline bool bit_test(const uint8_t *m, size_t i)
{
	return m[i >> 3] & (1u << (i & 7));
}

static inline void bit_set(uint8_t *m, size_t i)
{
	m[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* Bytes of a bitmap of @n bits. */
static inline size_t bitmap_bytes(size_t n)
{
	return (n + 7) / 8;
}

/*
 * A seen map: one bit per (chunk, rank), chunk-major, of a job of @world
 * ranks.  Collectives and queries both keep one at the coordinator.
 */
static inline bool seen_test(const uint8_t *seen, int world, uint32_t ch, int r)
{
	return bit_test(seen, (size_t)ch * (size_t)world + (size_t)r);
}

static inline void seen_set(uint8_t *seen, int world, uint32_t ch, int r)
{
	bit_set(seen, (size_t)ch * (size_t)world + (size_t)r);
}

/* Rank @r's bit in a mask of 64-bit words, as the kernel keeps them
 * (struct sgc_bpf_slot.seen, the ring-buffer record). */
static inline bool rank_mask_test(const __u64 *m, int r)
{
	return (m[r / 64] >> (r % 64)) & 1;
}

/* The same IPv4 address and port. */
static inline bool sockaddr_eq(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

#endif /* SGC_UTIL_H */

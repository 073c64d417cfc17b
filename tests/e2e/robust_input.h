/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What robust_check's ranks contribute, shared with sgc_forge (which
 * forges answers with the true values): the value of rank r at index i in
 * round salt of the job tagged tag.
 */
#ifndef SGC_ROBUST_INPUT_H
#define SGC_ROBUST_INPUT_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t input(unsigned tag, int r, size_t i, unsigned salt)
{
	uint64_t x = (uint64_t)tag * 0xD6E8FEB86659FD93ULL ^ (uint64_t)(r + 1) * 0x9E3779B97F4A7C15ULL ^
		     (uint64_t)i * 0xBF58476D1CE4E5B9ULL ^ salt;

	x ^= x >> 31;
	x *= 0x94D049BB133111EBULL;
	x ^= x >> 29;
	return x;
}

#endif /* SGC_ROBUST_INPUT_H */

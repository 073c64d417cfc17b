/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The job key's MAC (mac.c): SipHash-2-4 against the reference vectors of
 * its paper, tags that change with every bit of header, body and key and
 * with the length, and SGC_KEY / SGC_KEY_FILE as sgc_config_from_env()
 * reads them.  tests/bpf/test_mac_bpf.c checks the eBPF programs' tags
 * against these.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "mac.h"

static const uint8_t key_a[SGC_KEY_BYTES] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
					      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

static void test_siphash_vectors(void **state)
{
	uint64_t k[2] = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };
	uint8_t m[64];
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(m); i++)
		m[i] = (uint8_t)i;
	/* SipHash paper, appendix A, and its vectors.h (lengths 0, 8, 15). */
	assert_true(sgc_siphash(k, m, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(sgc_siphash(k, m, 8) == 0x93f5f5799a932462ULL);
	assert_true(sgc_siphash(k, m, 15) == 0xa129ca6149be45e5ULL);
}

/* A datagram of @n body bytes in @buf, the rest of the buffer garbage. */
static size_t make_dgram(uint8_t *buf, size_t cap, size_t n, unsigned seed)
{
	struct sgc_hdr *h = (struct sgc_hdr *)buf;
	size_t i;

	srand(seed);
	for (i = 0; i < cap; i++)
		buf[i] = (uint8_t)rand();
	memset(h, 0, sizeof(*h));
	h->magic = SGC_WIRE_MAGIC;
	h->version = SGC_WIRE_VERSION;
	h->type = SGC_MSG_CONTRIB;
	h->job_id = 0x1122334455667788ULL;
	h->rank = 3;
	h->count = (uint16_t)n;
	return SGC_HDR_SIZE + n;
}

static void test_seal_and_check(void **state)
{
	static const size_t sizes[] = { 0, 1, 7, 8, 15, 16, 17, 100, 1452, SGC_MAX_BODY - 1,
					SGC_MAX_BODY };
	static struct sgc_mac_key mk, other;
	static uint8_t buf[SGC_HDR_SIZE + SGC_MAX_BODY + SGC_MAC_TAG_SIZE + 64];
	uint8_t key_b[SGC_KEY_BYTES];
	size_t s, len, bit;

	(void)state;
	memcpy(key_b, key_a, sizeof(key_b));
	key_b[15] ^= 1;
	sgc_mac_derive(key_a, &mk);
	sgc_mac_derive(key_b, &other);
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		len = make_dgram(buf, sizeof(buf), sizes[s], (unsigned)s);
		sgc_mac_seal(&mk, buf, len);
		assert_true(((struct sgc_hdr *)buf)->flags & SGC_F_MAC);
		assert_true(sgc_mac_ok(&mk, buf, len + SGC_MAC_TAG_SIZE));
		assert_false(sgc_mac_ok(&other, buf, len + SGC_MAC_TAG_SIZE));
		/* Bytes past the tag are not the datagram's. */
		buf[len + SGC_MAC_TAG_SIZE] ^= 0xff;
		assert_true(sgc_mac_ok(&mk, buf, len + SGC_MAC_TAG_SIZE));
		/* Every bit of header, body and tag counts. */
		for (bit = 0; bit < (len + SGC_MAC_TAG_SIZE) * 8; bit += 1 + (len > 200) * 13) {
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_false(sgc_mac_ok(&mk, buf, len + SGC_MAC_TAG_SIZE));
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		/* Shorter or longer by a byte (the tag moved) fails too. */
		assert_false(sgc_mac_ok(&mk, buf, len + SGC_MAC_TAG_SIZE - 1));
		assert_false(sgc_mac_ok(&mk, buf, len + SGC_MAC_TAG_SIZE + 1));
	}
	assert_false(sgc_mac_ok(&mk, buf, SGC_HDR_SIZE + SGC_MAC_TAG_SIZE - 1));
	/* Longer than any datagram: no tag passes, a zero one included
	 * (fuzz_rx found one that did: bench/results/fuzz-2026-12-05.md). */
	memset(buf + SGC_HDR_SIZE + SGC_MAX_BODY + 1, 0, SGC_MAC_TAG_SIZE);
	assert_false(sgc_mac_ok(&mk, buf, SGC_HDR_SIZE + SGC_MAX_BODY + 1 + SGC_MAC_TAG_SIZE));
}

/* The zero padding to 16 bytes is not a collision: the length is in the
 * tag, so a body and the same body with zeros added differ. */
static void test_length_counts(void **state)
{
	static struct sgc_mac_key mk;
	uint8_t hdr[SGC_HDR_SIZE] = { 0 }, body[32] = { 0 };

	(void)state;
	sgc_mac_derive(key_a, &mk);
	body[0] = 1;
	assert_true(sgc_mac_tag(&mk, hdr, body, 1) != sgc_mac_tag(&mk, hdr, body, 2));
	assert_true(sgc_mac_tag(&mk, hdr, body, 0) != sgc_mac_tag(&mk, hdr, body, 16));
	assert_true(sgc_mac_tag(&mk, hdr, body, 16) != sgc_mac_tag(&mk, hdr, body, 17));
}

static int env_config(struct sgc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->sz = sizeof(*cfg);
	setenv("SGC_RANK", "1", 1);
	setenv("SGC_WORLD_SIZE", "2", 1);
	setenv("SGC_COORDINATOR", "127.0.0.1:7000", 1);
	return sgc_config_from_env(cfg);
}

static void test_env_key(void **state)
{
	char path[] = "/tmp/sgc-test-key-XXXXXX";
	struct sgc_config cfg;
	FILE *f;
	int fd;

	(void)state;
	unsetenv("SGC_KEY");
	unsetenv("SGC_KEY_FILE");
	assert_int_equal(env_config(&cfg), 0);
	assert_null(cfg.key);

	setenv("SGC_KEY", "00112233445566778899AABBccddeeff", 1);
	assert_int_equal(env_config(&cfg), 0);
	assert_non_null(cfg.key);
	assert_memory_equal(cfg.key, key_a, SGC_KEY_BYTES);

	static const char *const bad[] = {
		"0011223344556677", "00112233445566778899aabbccddeeff00", "0011223344556677889aabbccddeeff",
		"g0112233445566778899aabbccddeeff", "0x112233445566778899aabbccddeeff",
		"00112233 445566778899aabbccddeeff", "00000000000000000000000000000000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("SGC_KEY", bad[i], 1);
		assert_int_equal(env_config(&cfg), -EINVAL);
		assert_non_null(strstr(sgc_last_error(), "SGC_KEY"));
		/* The value is a secret: never in the message. */
		assert_null(strstr(sgc_last_error(), bad[i]));
	}

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("  00112233445566778899aabbccddeeff\n", f);
	fclose(f);
	setenv("SGC_KEY_FILE", path, 1);
	assert_int_equal(env_config(&cfg), -EINVAL);	/* both set */
	assert_non_null(strstr(sgc_last_error(), "both"));
	unsetenv("SGC_KEY");
	assert_int_equal(env_config(&cfg), 0);
	assert_memory_equal(cfg.key, key_a, SGC_KEY_BYTES);
	unlink(path);
	assert_int_equal(env_config(&cfg), -ENOENT);
	assert_non_null(strstr(sgc_last_error(), "SGC_KEY_FILE"));
	unsetenv("SGC_KEY_FILE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_seal_and_check),
		cmocka_unit_test(test_length_counts),
		cmocka_unit_test(test_env_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

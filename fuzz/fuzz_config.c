/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer target: configuration from the environment.  The input is a
 * list of NUL-separated values given, in order, to the variables below
 * (an empty value leaves the variable unset); the values for
 * SGC_COORDINATOR_FILE and SGC_KEY_FILE become the content of a memfd the
 * variable names.  Then sgc_config_from_env() and, when it accepts,
 * sgc_cfg_validate() run, and every value goes through sgc_parse_addr()
 * directly.  Checks: an accepted configuration is in range; an address
 * parsed, printed and parsed again is the same address; every failure
 * leaves a message; the job key is taken exactly when SGC_KEY (or the
 * key file) holds 32 hex digits, not all zero, between blanks, and it is
 * those bytes, in cfg.key and in the validated configuration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "sgc_internal.h"

static const char *const vars[] = {
	"SGC_RANK", "SGC_WORLD_SIZE", "SGC_COORDINATOR", "SGC_BIND", "SGC_IFNAME",
	"SGC_ACCEL", "SGC_DELIVERY", "SGC_WAITMODE", "SGC_KEEP_RESPONSES", "SGC_ALLGATHER",
	"SGC_TIMEOUT_MS", "SGC_CUSTOM_BPF", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
	"PMI_RANK", "PMI_SIZE", "SGC_COORDINATOR_FILE", "SGC_KEY", "SGC_KEY_FILE",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

/* The variables that name a file, and the memfd that stands for each. */
static const char *const file_vars[] = { "SGC_COORDINATOR_FILE", "SGC_KEY_FILE" };
static int memfds[2] = { -1, -1 };

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_config: %s: %s\n", what, detail);
	abort();
}

static int file_var(const char *name)
{
	unsigned i;

	for (i = 0; i < sizeof(file_vars) / sizeof(file_vars[0]); i++)
		if (!strcmp(name, file_vars[i]))
			return (int)i;
	return -1;
}

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* A job key as the documentation gives it (32 hex digits, blanks around
 * them, not all zero), written here apart from config.c: 0 and the
 * bytes, or -1. */
static int key_expected(const char *s, uint8_t key[SGC_KEY_BYTES])
{
	const char *end = s + strlen(s);
	uint8_t any = 0;
	unsigned i;

	while (*s && blank(*s))
		s++;
	while (end > s && blank(end[-1]))
		end--;
	if (end - s != 2 * SGC_KEY_BYTES)
		return -1;
	for (i = 0; i < 2 * SGC_KEY_BYTES; i++) {
		char ch = s[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
			ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;

		if (d < 0)
			return -1;
		if (i % 2)
			key[i / 2] |= (uint8_t)d;
		else
			key[i / 2] = (uint8_t)(d << 4);
	}
	for (i = 0; i < SGC_KEY_BYTES; i++)
		any |= key[i];
	return any ? 0 : -1;
}

static void addr_roundtrip(const char *s)
{
	struct sockaddr_in a, b;
	char buf[32];
	int need;

	for (need = 0; need < 2; need++) {
		sgc_err_clear();
		if (sgc_parse_addr(s, &a, need)) {
			if (!sgc_last_error()[0])
				fail("sgc_parse_addr failed without a message", s);
			continue;
		}
		if (need && !a.sin_port)
			fail("address accepted without the required port", s);
		sgc_addr_str(&a, buf, sizeof(buf));
		/* Messages print "any port" as ":0", which is no input form. */
		if (!a.sin_port && strlen(buf) > 2 && !strcmp(buf + strlen(buf) - 2, ":0"))
			buf[strlen(buf) - 2] = 0;
		if (sgc_parse_addr(buf, &b, 0) || a.sin_addr.s_addr != b.sin_addr.s_addr ||
		    a.sin_port != b.sin_port)
			fail("printed address does not parse back", buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *p, *end;
	const char *key_hex = NULL, *key_file = NULL;
	uint8_t want_key[SGC_KEY_BYTES];
	struct sgc_config cfg;
	struct sgc_cfg out;
	int err, key_ok = -1;
	size_t i;

	for (i = 0; i < sizeof(memfds) / sizeof(memfds[0]); i++) {
		if (memfds[i] >= 0)
			continue;
		memfds[i] = memfd_create(file_vars[i], MFD_CLOEXEC);
		/* (A key file others can read makes config.c warn.) */
		if (memfds[i] < 0 || fchmod(memfds[i], 0600))
			fail("memfd_create", strerror(errno));
	}
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = 0;
	end = copy + size;

	for (i = 0, p = copy; i < NVARS; i++) {
		const char *v = p <= end ? p : "";
		int fv = file_var(vars[i]);

		if (*v && !strcmp(vars[i], "SGC_KEY"))
			key_hex = v;
		if (*v && !strcmp(vars[i], "SGC_KEY_FILE"))
			key_file = v;
		if (fv >= 0 && *v) {
			char path[64];

			if (ftruncate(memfds[fv], 0) || pwrite(memfds[fv], v, strlen(v), 0) < 0)
				fail("memfd write", strerror(errno));
			snprintf(path, sizeof(path), "/proc/self/fd/%d", memfds[fv]);
			setenv(vars[i], path, 1);
		} else if (*v) {
			setenv(vars[i], v, 1);
		} else {
			unsetenv(vars[i]);
		}
		if (*v)
			addr_roundtrip(v);
		if (p <= end)
			p += strlen(p) + 1;
	}

	/* The key file is read up to 255 bytes (config.c's buffer). */
	if (key_hex && !key_file) {
		key_ok = key_expected(key_hex, want_key);
	} else if (key_file && !key_hex) {
		char head[256];

		snprintf(head, sizeof(head), "%s", key_file);
		key_ok = key_expected(head, want_key);
	}

	memset(&cfg, 0, sizeof(cfg));
	cfg.sz = sizeof(cfg);
	sgc_err_clear();
	err = sgc_config_from_env(&cfg);
	if (err) {
		if (err >= 0)
			fail("sgc_config_from_env returned a positive error", "");
		if (!sgc_last_error()[0])
			fail("sgc_config_from_env failed without a message", "");
		goto out;
	}
	if (cfg.rank < 0 || cfg.rank >= SGC_MAX_WORLD || cfg.world_size < 1 ||
	    cfg.world_size > SGC_MAX_WORLD || !cfg.coordinator)
		fail("sgc_config_from_env accepted an out-of-range configuration", "");
	/* Both set, or one that is not a key: refused, never half taken. */
	if ((key_hex || key_file) && key_ok)
		fail("sgc_config_from_env accepted a job key that is not one",
		     key_hex ? key_hex : key_file);
	if (!key_hex && !key_file ? cfg.key != NULL :
	    !cfg.key || memcmp(cfg.key, want_key, SGC_KEY_BYTES))
		fail("cfg.key is not the key the environment gives", key_hex ? key_hex : "(file)");
	sgc_err_clear();
	err = sgc_cfg_validate(&cfg, &out);
	if (err) {
		if (!sgc_last_error()[0])
			fail("sgc_cfg_validate failed without a message", "");
		goto out;
	}
	if (out.rank >= out.world || !out.timeout_ms || !out.coord.sin_port ||
	    strnlen(out.ifname, sizeof(out.ifname)) == sizeof(out.ifname) ||
	    strnlen(out.custom_bpf, sizeof(out.custom_bpf)) == sizeof(out.custom_bpf))
		fail("sgc_cfg_validate accepted an out-of-range configuration", "");
	if (out.keyed != (cfg.key != NULL) ||
	    (out.keyed && memcmp(out.key, want_key, SGC_KEY_BYTES)))
		fail("sgc_cfg_validate changed the job key", "");
out:
	free(copy);
	return 0;
}

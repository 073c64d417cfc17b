/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer target: configuration from the environment.  The input is a
 * list of NUL-separated values given, in order, to the variables below
 * (an empty value leaves the variable unset); the value for
 * SGC_COORDINATOR_FILE becomes the content of a memfd the variable names.
 * Then sgc_config_from_env() and, when it accepts, sgc_cfg_validate() run,
 * and every value goes through sgc_parse_addr() directly.  Checks: an
 * accepted configuration is in range; an address parsed, printed and
 * parsed again is the same address; every failure leaves a message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "sgc_internal.h"

static const char *const vars[] = {
	"SGC_RANK", "SGC_WORLD_SIZE", "SGC_COORDINATOR", "SGC_BIND", "SGC_IFNAME",
	"SGC_ACCEL", "SGC_DELIVERY", "SGC_WAITMODE", "SGC_KEEP_RESPONSES", "SGC_ALLGATHER",
	"SGC_TIMEOUT_MS", "SGC_CUSTOM_BPF", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
	"PMI_RANK", "PMI_SIZE", "SGC_COORDINATOR_FILE",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

static int memfd = -1;

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_config: %s: %s\n", what, detail);
	abort();
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
	struct sgc_config cfg;
	struct sgc_cfg out;
	size_t i;
	int err;

	if (memfd < 0) {
		memfd = memfd_create("sgc_fuzz_coord", MFD_CLOEXEC);
		if (memfd < 0)
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

		if (i == NVARS - 1 && *v) {
			char path[64];

			if (ftruncate(memfd, 0) || pwrite(memfd, v, strlen(v), 0) < 0)
				fail("memfd write", strerror(errno));
			snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
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
out:
	free(copy);
	return 0;
}

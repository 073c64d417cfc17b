/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Configuration: address parsing, the environment (with the MPI launcher
 * fallbacks), validation, and the defaults picked from the routing table
 * and interfaces.  Needs only the loopback interface.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <arpa/inet.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "sgc_internal.h"

#define MIN_SZ (offsetof(struct sgc_config, timeout_ms) + sizeof(unsigned))

static const char *const env_vars[] = {
	"SGC_RANK", "SGC_WORLD_SIZE", "SGC_COORDINATOR", "SGC_BIND", "SGC_IFNAME",
	"SGC_ACCEL", "SGC_TIMEOUT_MS", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
	"PMI_RANK", "PMI_SIZE", "SGC_DELIVERY", "SGC_WAITMODE", "SGC_KEEP_RESPONSES",
	"SGC_ALLGATHER", "SGC_COORDINATOR_FILE", "SGC_RTO_US", "SGC_GSO", "SGC_FANOUT_CPUS",
	"SGC_KERNEL_FANOUT", "SGC_ALGO", "SGC_PORT", "RANK", "WORLD_SIZE", "MASTER_ADDR",
	"MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST",
	"SLURM_JOB_ID", "SLURM_STEP_ID",
};

static int clear_env(void **state)
{
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
	sgc_err_clear();
	(void)state;
	return 0;
}

/* The usual three variables of a worker. */
static void set_basic_env(void)
{
	setenv("SGC_RANK", "1", 1);
	setenv("SGC_WORLD_SIZE", "4", 1);
	setenv("SGC_COORDINATOR", "127.0.0.1:5000", 1);
}

#define assert_err_mentions(rc, code, ...)					\
	do {									\
		const char *const _want[] = { __VA_ARGS__ };			\
		assert_int_equal((rc), (code));					\
		for (size_t _i = 0; _i < sizeof(_want) / sizeof(_want[0]); _i++) \
			if (!strstr(sgc_last_error(), _want[_i])) {		\
				print_error("\"%s\" not in \"%s\"\n", _want[_i],	\
					    sgc_last_error());			\
				fail();						\
			}							\
	} while (0)

static struct sgc_config base_cfg(int rank, int world)
{
	struct sgc_config c = {
		.sz = sizeof(c), .rank = rank, .world_size = world,
		.coordinator = "127.0.0.1:5000",
	};

	return c;
}

/* The last warning the library printed. */
static char warned[512];

static int capture_warn(enum sgc_print_level level, const char *fmt, va_list ap)
{
	if (level == SGC_WARN)
		vsnprintf(warned, sizeof(warned), fmt, ap);
	return 0;
}

/* ---- sgc_parse_addr / sgc_addr_str ---- */

static void test_parse_good(void **state)
{
	static const struct {
		const char *s;
		int need_port;
		const char *ip;
		unsigned port;
	} good[] = {
		{ "10.0.0.1:5000", 1, "10.0.0.1", 5000 },
		{ "10.0.0.1:5000", 0, "10.0.0.1", 5000 },
		{ "10.0.0.1", 0, "10.0.0.1", 0 },
		{ "0.0.0.0", 0, "0.0.0.0", 0 },
		{ "255.255.255.255:65535", 1, "255.255.255.255", 65535 },
		{ "1.2.3.4:1", 1, "1.2.3.4", 1 },
		{ "192.168.100.200:80", 1, "192.168.100.200", 80 },
		{ "0.10.100.9:10", 1, "0.10.100.9", 10 },
	};
	struct sockaddr_in a;
	char buf[32], want[32];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&a, 0xff, sizeof(a));
		if (sgc_parse_addr(good[i].s, &a, good[i].need_port)) {
			print_error("%s: %s\n", good[i].s, sgc_last_error());
			fail();
		}
		assert_int_equal(a.sin_family, AF_INET);
		assert_int_equal(ntohs(a.sin_port), good[i].port);
		assert_string_equal(inet_ntoa(a.sin_addr), good[i].ip);
		snprintf(want, sizeof(want), "%s:%u", good[i].ip, good[i].port);
		assert_string_equal(sgc_addr_str(&a, buf, sizeof(buf)), want);
		assert_ptr_equal(sgc_addr_str(&a, buf, sizeof(buf)), buf);
	}
	(void)state;
}

static void test_parse_bad(void **state)
{
	static const struct {
		const char *s;
		int need_port;
	} bad[] = {
		{ "", 0 }, { "1.2.3", 0 }, { "1.2.3.4.5", 0 }, { "256.1.1.1", 0 },
		{ "1.2.3.256", 0 }, { "1.2.3.4:0", 0 }, { "1.2.3.4:65536", 1 },
		{ "1.2.3.4:", 1 }, { " 1.2.3.4", 0 }, { "1.2.3.4 ", 0 },
		{ "1.2.3.4:80 ", 1 }, { "1.2.3.4: 80", 1 }, { "a.b.c.d", 0 },
		{ "1..2.3", 0 }, { "01.2.3.4", 0 }, { "1.2.3.4:+80", 1 },
		{ "1.2.3.-4", 0 }, { "1.2.3.4:99999999999", 1 }, { "1234.1.1.1", 0 },
		{ "1.2.3.4", 1 }, { "localhost:80", 1 }, { "1.2.3.4:80:90", 1 },
		{ "1.2.3.4:0080", 1 }, { "0x7f.0.0.1", 0 }, { "1.2.3.4/24", 0 },
		{ "::1", 0 }, { "1.2.3.4:-1", 1 }, { ".1.2.3", 0 }, { "1.2.3.", 0 },
	};
	struct sockaddr_in a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sgc_err_clear();
		if (sgc_parse_addr(bad[i].s, &a, bad[i].need_port) != -EINVAL) {
			print_error("\"%s\" was accepted\n", bad[i].s);
			fail();
		}
		/* The message quotes the input and shows the expected form. */
		if (*bad[i].s)
			assert_non_null(strstr(sgc_last_error(), bad[i].s));
		assert_non_null(strstr(sgc_last_error(), "a.b.c.d"));
	}
	assert_int_equal(sgc_parse_addr(NULL, &a, 0), -EINVAL);
	assert_err_mentions(sgc_parse_addr("1.2.3.4", &a, 1), -EINVAL, "port");
	assert_err_mentions(sgc_parse_addr("1.2.3.300", &a, 0), -EINVAL, "300", "255");
	assert_err_mentions(sgc_parse_addr("1.2.3.4:70000", &a, 0), -EINVAL, "65535");
	(void)state;
}

/* ---- sgc_resolve_addr: IPv4 addresses and host names ---- */

static void test_resolve_good(void **state)
{
	static const struct {
		const char *s, *want;
	} good[] = {
		{ "10.0.0.1:5000", "10.0.0.1:5000" },
		{ "localhost:5000", "127.0.0.1:5000" },
		{ "LocalHost:65535", "127.0.0.1:65535" },
	};
	struct sockaddr_in a;
	char buf[32], name[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&a, 0xff, sizeof(a));
		if (sgc_resolve_addr(good[i].s, &a)) {
			print_error("%s: %s\n", good[i].s, sgc_last_error());
			fail();
		}
		assert_int_equal(a.sin_family, AF_INET);
		assert_string_equal(sgc_addr_str(&a, buf, sizeof(buf)), good[i].want);
	}
	/* This host's own name, as a launcher on it would give it. */
	assert_int_equal(gethostname(name, 256), 0);
	strcat(name, ":7000");
	if (sgc_resolve_addr(name, &a))
		print_message("(this host's name %s does not resolve here: %s)\n", name,
			      sgc_last_error());
	else
		assert_int_equal(ntohs(a.sin_port), 7000);
	(void)state;
}

static void test_resolve_bad(void **state)
{
	static const struct {
		const char *s, *mention;
	} bad[] = {
		{ "", "empty" }, { "localhost", "port" }, { "10.0.0.1", "port" },
		{ "localhost:", "port" }, { "localhost:0", "port" }, { "localhost:65536", "port" },
		{ "localhost:http", "port" }, { "localhost:080", "port" }, { "localhost: 80", "port" },
		{ ":80", "host name" }, { "1.2.3.256:80", "255" }, { "1.2.3:80", "four" },
		{ "127.1:80", "a.b.c.d" }, { "0x7f.0.0.1:80", "a.b.c.d" }, { "::1:80", "IPv4" },
		{ "1.2.3.4:80:90", "':'" }, { "bad host:80", "bad host" }, { "a..b:80", "a..b" },
		{ ".a:80", ".a" }, { "-a:80", "-a" }, { "a-.b:80", "a-.b" }, { "a/b:80", "a/b" },
		{ "no-such-host.invalid:80", "no-such-host.invalid" },
	};
	char label[80], longname[300];
	struct sockaddr_in a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sgc_err_clear();
		if (sgc_resolve_addr(bad[i].s, &a) != -EINVAL) {
			print_error("\"%s\" was accepted (or failed otherwise): %s\n", bad[i].s,
				    sgc_last_error());
			fail();
		}
		if (!strstr(sgc_last_error(), bad[i].mention)) {
			print_error("\"%s\": \"%s\" not in \"%s\"\n", bad[i].s, bad[i].mention,
				    sgc_last_error());
			fail();
		}
	}
	/* A name that does not resolve is named, and so is what to do. */
	assert_err_mentions(sgc_resolve_addr("no-such-host.invalid:80", &a), -EINVAL,
			    "cannot resolve", "\"no-such-host.invalid\"", "IPv4 address");
	/* Labels of at most 63 characters, names of at most 253. */
	memset(label, 'a', 64);
	strcpy(label + 64, ":80");
	assert_err_mentions(sgc_resolve_addr(label, &a), -EINVAL, "host name");
	for (size_t i = 0; i < 255; i++)	/* "a.a.a ... a": 255 characters */
		longname[i] = i % 2 ? '.' : 'a';
	strcpy(longname + 255, ":80");
	assert_err_mentions(sgc_resolve_addr(longname, &a), -EINVAL, "host name");
	assert_int_equal(sgc_resolve_addr(NULL, &a), -EINVAL);
	(void)state;
}

/* ---- sgc_hostlist_first: Slurm's host lists ---- */

static void test_hostlist(void **state)
{
	static const struct {
		const char *list, *first;
	} good[] = {
		{ "node[01-04,07],gpu1", "node01" }, { "gpu1", "gpu1" }, { "gpu1,gpu2", "gpu1" },
		{ "n[7,1-3]", "n7" }, { "rack[1-2]-n[3,5]", "rack1-n3" }, { "n[001-100]", "n001" },
		{ "n[1]", "n1" }, { "a.b.c", "a.b.c" }, { "[5-6]x", "5x" }, { "n[0-1]-ib", "n0-ib" },
		{ "localhost", "localhost" }, { "n1,n[2-3", "n1" },	/* only the first is read */
	};
	static const char *const bad[] = {
		",a", "n[", "n[]", "n[a-b]", "n[1-]", "n[-1]", "n[1,]", "n[,1]", "n[1-2-3]",
		"n]", "n[1[2]]", "n[1,,2]", "n[1 ]", "[]",
	};
	char host[64], longlist[200];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(host, 'x', sizeof(host));
		if (sgc_hostlist_first(good[i].list, host, sizeof(host))) {
			print_error("%s: %s\n", good[i].list, sgc_last_error());
			fail();
		}
		assert_string_equal(host, good[i].first);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sgc_err_clear();
		if (sgc_hostlist_first(bad[i], host, sizeof(host)) != -EINVAL) {
			print_error("\"%s\" was accepted as \"%s\"\n", bad[i], host);
			fail();
		}
		assert_non_null(strstr(sgc_last_error(), bad[i]));
		assert_non_null(strstr(sgc_last_error(), "node[01-04,07],gpu1"));
	}
	assert_err_mentions(sgc_hostlist_first("", host, sizeof(host)), -EINVAL, "empty");
	assert_int_equal(sgc_hostlist_first(NULL, host, sizeof(host)), -EINVAL);
	/* A first host longer than the buffer: refused, not cut short. */
	memset(longlist, 'n', 100);
	strcpy(longlist + 100, "[1-2]");
	assert_err_mentions(sgc_hostlist_first(longlist, host, sizeof(host)), -EINVAL, "longer");
	memset(longlist, 'n', 62);
	strcpy(longlist + 62, "[10-11]");	/* 64 characters with the number */
	assert_err_mentions(sgc_hostlist_first(longlist, host, sizeof(host)), -EINVAL, "longer");
	longlist[61] = '\0';
	strcat(longlist, "[10]");		/* 63: fits */
	assert_int_equal(sgc_hostlist_first(longlist, host, sizeof(host)), 0);
	assert_int_equal(strlen(host), 63);
	(void)state;
}

/* ---- sgc_config_from_env ---- */

/* SGC_ENV_NO_JOB (sgc_init_mpi): rank and size are the caller's, the
 * coordinator only what the user named. */
static void test_env_no_job(void **state)
{
	struct sgc_config c = { .sz = sizeof(c), .rank = 3, .world_size = 9 };

	/* No rank, size or coordinator anywhere: not an error. */
	setenv("SGC_ACCEL", "off", 1);
	assert_int_equal(sgc_config_from_env_flags(&c, SGC_ENV_NO_JOB), 0);
	assert_int_equal(c.rank, 3);
	assert_int_equal(c.world_size, 9);
	assert_null(c.coordinator);
	assert_int_equal(c.accel, SGC_ACCEL_OFF);
	/* ... and the launchers' variables are not read. */
	setenv("SGC_RANK", "1", 1);
	setenv("SGC_WORLD_SIZE", "4", 1);
	setenv("MASTER_ADDR", "10.1.1.1", 1);
	setenv("MASTER_PORT", "29500", 1);
	setenv("SLURM_STEP_NODELIST", "node[1-2]", 1);
	assert_int_equal(sgc_config_from_env_flags(&c, SGC_ENV_NO_JOB), 0);
	assert_int_equal(c.rank, 3);
	assert_int_equal(c.world_size, 9);
	assert_null(c.coordinator);
	/* One the user named counts, and is checked. */
	setenv("SGC_COORDINATOR", "127.0.0.1:5000", 1);
	assert_int_equal(sgc_config_from_env_flags(&c, SGC_ENV_NO_JOB), 0);
	assert_string_equal(c.coordinator, "127.0.0.1:5000");
	setenv("SGC_COORDINATOR", "127.0.0.1", 1);
	assert_err_mentions(sgc_config_from_env_flags(&c, SGC_ENV_NO_JOB), -EINVAL,
			    "SGC_COORDINATOR", "port");
	unsetenv("SGC_COORDINATOR");
	setenv("SGC_COORDINATOR_FILE", "/nonexistent/sgc-coord", 1);
	assert_err_mentions(sgc_config_from_env_flags(&c, SGC_ENV_NO_JOB), -ENOENT,
			    "SGC_COORDINATOR_FILE");
	unsetenv("SGC_COORDINATOR_FILE");
	/* The rest of the environment is still checked. */
	setenv("SGC_ACCEL", "fast", 1);
	assert_err_mentions(sgc_config_from_env_flags(&c, SGC_ENV_NO_JOB), -EINVAL, "SGC_ACCEL");
	setenv("SGC_ACCEL", "off", 1);
	assert_err_mentions(sgc_config_from_env_flags(&c, 0x6), -EINVAL, "unknown flags", "0x6");
	/* Flags 0: sgc_config_from_env(), rank and size from the environment. */
	setenv("SGC_COORDINATOR", "127.0.0.1:5000", 1);
	assert_int_equal(sgc_config_from_env_flags(&c, 0), 0);
	assert_int_equal(c.rank, 1);
	assert_int_equal(c.world_size, 4);
	(void)state;
}

static void test_env_basic(void **state)
{
	struct sgc_config c = { .sz = sizeof(c) };

	memset(&c, 0xff, sizeof(c));
	set_basic_env();
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.sz, sizeof(c));
	assert_int_equal(c.rank, 1);
	assert_int_equal(c.world_size, 4);
	assert_string_equal(c.coordinator, "127.0.0.1:5000");
	assert_ptr_equal(c.coordinator, getenv("SGC_COORDINATOR"));
	assert_null(c.bind_addr);
	assert_null(c.ifname);
	assert_int_equal(c.accel, SGC_ACCEL_AUTO);
	assert_int_equal(c.timeout_ms, 0);

	setenv("SGC_BIND", "127.0.0.1:6000", 1);
	setenv("SGC_IFNAME", "lo", 1);
	setenv("SGC_ACCEL", "off", 1);
	setenv("SGC_TIMEOUT_MS", "2500", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.bind_addr, "127.0.0.1:6000");
	assert_string_equal(c.ifname, "lo");
	assert_int_equal(c.accel, SGC_ACCEL_OFF);
	assert_int_equal(c.timeout_ms, 2500);

	/* empty optional variables count as unset */
	setenv("SGC_BIND", "", 1);
	setenv("SGC_IFNAME", "", 1);
	setenv("SGC_ACCEL", "", 1);
	setenv("SGC_TIMEOUT_MS", "", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_null(c.bind_addr);
	assert_null(c.ifname);
	assert_int_equal(c.accel, SGC_ACCEL_AUTO);
	assert_int_equal(c.timeout_ms, 0);
	(void)state;
}

static void test_env_fallbacks(void **state)
{
	struct sgc_config c = { .sz = sizeof(c) };

	setenv("SGC_COORDINATOR", "127.0.0.1:5000", 1);

	/* Open MPI's variables */
	setenv("OMPI_COMM_WORLD_RANK", "2", 1);
	setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
	setenv("PMI_RANK", "5", 1);
	setenv("PMI_SIZE", "8", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.rank, 2);
	assert_int_equal(c.world_size, 3);

	/* PMI's when Open MPI's are absent */
	unsetenv("OMPI_COMM_WORLD_RANK");
	unsetenv("OMPI_COMM_WORLD_SIZE");
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.rank, 5);
	assert_int_equal(c.world_size, 8);

	/* SGC_* wins over both, each variable on its own */
	setenv("SGC_RANK", "0", 1);
	setenv("OMPI_COMM_WORLD_SIZE", "6", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.rank, 0);
	assert_int_equal(c.world_size, 6);
	setenv("SGC_WORLD_SIZE", "7", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.world_size, 7);

	/* a bad fallback value is named as such */
	unsetenv("SGC_RANK");
	setenv("OMPI_COMM_WORLD_RANK", "x1", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "OMPI_COMM_WORLD_RANK", "x1");
	unsetenv("OMPI_COMM_WORLD_RANK");
	setenv("PMI_RANK", "-2", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "PMI_RANK", "-2");
	(void)state;
}

/* torchrun: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT alone. */
static void test_env_torchrun(void **state)
{
	struct sgc_config c = { .sz = sizeof(c) };

	setenv("RANK", "2", 1);
	setenv("WORLD_SIZE", "3", 1);
	setenv("MASTER_ADDR", "localhost", 1);
	setenv("MASTER_PORT", "29500", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.rank, 2);
	assert_int_equal(c.world_size, 3);
	/* the port after torch's own store */
	assert_string_equal(c.coordinator, "localhost:29501");
	setenv("MASTER_ADDR", "10.1.2.3", 1);
	setenv("MASTER_PORT", "65534", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.coordinator, "10.1.2.3:65535");
	/* SGC_PORT instead of MASTER_PORT + 1; then MASTER_PORT need not be set */
	setenv("SGC_PORT", "7000", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.coordinator, "10.1.2.3:7000");
	unsetenv("MASTER_PORT");
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.coordinator, "10.1.2.3:7000");
	unsetenv("SGC_PORT");
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "MASTER_PORT", "SGC_PORT");

	/* what is wrong is named by its variable */
	setenv("MASTER_PORT", "65535", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "MASTER_PORT=\"65535\"", "SGC_PORT");
	setenv("MASTER_PORT", "0", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "MASTER_PORT=\"0\"");
	setenv("MASTER_PORT", "29500x", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "MASTER_PORT", "29500x");
	setenv("MASTER_PORT", "29500", 1);
	setenv("SGC_PORT", "65536", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SGC_PORT", "65536");
	setenv("SGC_PORT", "0", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SGC_PORT", "0");
	unsetenv("SGC_PORT");
	setenv("MASTER_ADDR", "no-such-host.invalid", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "MASTER_ADDR", "no-such-host.invalid",
			    "resolve");
	setenv("MASTER_ADDR", "node 1", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "MASTER_ADDR", "node 1");
	setenv("MASTER_ADDR", "localhost", 1);
	setenv("RANK", "x", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "RANK=\"x\"");
	setenv("RANK", "3", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);	/* rank >= size: sgc_init says so */
	setenv("WORLD_SIZE", "0", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "WORLD_SIZE=\"0\"");
	(void)state;
}

/* srun: SLURM_PROCID, SLURM_NTASKS and the first host of the step. */
static void test_env_slurm(void **state)
{
	struct sgc_config c = { .sz = sizeof(c) };

	setenv("SLURM_PROCID", "5", 1);
	setenv("SLURM_NTASKS", "8", 1);
	setenv("SLURM_STEP_NODELIST", "localhost,node[2-3]", 1);
	setenv("SLURM_JOB_NODELIST", "no-such-host[1-4].invalid", 1);
	setenv("SLURM_JOB_ID", "123456", 1);
	setenv("SLURM_STEP_ID", "3", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.rank, 5);
	assert_int_equal(c.world_size, 8);
	/* the step's first host; port 20000 + 10 * (job mod 1000) + step mod 10 */
	assert_string_equal(c.coordinator, "localhost:24563");
	setenv("SLURM_JOB_ID", "999", 1);
	setenv("SLURM_STEP_ID", "4294967294", 1);	/* the batch step */
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.coordinator, "localhost:29994");
	unsetenv("SLURM_JOB_ID");
	unsetenv("SLURM_STEP_ID");
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.coordinator, "localhost:20000");
	setenv("SGC_PORT", "7100", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.coordinator, "localhost:7100");

	/* the job's list when there is no step's */
	unsetenv("SLURM_STEP_NODELIST");
	setenv("SLURM_JOB_NODELIST", "localhost", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.coordinator, "localhost:7100");
	setenv("SLURM_JOB_NODELIST", "no-such-host[07-09].invalid,x", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SLURM_JOB_NODELIST",
			    "no-such-host07.invalid", "resolve");

	/* a bad list or id is named by its variable */
	setenv("SLURM_STEP_NODELIST", "node[01-", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SLURM_STEP_NODELIST", "node[01-");
	setenv("SLURM_STEP_NODELIST", "localhost", 1);
	unsetenv("SGC_PORT");
	setenv("SLURM_JOB_ID", "12a", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SLURM_JOB_ID", "12a");
	unsetenv("SLURM_JOB_ID");
	setenv("SLURM_STEP_ID", "-1", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SLURM_STEP_ID", "-1");
	unsetenv("SLURM_STEP_ID");
	setenv("SLURM_PROCID", "4096", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SLURM_PROCID", "4096");
	setenv("SLURM_PROCID", "0", 1);
	setenv("SLURM_NTASKS", "", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SLURM_NTASKS", "SGC_WORLD_SIZE");
	(void)state;
}

/*
 * Each of rank, world size and coordinator comes from the first launcher
 * that gives it: SGC_*, Open MPI, PMI, torchrun, Slurm (for the
 * coordinator: SGC_COORDINATOR, SGC_COORDINATOR_FILE, MASTER_ADDR,
 * SLURM_STEP_NODELIST, SLURM_JOB_NODELIST).
 */
static void test_env_precedence(void **state)
{
	static const struct {
		const char *rank_var, *size_var, *rank, *size;
	} order[] = {
		{ "SGC_RANK", "SGC_WORLD_SIZE", "1", "11" },
		{ "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "2", "12" },
		{ "PMI_RANK", "PMI_SIZE", "3", "13" },
		{ "RANK", "WORLD_SIZE", "4", "14" },
		{ "SLURM_PROCID", "SLURM_NTASKS", "5", "15" },
	};
	static const struct {
		const char *var, *val, *coordinator;
	} coord[] = {
		{ "SGC_COORDINATOR", "127.0.0.9:9", "127.0.0.9:9" },
		{ "SGC_COORDINATOR_FILE", NULL, "127.0.0.8:8" },
		{ "MASTER_ADDR", "127.0.0.7", "127.0.0.7:7001" },
		{ "SLURM_STEP_NODELIST", "localhost", "localhost:20000" },
		{ "SLURM_JOB_NODELIST", "localhost,x", "localhost:20000" },
	};
	char path[] = "/tmp/sgc-coord-XXXXXX";
	struct sgc_config c = { .sz = sizeof(c) };
	size_t n = sizeof(order) / sizeof(order[0]), i;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "127.0.0.8:8\n", 12), 12);
	close(fd);
	for (i = 0; i < n; i++) {
		setenv(order[i].rank_var, order[i].rank, 1);
		setenv(order[i].size_var, order[i].size, 1);
	}
	setenv("MASTER_PORT", "7000", 1);
	for (i = 0; i < sizeof(coord) / sizeof(coord[0]); i++)
		setenv(coord[i].var, coord[i].val ? coord[i].val : path, 1);

	/* Take the launchers away one by one: the next one speaks. */
	for (i = 0; i < n; i++) {
		assert_int_equal(sgc_config_from_env(&c), 0);
		assert_int_equal(c.rank, atoi(order[i].rank));
		assert_int_equal(c.world_size, 11);
		unsetenv(order[i].rank_var);
	}
	for (i = 0; i < n; i++) {
		setenv(order[i].rank_var, order[i].rank, 1);
		assert_int_equal(sgc_config_from_env(&c), 0);
		assert_int_equal(c.world_size, atoi(order[i].size));
		unsetenv(order[i].size_var);
	}
	/* (rank and world size each on their own: SGC_WORLD_SIZE and RANK) */
	setenv("SGC_WORLD_SIZE", "11", 1);
	for (i = 0; i < n; i++)
		unsetenv(order[i].rank_var);
	setenv("RANK", "4", 1);
	for (i = 0; i < sizeof(coord) / sizeof(coord[0]); i++) {
		assert_int_equal(sgc_config_from_env(&c), 0);
		assert_int_equal(c.rank, 4);
		assert_int_equal(c.world_size, 11);
		assert_string_equal(c.coordinator, coord[i].coordinator);
		unsetenv(coord[i].var);
	}
	/* none left: the message says where the address could come from */
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SGC_COORDINATOR", "MASTER_ADDR",
			    "SLURM_STEP_NODELIST");
	unlink(path);
	(void)state;
}

/* A coordinator by name: resolved when validated, and for rank 0 a
 * warning when the name is this host's loopback. */
static void test_validate_host_name(void **state)
{
	sgc_print_fn old = sgc_set_print(capture_warn);
	struct sgc_config c = base_cfg(1, 2);
	struct sgc_cfg out;
	char buf[32], name[300];

	c.coordinator = "localhost:5000";
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(sgc_addr_str(&out.coord, buf, sizeof(buf)), "127.0.0.1:5000");
	assert_string_equal(sgc_addr_str(&out.bind, buf, sizeof(buf)), "127.0.0.1:0");
	c.coordinator = "no-such-host.invalid:5000";
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "coordinator",
			    "no-such-host.invalid");

	/* "localhost" and addresses are meant as written: no warning */
	warned[0] = 0;
	c = base_cfg(0, 2);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	c.coordinator = "localhost:5000";
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(warned, "");
	/* another name for a loopback address, on rank 0 of several */
	assert_int_equal(gethostname(name, 256), 0);
	strcat(name, ":5000");
	c.coordinator = name;
	if (!sgc_cfg_validate(&c, &out) && (ntohl(out.coord.sin_addr.s_addr) >> 24) == 127) {
		assert_non_null(strstr(warned, "loopback"));
		assert_non_null(strstr(warned, name));
		warned[0] = 0;
		c.world_size = 1;	/* alone: nobody to reach it */
		assert_int_equal(sgc_cfg_validate(&c, &out), 0);
		assert_string_equal(warned, "");
	} else {
		print_message("(this host's name does not resolve to a loopback address: "
			      "no warning to check)\n");
	}
	sgc_set_print(old);
	(void)state;
}

static void test_env_errors(void **state)
{
	static const struct {
		const char *var, *val, *mention;
	} bad[] = {
		{ "SGC_RANK", "abc", "abc" },
		{ "SGC_RANK", "-1", "-1" },
		{ "SGC_RANK", "+1", "+1" },
		{ "SGC_RANK", " 1", " 1" },
		{ "SGC_RANK", "1x", "1x" },
		{ "SGC_RANK", "4096", "4096" },
		{ "SGC_RANK", "99999999999999999999", "9999" },
		{ "SGC_WORLD_SIZE", "0", "0" },
		{ "SGC_WORLD_SIZE", "4097", "4097" },
		{ "SGC_WORLD_SIZE", "four", "four" },
		{ "SGC_COORDINATOR", "127.0.0.1", "port" },
		{ "SGC_COORDINATOR", "no-such-host.invalid:5000", "no-such-host.invalid" },
		{ "SGC_COORDINATOR", "bad host:5000", "bad host" },
		{ "SGC_COORDINATOR", "localhost:0", "localhost:0" },
		{ "SGC_BIND", "127.0.0.1:99999", "99999" },
		{ "SGC_BIND", "eth0", "eth0" },
		{ "SGC_ACCEL", "fast", "fast" },
		{ "SGC_ACCEL", "ebpf ", "ebpf " },
		{ "SGC_ACCEL", "1", "1" },
		{ "SGC_TIMEOUT_MS", "abc", "abc" },
		{ "SGC_TIMEOUT_MS", "3600001", "3600001" },
		{ "SGC_TIMEOUT_MS", "-5", "-5" },
		{ "SGC_TIMEOUT_MS", "10s", "10s" },
		{ "SGC_TIMEOUT_MS", "1e3", "1e3" },
		{ "SGC_DELIVERY", "ring", "ring" },
		{ "SGC_WAITMODE", "spin", "spin" },
		{ "SGC_ALGO", "ring", "ring" },
		{ "SGC_KEEP_RESPONSES", "yes", "SGC_KEEP_RESPONSES" },
		{ "SGC_ALLGATHER", "2", "SGC_ALLGATHER" },
		{ "SGC_KERNEL_FANOUT", "2", "SGC_KERNEL_FANOUT" },
		{ "SGC_KERNEL_FANOUT", "no", "SGC_KERNEL_FANOUT" },
	};
	struct sgc_config c = { .sz = sizeof(c) };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env(NULL);
		set_basic_env();
		setenv(bad[i].var, bad[i].val, 1);
		assert_err_mentions(sgc_config_from_env(&c), -EINVAL, bad[i].var, bad[i].mention);
	}

	/* missing required variables: the message says what to set */
	clear_env(NULL);
	set_basic_env();
	unsetenv("SGC_RANK");
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SGC_RANK", "OMPI_COMM_WORLD_RANK",
			    "PMI_RANK");
	setenv("SGC_RANK", "", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SGC_RANK");
	set_basic_env();
	unsetenv("SGC_WORLD_SIZE");
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SGC_WORLD_SIZE",
			    "OMPI_COMM_WORLD_SIZE", "PMI_SIZE");
	set_basic_env();
	unsetenv("SGC_COORDINATOR");
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SGC_COORDINATOR");

	assert_int_equal(sgc_config_from_env(NULL), -EINVAL);
	(void)state;
}

static void test_env_edges(void **state)
{
	static const struct {
		const char *val;
		enum sgc_accel accel;
	} accels[] = {
		{ "auto", SGC_ACCEL_AUTO }, { "AUTO", SGC_ACCEL_AUTO },
		{ "ebpf", SGC_ACCEL_EBPF }, { "eBPF", SGC_ACCEL_EBPF },
		{ "off", SGC_ACCEL_OFF }, { "Off", SGC_ACCEL_OFF },
	};
	struct sgc_config c = { .sz = sizeof(c) };

	set_basic_env();
	for (size_t i = 0; i < sizeof(accels) / sizeof(accels[0]); i++) {
		setenv("SGC_ACCEL", accels[i].val, 1);
		assert_int_equal(sgc_config_from_env(&c), 0);
		assert_int_equal(c.accel, accels[i].accel);
	}
	setenv("SGC_TIMEOUT_MS", "3600000", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.timeout_ms, 3600000);
	setenv("SGC_TIMEOUT_MS", "0", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.timeout_ms, 0);
	setenv("SGC_RANK", "4095", 1);
	setenv("SGC_WORLD_SIZE", "4096", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.rank, 4095);
	assert_int_equal(c.world_size, 4096);
	(void)state;
}

/*
 * sgc_config_from_env() writes no more than cfg->sz: an sz below the first
 * struct's size (0: never set) fails and writes nothing, a bigger one gets
 * this library's struct and nothing past it.
 */
static void test_env_sz(void **state)
{
	static const size_t too_small[] = { 0, 1, sizeof(size_t), MIN_SZ - 1 };
	struct {
		struct sgc_config c;
		unsigned char after[64];
	} buf;
	const unsigned char *b = (const unsigned char *)&buf;
	size_t i, k;

	set_basic_env();
	for (i = 0; i < sizeof(too_small) / sizeof(too_small[0]); i++) {
		memset(&buf, 0xa5, sizeof(buf));
		buf.c.sz = too_small[i];
		assert_err_mentions(sgc_config_from_env(&buf.c), -EINVAL,
				    "sizeof(struct sgc_config)");
		assert_int_equal(buf.c.sz, too_small[i]);
		for (k = sizeof(size_t); k < sizeof(buf); k++)
			if (b[k] != 0xa5)
				fail_msg("sz %zu: byte %zu was written", too_small[i], k);
	}

	/* Between the first and this library's size: exactly sz bytes. */
	memset(&buf, 0xa5, sizeof(buf));
	buf.c.sz = MIN_SZ + 4;
	assert_int_equal(sgc_config_from_env(&buf.c), 0);
	assert_int_equal(buf.c.sz, MIN_SZ + 4);
	assert_int_equal(buf.c.rank, 1);
	for (k = MIN_SZ + 4; k < sizeof(buf); k++)
		if (b[k] != 0xa5)
			fail_msg("sz %zu: byte %zu was written", MIN_SZ + 4, k);

	/* A newer caller's bigger struct: this library's part, sz says so. */
	memset(&buf, 0xa5, sizeof(buf));
	buf.c.sz = sizeof(buf);
	assert_int_equal(sgc_config_from_env(&buf.c), 0);
	assert_int_equal(buf.c.sz, sizeof(buf.c));
	assert_int_equal(buf.c.world_size, 4);
	for (k = 0; k < sizeof(buf.after); k++)
		assert_int_equal(buf.after[k], 0xa5);
	(void)state;
}

/* ---- sgc_cfg_validate ---- */

static void test_validate_ranges(void **state)
{
	static const struct {
		int rank, world;
		const char *mention;
	} bad[] = {
		{ 0, 0, "world size 0" }, { 0, -1, "world size -1" },
		{ 0, SGC_MAX_WORLD + 1, "4097" }, { -1, 4, "rank -1" },
		{ 4, 4, "rank 4" }, { 100, 2, "rank 100" },
	};
	struct sgc_config c = { .sz = sizeof(c) };
	struct sgc_cfg out;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = base_cfg(bad[i].rank, bad[i].world);
		assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, bad[i].mention);
	}

	c = base_cfg(0, 1);	/* a world of one is allowed */
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.world, 1);
	c = base_cfg(SGC_MAX_WORLD - 1, SGC_MAX_WORLD);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.rank, SGC_MAX_WORLD - 1);
	assert_int_equal(out.world, SGC_MAX_WORLD);
	(void)state;
}

static void test_validate_fields(void **state)
{
	struct sgc_config c = { .sz = sizeof(c) };
	struct sgc_cfg out;

	c = base_cfg(1, 2);
	c.coordinator = NULL;
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "coordinator");
	c.coordinator = "127.0.0.1";
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "coordinator", "port");
	c.coordinator = "0.0.0.0:5000";
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "0.0.0.0");
	c.coordinator = "127.0.0.1:5000";
	c.bind_addr = "127.0.0.1:x";
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "bind", "127.0.0.1:x");

	c = base_cfg(1, 2);
	c.accel = (enum sgc_accel)7;
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "accel", "7");
	c.accel = SGC_ACCEL_EBPF;
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.accel, SGC_ACCEL_EBPF);

	c = base_cfg(1, 2);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.timeout_ms, SGC_DEFAULT_TIMEOUT_MS);
	assert_int_equal(out.coord.sin_family, AF_INET);
	assert_int_equal(ntohs(out.coord.sin_port), 5000);
	assert_int_equal(out.coord.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	c.timeout_ms = 5;
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.timeout_ms, 5);

	assert_err_mentions(sgc_cfg_validate(NULL, &out), -EINVAL, "sizeof(struct sgc_config)");
	(void)state;
}

/* SGC_COORDINATOR_FILE: the address from a file when the variable is unset. */
static void test_env_coordinator_file(void **state)
{
	char path[] = "/tmp/sgc-coord-XXXXXX";
	struct sgc_config c = { .sz = sizeof(c) };
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "10.9.8.7:4242\n", 14), 14);
	close(fd);
	setenv("SGC_RANK", "1", 1);
	setenv("SGC_WORLD_SIZE", "2", 1);
	setenv("SGC_COORDINATOR_FILE", path, 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.coordinator, "10.9.8.7:4242");
	setenv("SGC_COORDINATOR", "1.2.3.4:5", 1);	/* the variable wins */
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_string_equal(c.coordinator, "1.2.3.4:5");
	unsetenv("SGC_COORDINATOR");
	unlink(path);
	assert_err_mentions(sgc_config_from_env(&c), -ENOENT, "SGC_COORDINATOR_FILE");
	(void)state;
}

/* The eBPF path's options: defaults are zero, each variable sets one. */
static void test_env_ebpf_options(void **state)
{
	struct sgc_config c;
	struct sgc_cfg out;

	set_basic_env();
	c.sz = sizeof(c);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.delivery, SGC_DELIVER_RINGBUF);
	assert_int_equal(c.waitmode, SGC_WAITMODE_BLOCK);
	assert_int_equal(c.flags, 0);

	setenv("SGC_DELIVERY", "Socket", 1);
	setenv("SGC_WAITMODE", "busypoll", 1);
	setenv("SGC_KEEP_RESPONSES", "1", 1);
	setenv("SGC_ALLGATHER", "0", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.delivery, SGC_DELIVER_SOCKET);
	assert_int_equal(c.waitmode, SGC_WAITMODE_BUSYPOLL);
	assert_int_equal(c.flags, SGC_CFG_KEEP_RESPONSES | SGC_CFG_NO_ALLGATHER);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.delivery, SGC_DELIVER_SOCKET);
	assert_int_equal(out.flags, SGC_CFG_KEEP_RESPONSES | SGC_CFG_NO_ALLGATHER);

	setenv("SGC_KEEP_RESPONSES", "0", 1);
	setenv("SGC_ALLGATHER", "1", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.flags, 0);

	/* SGC_ALGO: any case; cfg.algo checked. */
	assert_int_equal(c.algo, SGC_ALGO_AUTO);
	setenv("SGC_ALGO", "Shard", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.algo, SGC_ALGO_SHARD);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.algo, SGC_ALGO_SHARD);
	setenv("SGC_ALGO", "star", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.algo, SGC_ALGO_STAR);
	setenv("SGC_ALGO", "SHARD-kernel", 1);
	assert_int_equal(sgc_config_from_env(&c), 0);
	assert_int_equal(c.algo, SGC_ALGO_SHARD_KERNEL);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	setenv("SGC_ALGO", "kernel", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "shard-kernel");
	c.algo = (enum sgc_algo)4;
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "SGC_ALGO_SHARD_KERNEL");
	c.algo = SGC_ALGO_AUTO;
	unsetenv("SGC_ALGO");

	c.delivery = (enum sgc_delivery)7;
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "SGC_DELIVER_SOCKET");
	c.delivery = SGC_DELIVER_RINGBUF;
	c.waitmode = (enum sgc_waitmode)-1;
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "SGC_WAITMODE_BUSYPOLL");
	c.waitmode = SGC_WAITMODE_BLOCK;
	c.flags = 0x80;
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "0x80");
	(void)state;
}

/*
 * SGC_KERNEL_FANOUT=0 and its old name SGC_ALLGATHER=0 set
 * SGC_CFG_NO_KERNEL_FANOUT (= the deprecated SGC_CFG_NO_ALLGATHER); when
 * both are set they must agree.
 */
static void test_env_kernel_fanout(void **state)
{
	static const struct {
		const char *now, *old;
		unsigned flags;
	} good[] = {
		{ NULL, NULL, 0 }, { "1", NULL, 0 }, { "0", NULL, SGC_CFG_NO_KERNEL_FANOUT },
		{ NULL, "1", 0 }, { NULL, "0", SGC_CFG_NO_KERNEL_FANOUT },
		{ "0", "0", SGC_CFG_NO_KERNEL_FANOUT }, { "1", "1", 0 },
		{ "", "0", SGC_CFG_NO_KERNEL_FANOUT }, { "0", "", SGC_CFG_NO_KERNEL_FANOUT },
	};
	struct sgc_config c = { .sz = sizeof(c) };
	struct sgc_cfg out;

	_Static_assert(SGC_CFG_NO_ALLGATHER == SGC_CFG_NO_KERNEL_FANOUT, "old name, same bit");
	set_basic_env();
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (good[i].now)
			setenv("SGC_KERNEL_FANOUT", good[i].now, 1);
		else
			unsetenv("SGC_KERNEL_FANOUT");
		if (good[i].old)
			setenv("SGC_ALLGATHER", good[i].old, 1);
		else
			unsetenv("SGC_ALLGATHER");
		assert_int_equal(sgc_config_from_env(&c), 0);
		assert_int_equal(c.flags, good[i].flags);
		assert_int_equal(sgc_cfg_validate(&c, &out), 0);
		assert_int_equal(out.flags, good[i].flags);
	}

	setenv("SGC_KERNEL_FANOUT", "1", 1);
	setenv("SGC_ALLGATHER", "0", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SGC_KERNEL_FANOUT=1",
			    "SGC_ALLGATHER=0", "old name");
	setenv("SGC_KERNEL_FANOUT", "0", 1);
	setenv("SGC_ALLGATHER", "1", 1);
	assert_err_mentions(sgc_config_from_env(&c), -EINVAL, "SGC_KERNEL_FANOUT=0",
			    "SGC_ALLGATHER=1");

	/* The message about unknown flags uses the new name. */
	unsetenv("SGC_ALLGATHER");
	c = base_cfg(1, 2);
	c.flags = 0x40;
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "0x40",
			    "SGC_CFG_NO_KERNEL_FANOUT");
	(void)state;
}

static void test_validate_sz(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	struct sgc_config c = base_cfg(1, 2), *tail;
	struct sgc_cfg out;
	uint8_t *map;

	c.sz = 0;
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "sizeof(struct sgc_config)");
	c.sz = MIN_SZ - 1;
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "sizeof(struct sgc_config)");
	c.sz = sizeof(size_t);
	assert_int_equal(sgc_cfg_validate(&c, &out), -EINVAL);

	/* A newer caller's bigger struct: the fields this library knows count.
	 * (Real memory behind the extra bytes: they are read, and must be 0.) */
	struct {
		struct sgc_config c;
		unsigned char newer[64];
	} big = { .c = c };
	big.c.sz = sizeof(big);
	assert_int_equal(sgc_cfg_validate(&big.c, &out), 0);

	/*
	 * An older caller's struct of exactly MIN_SZ bytes, ending at a page
	 * the process cannot read: validation must not look past cfg->sz.
	 */
	map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + page, page, PROT_NONE), 0);
	tail = (struct sgc_config *)(map + page - MIN_SZ);
	memcpy(tail, &c, MIN_SZ);
	tail->sz = MIN_SZ;
	tail->timeout_ms = 7;
	assert_int_equal(sgc_cfg_validate(tail, &out), 0);
	assert_int_equal(out.rank, 1);
	assert_int_equal(out.timeout_ms, 7);

	/* sgc_config_from_env() writes no more than such a caller's sz. */
	set_basic_env();
	memset(tail, 0, MIN_SZ);
	tail->sz = MIN_SZ;
	assert_int_equal(sgc_config_from_env(tail), 0);
	assert_int_equal(tail->sz, MIN_SZ);
	assert_int_equal(tail->rank, 1);
	munmap(map, 2 * page);
	(void)state;
}

/* ---- settings only the environment has (sgc_cfg_env) ---- */

/* SGC_RTO_US: 50..1000000 microseconds; otherwise a warning and 200. */
static void test_env_rto(void **state)
{
	static const struct {
		const char *val;
		unsigned want;
		bool warns;
	} cases[] = {
		{ NULL, 200, false }, { "", 200, false }, { "50", 50, false },
		{ "250", 250, false }, { "4000", 4000, false }, { "1000000", 1000000, false },
		{ "49", 200, true }, { "0", 200, true }, { "1000001", 200, true },
		{ "abc", 200, true }, { "100us", 200, true }, { "-100", 200, true },
		{ "99999999999999999999999", 200, true },
	};
	sgc_print_fn old = sgc_set_print(capture_warn);
	struct sgc_config c = base_cfg(1, 2);
	struct sgc_cfg out;
	char want[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].val)
			setenv("SGC_RTO_US", cases[i].val, 1);
		else
			unsetenv("SGC_RTO_US");
		warned[0] = 0;
		memset(&out, 0xff, sizeof(out));
		assert_int_equal(sgc_cfg_env(&out), 0);
		assert_int_equal(out.rto_us, cases[i].want);
		if (cases[i].warns) {
			snprintf(want, sizeof(want),
				 "ignoring SGC_RTO_US=%s: expected microseconds between 50 and 1000000\n",
				 cases[i].val);
			assert_string_equal(warned, want);
		} else {
			assert_string_equal(warned, "");
		}
	}

	/* sgc_cfg_validate() fills it too. */
	setenv("SGC_RTO_US", "300", 1);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.rto_us, 300);
	unsetenv("SGC_RTO_US");
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.rto_us, SGC_DEFAULT_RTO_US);
	sgc_set_print(old);
	(void)state;
}

/* SGC_GSO: any value but "0" (and unset) means on. */
static void test_env_gso(void **state)
{
	static const struct {
		const char *val;
		bool on;
	} cases[] = {
		{ NULL, true }, { "", true }, { "1", true }, { "no", true }, { "00", true },
		{ "0", false },
	};
	struct sgc_config c = base_cfg(1, 2);
	struct sgc_cfg out;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].val)
			setenv("SGC_GSO", cases[i].val, 1);
		else
			unsetenv("SGC_GSO");
		assert_int_equal(sgc_cfg_env(&out), 0);
		assert_int_equal(out.gso, cases[i].on);
	}
	setenv("SGC_GSO", "0", 1);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_false(out.gso);
	(void)state;
}

/* SGC_FANOUT_CPUS: 1..64, or an error naming the variable and value;
 * unset: the CPUs this process may use, at most 4. */
static void test_env_fanout_cpus(void **state)
{
	static const char *const bad[] = { "0", "65", "two", "2x", "-1", " 2", "+2", "1e1" };
	struct sgc_config c = base_cfg(1, 2);
	struct sgc_cfg out;
	cpu_set_t set;
	unsigned n;

	setenv("SGC_FANOUT_CPUS", "3", 1);
	assert_int_equal(sgc_cfg_env(&out), 0);
	assert_int_equal(out.fanout_cpus, 3);
	setenv("SGC_FANOUT_CPUS", "1", 1);
	assert_int_equal(sgc_cfg_env(&out), 0);
	assert_int_equal(out.fanout_cpus, 1);
	setenv("SGC_FANOUT_CPUS", "64", 1);
	assert_int_equal(sgc_cfg_env(&out), 0);
	assert_int_equal(out.fanout_cpus, 64);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("SGC_FANOUT_CPUS", bad[i], 1);
		assert_err_mentions(sgc_cfg_env(&out), -EINVAL, "SGC_FANOUT_CPUS", bad[i],
				    "decimal 1..64");
		assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "SGC_FANOUT_CPUS",
				    bad[i]);
	}

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	n = (unsigned)CPU_COUNT(&set);
	unsetenv("SGC_FANOUT_CPUS");
	assert_int_equal(sgc_cfg_env(&out), 0);
	assert_int_equal(out.fanout_cpus, n < 4 ? n : 4);
	setenv("SGC_FANOUT_CPUS", "", 1);	/* empty counts as unset */
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_int_equal(out.fanout_cpus, n < 4 ? n : 4);
	(void)state;
}

/* ---- OPTS_VALID / OPTS_GET / OPTS_SET ---- */

/* The minimal sizes are the ones the hand-written checks used. */
static void test_opts_min_sz(void **state)
{
	assert_int_equal(OPTS_MIN_SZ(sgc_config), MIN_SZ);
	assert_int_equal(OPTS_MIN_SZ(sgc_sg_opts),
			 offsetof(struct sgc_sg_opts, timeout_ms) + sizeof(unsigned));
	assert_int_equal(OPTS_MIN_SZ(sgc_sg_status), sizeof(struct sgc_sg_status));
	assert_int_equal(OPTS_MIN_SZ(sgc_serve_opts),
			 offsetof(struct sgc_serve_opts, idle_timeout_ms) + sizeof(unsigned));
	(void)state;
}

static bool sg_opts_valid(const struct sgc_sg_opts *o)
{
	return OPTS_VALID(o, sgc_sg_opts);
}

static void test_opts_valid(void **state)
{
	struct {
		struct sgc_sg_opts o;
		unsigned char newer[32];
	} big = { .o = { .sz = sizeof(big.o) } };
	struct sgc_serve_opts so = { .sz = sizeof(so) };
	struct sgc_sg_status st = { .sz = sizeof(st) };
	const struct sgc_serve_opts *pso = &so;
	const struct sgc_sg_status *pst = &st;
	struct sgc_sg_opts *o = &big.o;

	assert_true(sg_opts_valid(NULL));
	assert_true(sg_opts_valid(o));
	assert_true(OPTS_VALID(pso, sgc_serve_opts));
	assert_true(OPTS_VALID(pst, sgc_sg_status));

	/* Too small: false, and the message names the struct and the fix. */
	o->sz = 0;
	assert_false(sg_opts_valid(o));
	assert_non_null(strstr(sgc_last_error(), "struct sgc_sg_opts"));
	assert_non_null(strstr(sgc_last_error(), "sz = sizeof(struct sgc_sg_opts)"));
	o->sz = OPTS_MIN_SZ(sgc_sg_opts) - 1;
	assert_false(sg_opts_valid(o));
	o->sz = OPTS_MIN_SZ(sgc_sg_opts);
	assert_true(sg_opts_valid(o));
	st.sz = sizeof(st) - 1;
	assert_false(OPTS_VALID(pst, sgc_sg_status));
	assert_non_null(strstr(sgc_last_error(), "sizeof(struct sgc_sg_status)"));
	so.sz = sizeof(size_t);
	assert_false(OPTS_VALID(pso, sgc_serve_opts));
	assert_non_null(strstr(sgc_last_error(), "sizeof(struct sgc_serve_opts)"));

	/* A newer caller's struct: zero tail accepted, anything else refused. */
	o->sz = sizeof(big);
	assert_true(sg_opts_valid(o));
	big.newer[sizeof(big.newer) - 1] = 1;
	assert_false(sg_opts_valid(o));
	assert_non_null(strstr(sgc_last_error(), "struct sgc_sg_opts"));
	assert_non_null(strstr(sgc_last_error(), "newer"));
	/* ... but only up to its sz. */
	o->sz = sizeof(big) - 1;
	assert_true(sg_opts_valid(o));

	/* An sz that was never set is not taken for a length to scan. */
	o->sz = (size_t)-1;
	assert_false(sg_opts_valid(o));
	assert_non_null(strstr(sgc_last_error(), "not set"));
	(void)state;
}

/* OPTS_GET and OPTS_SET stay within sz: a struct of the minimal size ends
 * at a page the process cannot touch. */
static void test_opts_get_set(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	struct sgc_config full = { .sz = sizeof(full), .timeout_ms = 9, .flags = 3 };
	struct sgc_config *none = NULL, *pf = &full, *c;
	uint8_t *map;

	assert_int_equal(OPTS_GET(none, timeout_ms, 5), 5);
	assert_false(OPTS_HAS(none, sz));
	OPTS_SET(none, flags, 1);	/* no-op, no crash */
	assert_int_equal(OPTS_GET(pf, flags, 7), 3);
	OPTS_SET(pf, flags, 1);
	assert_int_equal(full.flags, 1);

	map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + page, page, PROT_NONE), 0);
	c = (struct sgc_config *)(map + page - MIN_SZ);
	memcpy(c, &full, MIN_SZ);
	c->sz = MIN_SZ;
	assert_true(OPTS_VALID(c, sgc_config));
	assert_int_equal(OPTS_GET(c, timeout_ms, 5), 9);
	assert_true(OPTS_HAS(c, timeout_ms));
	assert_false(OPTS_HAS(c, delivery));
	assert_int_equal(OPTS_GET(c, flags, 7), 7);
	assert_null(OPTS_GET(c, custom_bpf, NULL));
	OPTS_SET(c, flags, 1);
	OPTS_SET(c, timeout_ms, 11);
	assert_int_equal(c->timeout_ms, 11);
	munmap(map, 2 * page);
	(void)state;
}

/* sgc_cfg_validate() refuses a newer caller's struct with a newer field set. */
static void test_validate_newer_field(void **state)
{
	struct {
		struct sgc_config c;
		uint64_t newer;
	} big = { .c = base_cfg(1, 2) };
	struct sgc_cfg out;

	big.c.sz = sizeof(big);
	assert_int_equal(sgc_cfg_validate(&big.c, &out), 0);
	big.newer = 1;
	assert_err_mentions(sgc_cfg_validate(&big.c, &out), -EINVAL, "struct sgc_config", "newer");
	big.c.sz = sizeof(big.c);
	assert_int_equal(sgc_cfg_validate(&big.c, &out), 0);
	(void)state;
}

/* sgc_get_stats()'s copy: no more than either side's size. */
static void test_copy_sized(void **state)
{
	uint8_t dst[16], src[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	memset(dst, 0xa5, sizeof(dst));
	assert_int_equal(sgc_copy_sized(dst, 0, src, sizeof(src)), 0);
	assert_int_equal(dst[0], 0xa5);
	assert_int_equal(sgc_copy_sized(dst, 3, src, sizeof(src)), 3);
	assert_int_equal(dst[2], 3);
	assert_int_equal(dst[3], 0xa5);
	assert_int_equal(sgc_copy_sized(dst, sizeof(dst), src, sizeof(src)), sizeof(src));
	assert_memory_equal(dst, src, sizeof(src));
	assert_int_equal(dst[8], 0xa5);
	(void)state;
}

/* ---- defaults from the route and the interfaces (loopback only) ---- */

static void test_bind_auto(void **state)
{
	struct sgc_config c = { .sz = sizeof(c) };
	struct sgc_cfg out;
	char buf[32];

	/* a worker: the source address towards 127.0.0.1 is 127.0.0.1 */
	c = base_cfg(1, 2);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(sgc_addr_str(&out.bind, buf, sizeof(buf)), "127.0.0.1:0");
	assert_string_equal(out.ifname, "");

	/* rank 0 binds the coordinator address itself */
	c = base_cfg(0, 2);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(sgc_addr_str(&out.bind, buf, sizeof(buf)), "127.0.0.1:5000");

	/* explicit bind addresses, with and without port */
	c = base_cfg(1, 2);
	c.bind_addr = "127.0.0.2";
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(sgc_addr_str(&out.bind, buf, sizeof(buf)), "127.0.0.2:0");
	c.bind_addr = "127.0.0.2:6000";
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(sgc_addr_str(&out.bind, buf, sizeof(buf)), "127.0.0.2:6000");

	/* rank 0 listens on the coordinator port whatever the address */
	c = base_cfg(0, 2);
	c.bind_addr = "0.0.0.0";
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(sgc_addr_str(&out.bind, buf, sizeof(buf)), "0.0.0.0:5000");
	c.bind_addr = "127.0.0.1:5001";
	assert_err_mentions(sgc_cfg_validate(&c, &out), -EINVAL, "5001", "5000");
	(void)state;
}

static void test_route_error(void **state)
{
	struct sgc_config c = base_cfg(1, 2);
	struct sgc_cfg out;
	int rc;

	/* connect() to the broadcast address fails without SO_BROADCAST */
	c.coordinator = "255.255.255.255:5000";
	rc = sgc_cfg_validate(&c, &out);
	assert_true(rc < 0);
	assert_non_null(strstr(sgc_last_error(), "255.255.255.255:5000"));
	assert_non_null(strstr(sgc_last_error(), "SGC_BIND"));
	(void)state;
}

static void test_ifname(void **state)
{
	struct sgc_config c = { .sz = sizeof(c) };
	struct sgc_cfg out;

	/* rank 0 finds the interface that holds the coordinator's address */
	c = base_cfg(0, 2);
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(out.ifname, "lo");

	c = base_cfg(1, 2);
	c.ifname = "lo";
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(out.ifname, "lo");

	c.ifname = "sgcnosuch0";
	assert_err_mentions(sgc_cfg_validate(&c, &out), -ENODEV, "sgcnosuch0");
	c = base_cfg(0, 2);
	c.ifname = "sgcnosuch0";
	assert_err_mentions(sgc_cfg_validate(&c, &out), -ENODEV, "sgcnosuch0");
	c.ifname = "an-interface-name-too-long";
	assert_err_mentions(sgc_cfg_validate(&c, &out), -ENODEV, "an-interface-name-too-long");
	c.ifname = "";
	assert_int_equal(sgc_cfg_validate(&c, &out), -ENODEV);

	/* a coordinator address no interface has: unknown, not an error */
	c = base_cfg(0, 2);
	c.coordinator = "192.0.2.123:5000";
	assert_int_equal(sgc_cfg_validate(&c, &out), 0);
	assert_string_equal(out.ifname, "");
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test_setup(test_resolve_good, clear_env),
		cmocka_unit_test_setup(test_resolve_bad, clear_env),
		cmocka_unit_test_setup(test_hostlist, clear_env),
		cmocka_unit_test_setup(test_env_torchrun, clear_env),
		cmocka_unit_test_setup(test_env_slurm, clear_env),
		cmocka_unit_test_setup(test_env_precedence, clear_env),
		cmocka_unit_test_setup(test_validate_host_name, clear_env),
		cmocka_unit_test_setup(test_env_basic, clear_env),
		cmocka_unit_test_setup(test_env_no_job, clear_env),
		cmocka_unit_test_setup(test_env_fallbacks, clear_env),
		cmocka_unit_test_setup(test_env_errors, clear_env),
		cmocka_unit_test_setup(test_env_edges, clear_env),
		cmocka_unit_test_setup(test_env_ebpf_options, clear_env),
		cmocka_unit_test_setup(test_env_coordinator_file, clear_env),
		cmocka_unit_test_setup(test_env_sz, clear_env),
		cmocka_unit_test_setup(test_validate_ranges, clear_env),
		cmocka_unit_test_setup(test_validate_fields, clear_env),
		cmocka_unit_test_setup(test_env_kernel_fanout, clear_env),
		cmocka_unit_test_setup(test_validate_sz, clear_env),
		cmocka_unit_test_setup(test_env_rto, clear_env),
		cmocka_unit_test_setup(test_env_gso, clear_env),
		cmocka_unit_test_setup(test_env_fanout_cpus, clear_env),
		cmocka_unit_test_setup(test_opts_min_sz, clear_env),
		cmocka_unit_test_setup(test_opts_valid, clear_env),
		cmocka_unit_test_setup(test_opts_get_set, clear_env),
		cmocka_unit_test_setup(test_validate_newer_field, clear_env),
		cmocka_unit_test_setup(test_copy_sized, clear_env),
		cmocka_unit_test_setup(test_bind_auto, clear_env),
		cmocka_unit_test_setup(test_route_error, clear_env),
		cmocka_unit_test_setup(test_ifname, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

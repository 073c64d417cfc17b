/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sgc_strerror(), the per-thread sgc_last_error() and the print hook.
 *
 * The default printer's SGC_DEBUG switch is read once per process, so those
 * cases run this executable again as a child with a chosen environment.
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
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "sgc_internal.h"

extern char **environ;

static const int codes[] = {
	EINVAL, ETIMEDOUT, ENOMEM, EPERM, EACCES, EADDRINUSE, EADDRNOTAVAIL,
	ENETUNREACH, EHOSTUNREACH, ENODEV, EOPNOTSUPP, EPROTO, EBUSY, EMSGSIZE,
	ENOTCONN, ESHUTDOWN, ECONNREFUSED, ECONNABORTED, ECANCELED, ERANGE,
	EBADMSG, SGC_EMISMATCH, SGC_EABORTED,
};

#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* ---- sgc_strerror ---- */

static void test_every_code_explained(void **state)
{
	for (size_t i = 0; i < NCODES; i++) {
		const char *s = sgc_strerror(-codes[i]);

		assert_non_null(s);
		/* the same text for -code and code, and the same pointer each time */
		assert_ptr_equal(s, sgc_strerror(codes[i]));
		assert_ptr_equal(s, sgc_strerror(-codes[i]));
		/* a sentence of our own, not libc's few words */
		assert_string_not_equal(s, strerror(codes[i]));
		assert_true(strlen(s) > 60);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, sgc_strerror(-codes[j]));
	}
	(void)state;
}

/* Spot checks that the sentences name the knob that fixes the problem. */
static void test_sentences_name_the_fix(void **state)
{
	static const struct {
		int code;
		const char *mention;
	} want[] = {
		{ ETIMEDOUT, "SGC_TIMEOUT_MS" }, { ETIMEDOUT, "SGC_WORLD_SIZE" },
		{ ETIMEDOUT, "sgc_last_error()" }, { EPERM, "CAP_BPF" },
		{ EPERM, "SGC_ACCEL=off" }, { EADDRINUSE, "port" },
		{ EADDRNOTAVAIL, "SGC_BIND" }, { ENETUNREACH, "SGC_COORDINATOR" },
		{ ENODEV, "SGC_IFNAME" }, { EBUSY, "SGC_MAX_INFLIGHT" },
		{ EMSGSIZE, "sgc_max_query()" }, { EINVAL, "sgc_last_error()" },
		{ SGC_EMISMATCH, "same arguments" }, { ECONNREFUSED, "rank 0" },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(sgc_strerror(-want[i].code), want[i].mention)) {
			print_error("%s: no \"%s\" in \"%s\"\n", strerrorname_np(want[i].code),
				    want[i].mention, sgc_strerror(-want[i].code));
			fail();
		}
	}
	(void)state;
}

static void test_other_codes(void **state)
{
	assert_string_equal(sgc_strerror(0), "success");
	/* codes the library does not return: libc's description */
	assert_string_equal(sgc_strerror(-ENOENT), strerror(ENOENT));
	assert_string_equal(sgc_strerror(EIO), strerror(EIO));
	/* nonsense still gives a string */
	assert_non_null(sgc_strerror(-99999));
	assert_non_null(sgc_strerror(INT_MIN));
	assert_non_null(sgc_strerror(INT_MAX));
	(void)state;
}

/* ---- sgc_err / sgc_last_error ---- */

static void test_err_basics(void **state)
{
	char big[2000];

	sgc_err_clear();
	assert_string_equal(sgc_last_error(), "");
	assert_int_equal(sgc_err(-EINVAL, "rank %d is %s", 7, "bad"), -EINVAL);
	assert_string_equal(sgc_last_error(), "rank 7 is bad");
	assert_int_equal(sgc_err(SGC_EMISMATCH, "x"), SGC_EMISMATCH);
	assert_string_equal(sgc_last_error(), "x");

	/* errno survives recording an error */
	errno = EAGAIN;
	sgc_err(-ETIMEDOUT, "t");
	assert_int_equal(errno, EAGAIN);

	/* long messages are cut, not overflowed */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sgc_err(-EINVAL, "%s", big);
	assert_true(strlen(sgc_last_error()) >= 400);
	assert_true(strlen(sgc_last_error()) < 1024);
	sgc_err_clear();
	assert_string_equal(sgc_last_error(), "");

	/* The public setter, for libraries built on this one. */
	assert_int_equal(sgc_set_last_error(-EADDRINUSE, "rank 0: port 7 is taken"), -EADDRINUSE);
	assert_string_equal(sgc_last_error(), "rank 0: port 7 is taken");
	assert_int_equal(sgc_set_last_error(-EIO, sgc_last_error()), -EIO);
	assert_string_equal(sgc_last_error(), "rank 0: port 7 is taken");
	assert_int_equal(sgc_set_last_error(-EIO, NULL), -EIO);
	assert_string_equal(sgc_last_error(), "");
	(void)state;
}

static pthread_barrier_t both_set;

static void *thread_fn(void *arg)
{
	int id = (int)(intptr_t)arg;
	char want[64];
	int ok;

	ok = sgc_last_error()[0] == '\0';	/* a new thread starts clean */
	snprintf(want, sizeof(want), "failure in thread %d", id);
	sgc_err(-EINVAL, "failure in thread %d", id);
	pthread_barrier_wait(&both_set);	/* both have written before either reads */
	ok = ok && strcmp(sgc_last_error(), want) == 0;
	pthread_barrier_wait(&both_set);
	return (void *)(intptr_t)ok;
}

static void test_last_error_per_thread(void **state)
{
	pthread_t t[2];
	void *ok;

	sgc_err(-EPERM, "main thread's error");
	assert_int_equal(pthread_barrier_init(&both_set, NULL, 2), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_fn, (void *)(intptr_t)(i + 1)), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], &ok), 0);
		assert_true(ok);
	}
	pthread_barrier_destroy(&both_set);
	assert_string_equal(sgc_last_error(), "main thread's error");
	(void)state;
}

/* ---- the print hook ---- */

static struct {
	int calls;
	enum sgc_print_level level;
	char text[256];
} captured;

static int capture(enum sgc_print_level level, const char *fmt, va_list ap)
{
	captured.calls++;
	captured.level = level;
	return vsnprintf(captured.text, sizeof(captured.text), fmt, ap);
}

/* Run @fn with stderr going to a temporary file; return what it printed. */
static void with_stderr(void (*fn)(void), char *out, size_t len)
{
	FILE *tmp = tmpfile();
	int saved;
	size_t n;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, len - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

static void print_some(void)
{
	pr_warn("warn %d\n", 1);
	pr_info("info %s", "two");
}

static void test_set_print(void **state)
{
	sgc_print_fn def, prev;
	char out[512];

	/* default: WARN and INFO to stderr with the prefix, one line each */
	def = sgc_set_print(capture);
	assert_non_null(def);
	prev = sgc_set_print(def);
	assert_ptr_equal(prev, capture);
	with_stderr(print_some, out, sizeof(out));
	assert_string_equal(out, "libsgcoll: warn 1\nlibsgcoll: info two\n");

	/* a custom printer gets the level and the arguments */
	assert_ptr_equal(sgc_set_print(capture), def);
	memset(&captured, 0, sizeof(captured));
	errno = EXDEV;
	pr_warn("port %u is taken by %s", 5000, "another job");
	assert_int_equal(errno, EXDEV);
	assert_int_equal(captured.calls, 1);
	assert_int_equal(captured.level, SGC_WARN);
	assert_string_equal(captured.text, "port 5000 is taken by another job");
	pr_debug("dbg %d", 3);
	assert_int_equal(captured.calls, 2);
	assert_int_equal(captured.level, SGC_DEBUG);
	assert_string_equal(captured.text, "dbg 3");

	/* NULL silences everything */
	assert_ptr_equal(sgc_set_print(NULL), capture);
	with_stderr(print_some, out, sizeof(out));
	assert_string_equal(out, "");
	assert_int_equal(captured.calls, 2);
	assert_null(sgc_set_print(def));
	(void)state;
}

/* Run this executable as a child that prints, with SGC_DEBUG=@debug. */
static void run_child(const char *debug, char *out, size_t len)
{
	char *argv[] = { "/proc/self/exe", NULL };
	posix_spawn_file_actions_t fa;
	char **env;
	size_t n = 0, got = 0;
	ssize_t r;
	int fds[2], status;
	pid_t pid;

	for (char **e = environ; *e; e++)
		n++;
	env = calloc(n + 3, sizeof(*env));
	assert_non_null(env);
	n = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "SGC_DEBUG=", 10))
			env[n++] = *e;
	env[n++] = "SGC_TEST_PRINT_CHILD=1";
	if (debug)
		env[n++] = (char *)debug;

	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	assert_int_equal(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, env), 0);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(fds[1]);
	while (got < len - 1 && (r = read(fds[0], out + got, len - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int child_main(void)
{
	pr_warn("child warn");
	pr_debug("child debug");
	pr_info("child info");
	return 0;
}

static void test_debug_switch(void **state)
{
	char out[512];

	run_child(NULL, out, sizeof(out));
	assert_string_equal(out, "libsgcoll: child warn\nlibsgcoll: child info\n");
	run_child("SGC_DEBUG=0", out, sizeof(out));
	assert_string_equal(out, "libsgcoll: child warn\nlibsgcoll: child info\n");
	run_child("SGC_DEBUG=1", out, sizeof(out));
	assert_string_equal(out,
			    "libsgcoll: child warn\nlibsgcoll: child debug\nlibsgcoll: child info\n");
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_explained),
		cmocka_unit_test(test_sentences_name_the_fix),
		cmocka_unit_test(test_other_codes),
		cmocka_unit_test(test_err_basics),
		cmocka_unit_test(test_last_error_per_thread),
		cmocka_unit_test(test_set_print),
		cmocka_unit_test(test_debug_switch),
	};

	if (getenv("SGC_TEST_PRINT_CHILD"))
		return child_main();
	return cmocka_run_group_tests(tests, NULL, NULL);
}

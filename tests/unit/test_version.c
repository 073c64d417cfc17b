// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_version() and sgc_version_number(): the version of project(VERSION)
 * (CMake passes it here as SGC_TEST_VERSION, and to the library through
 * version.c's definitions, so a broken hand-over shows as a mismatch), in
 * agreement with the header's macros, and exported from the shared library
 * under the LIBSGCOLL_0.2 node of libsgcoll.map.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sgcoll.h"

#ifndef SGC_TEST_VERSION
#error "SGC_TEST_VERSION (project(VERSION)) and SGC_TEST_LIB come from tests/unit/CMakeLists.txt"
#endif

/* "MAJOR.MINOR.PATCH" and nothing else, each part decimal without sign. */
static void parse(const char *v, int *major, int *minor, int *patch)
{
	int end = -1;

	assert_non_null(v);
	assert_int_equal(sscanf(v, "%d.%d.%d%n", major, minor, patch, &end), 3);
	assert_int_equal(end, (int)strlen(v));
	assert_true(*major >= 0 && *minor >= 0 && *patch >= 0);
	assert_true(v[0] >= '0' && v[0] <= '9');
}

static void test_string_is_cmakes_version(void **state)
{
	int major, minor, patch;

	assert_string_equal(sgc_version(), SGC_TEST_VERSION);
	parse(sgc_version(), &major, &minor, &patch);
	/* static: the same pointer each time, nothing to free */
	assert_ptr_equal(sgc_version(), sgc_version());
	(void)state;
}

static void test_number_matches_string(void **state)
{
	int major, minor, patch;

	parse(sgc_version(), &major, &minor, &patch);
	assert_int_equal(sgc_version_number(), major * 10000 + minor * 100 + patch);
	(void)state;
}

static void test_header_macros_match(void **state)
{
	int major, minor, patch;

	parse(sgc_version(), &major, &minor, &patch);
	assert_int_equal(major, SGCOLL_VERSION_MAJOR);
	assert_int_equal(minor, SGCOLL_VERSION_MINOR);
	assert_int_equal(sgc_version_number() / 100,
			 SGCOLL_VERSION_MAJOR * 100 + SGCOLL_VERSION_MINOR);
	(void)state;
}

/* The shared library: the new functions under LIBSGCOLL_0.2, the old ones
 * still under LIBSGCOLL_0.1, so programs linked before keep loading. */
static void test_shared_library_exports(void **state)
{
	const char *(*version)(void);
	int (*number)(void);
	void *h = dlopen(SGC_TEST_LIB, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		fail_msg("dlopen %s: %s", SGC_TEST_LIB, dlerror());
	version = (const char *(*)(void))dlvsym(h, "sgc_version", "LIBSGCOLL_0.2");
	number = (int (*)(void))dlvsym(h, "sgc_version_number", "LIBSGCOLL_0.2");
	assert_non_null(version);
	assert_non_null(number);
	assert_string_equal(version(), SGC_TEST_VERSION);
	assert_int_equal(number(), sgc_version_number());
	assert_null(dlvsym(h, "sgc_version", "LIBSGCOLL_0.1"));
	assert_non_null(dlvsym(h, "sgc_init", "LIBSGCOLL_0.1"));
	assert_non_null(dlvsym(h, "sgc_allreduce_float", "LIBSGCOLL_0.1"));
	dlclose(h);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_string_is_cmakes_version),
		cmocka_unit_test(test_number_matches_string),
		cmocka_unit_test(test_header_macros_match),
		cmocka_unit_test(test_shared_library_exports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

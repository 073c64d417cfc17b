// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The non-blocking API over the fake transport (fake_net.h), in virtual
 * time: sgc_ireduce() and sgc_ibarrier() in flight with sgc_iallreduce()
 * and sgc_ibroadcast(); sgc_testany() and sgc_waitall() over them (each
 * index once, entries set to NULL, per-request statuses, the first error
 * returned and named); their argument errors; a wait that can only time
 * out; requests that outlive their communicator.  Requests of several
 * communicators waited for together need real descriptors: that is
 * tests/e2e/nb_check.c's twocomm.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_net.h"
#include "request.h"

#define WORLD	5
/* The mix each rank posts, in this order (the same at every rank). */
#define NMIX	5
#define N	(3 * ELEMS + 5)		/* several chunks */

struct job {
	struct sgc_comm *c[FAKE_MAX_RANKS];
	sgc_request *req[WORLD][NMIX];
	int32_t send[WORLD][NMIX][N];
	int32_t recv[WORLD][NMIX][N];
};

static void job_open(struct job *j)
{
	struct fake_world_opts o = {
		.world = WORLD, .chunk_bytes = CHUNK_BYTES, .timeout_ms = TIMEOUT_MS,
		.rto_ns = RTO_NS,
	};

	memset(j, 0, sizeof(*j));
	fake_net_reset(42, LATENCY_NS);
	assert_int_equal(fake_world_new(&o, j->c), 0);
}

static void job_close(struct job *j)
{
	fake_world_free(j->c, WORLD);
}

static int32_t in_val(int r, int k, size_t i)
{
	return (int32_t)((r + 1) * 100000 + k * 1000 + (int)i);
}

static int32_t sum_val(int k, size_t i)
{
	int32_t s = 0;
	int r;

	for (r = 0; r < WORLD; r++)
		s += in_val(r, k, i);
	return s;
}

/* ireduce to 2, ibarrier, iallreduce, ireduce to 0, ibroadcast from 3;
 * rank @odd (if >= 0) calls the ireduce to 2 with one element less. */
static void post_mix(struct job *j, int r, int odd)
{
	int32_t (*s)[N] = j->send[r], (*d)[N] = j->recv[r];
	sgc_request **q = j->req[r];
	struct sgc_comm *c = j->c[r];
	size_t i;
	int k;

	for (k = 0; k < NMIX; k++)
		for (i = 0; i < N; i++) {
			s[k][i] = in_val(r, k, i);
			d[k][i] = k == 4 && r == 3 ? in_val(3, 4, i) : -1;
		}
	assert_int_equal(sgc_ireduce(c, s[0], r == 2 ? d[0] : NULL, r == odd ? N - 1 : N, SGC_INT32,
				     SGC_SUM, 2, &q[0]), 0);
	assert_int_equal(sgc_ibarrier(c, &q[1]), 0);
	assert_int_equal(sgc_iallreduce(c, s[2], d[2], N, SGC_INT32, SGC_SUM, &q[2]), 0);
	assert_int_equal(sgc_ireduce(c, s[3], d[3], N, SGC_INT32, SGC_SUM, 0, &q[3]), 0);
	assert_int_equal(sgc_ibroadcast(c, d[4], N, SGC_INT32, 3, &q[4]), 0);
}

/* Request @k of rank @r finished with the right buffer. */
static void check_mix(const struct job *j, int r, int k)
{
	size_t i;

	for (i = 0; i < N; i++) {
		int32_t want = -1;

		if ((k == 0 && r == 2) || k == 2 || (k == 3 && r == 0))
			want = sum_val(k, i);
		else if (k == 4)
			want = in_val(3, 4, i);
		if (j->recv[r][k][i] != want)
			fail_msg("rank %d request %d: element %zu is %d, want %d", r, k, i,
				 j->recv[r][k][i], want);
	}
}

static bool all_done(void *arg)
{
	struct job *j = arg;
	int r, k;

	for (r = 0; r < WORLD; r++)
		for (k = 0; k < NMIX; k++)
			if (j->req[r][k] && !j->req[r][k]->done)
				return false;
	return true;
}

static void test_arg_errors(void **state)
{
	sgc_request *none[3] = { NULL, NULL, NULL }, *req = (sgc_request *)1;
	int st[3] = { 7, 7, 7 }, idx = 5, done = 5;
	struct job j;

	assert_int_equal(sgc_waitall(-1, none, st), -EINVAL);
	assert_non_null(strstr(sgc_last_error(), "negative request count -1"));
	assert_int_equal(st[0], 7);
	assert_int_equal(sgc_waitall(2, NULL, NULL), -EINVAL);
	assert_non_null(strstr(sgc_last_error(), "NULL request array"));
	assert_int_equal(sgc_waitall(0, NULL, NULL), 0);
	assert_int_equal(sgc_waitall(0, NULL, st), 0);
	assert_int_equal(sgc_waitall(3, none, NULL), 0);
	assert_int_equal(sgc_waitall(3, none, st), 0);
	assert_int_equal(st[0] | st[1] | st[2], 0);

	assert_int_equal(sgc_testany(3, none, NULL, &done), -EINVAL);
	assert_int_equal(sgc_testany(3, none, &idx, NULL), -EINVAL);
	assert_int_equal(sgc_testany(-2, none, &idx, &done), -EINVAL);
	assert_non_null(strstr(sgc_last_error(), "sgc_testany: negative request count -2"));
	assert_int_equal(done, 0);
	assert_int_equal(idx, -1);
	assert_int_equal(sgc_testany(1, NULL, &idx, &done), -EINVAL);
	/* Nothing to test: done, with no index (MPI_Testany's answer). */
	done = 0;
	assert_int_equal(sgc_testany(0, NULL, &idx, &done), 0);
	assert_int_equal(done, 1);
	assert_int_equal(idx, -1);
	done = 0;
	assert_int_equal(sgc_testany(3, none, &idx, &done), 0);
	assert_int_equal(done, 1);
	assert_int_equal(idx, -1);

	/* Posting: a NULL communicator or request pointer, a bad root. */
	assert_int_equal(sgc_ibarrier(NULL, &req), -EINVAL);
	assert_null(req);
	assert_int_equal(sgc_ireduce(NULL, st, st, 1, SGC_INT32, SGC_SUM, 0, &req), -EINVAL);
	job_open(&j);
	assert_int_equal(sgc_ibarrier(j.c[1], NULL), -EINVAL);
	assert_non_null(strstr(sgc_last_error(), "sgc_ibarrier: NULL request pointer"));
	assert_int_equal(sgc_ireduce(j.c[1], st, st, 1, SGC_INT32, SGC_SUM, 0, NULL), -EINVAL);
	req = (sgc_request *)1;
	assert_int_equal(sgc_ireduce(j.c[1], st, st, 1, SGC_INT32, SGC_SUM, WORLD, &req), -EINVAL);
	assert_non_null(strstr(sgc_last_error(), "root 5 is not a rank"));
	assert_null(req);
	/* The root needs a recvbuf; the others do not. */
	assert_int_equal(sgc_ireduce(j.c[2], st, NULL, 1, SGC_INT32, SGC_SUM, 2, &req), -EINVAL);
	assert_null(req);
	assert_int_equal(j.c[1]->colls.nposted + j.c[2]->colls.nposted, 0);
	job_close(&j);
	(void)state;
}

/* A request twice in one array is refused before anything is freed. */
static void test_duplicate(void **state)
{
	struct job j;
	sgc_request *arr[3];
	int r, idx, done;

	job_open(&j);
	for (r = 0; r < WORLD; r++)
		assert_int_equal(sgc_ibarrier(j.c[r], &j.req[r][0]), 0);
	assert_true(fake_run_until(all_done, &j, RUN_NS));
	arr[0] = j.req[0][0];
	arr[1] = NULL;
	arr[2] = j.req[0][0];
	assert_int_equal(sgc_waitall(3, arr, NULL), -EINVAL);
	assert_non_null(strstr(sgc_last_error(), "request 0 appears again at index 2"));
	assert_int_equal(sgc_testany(3, arr, &idx, &done), -EINVAL);
	assert_int_equal(done, 0);
	assert_ptr_equal(arr[0], j.req[0][0]);
	/* Once each: fine. */
	arr[1] = j.req[1][0];
	arr[2] = j.req[2][0];
	assert_int_equal(sgc_waitall(3, arr, NULL), 0);
	assert_int_equal(sgc_waitall(1, &j.req[3][0], NULL), 0);
	assert_int_equal(sgc_waitall(1, &j.req[4][0], NULL), 0);
	assert_null(arr[0]);
	assert_null(j.req[3][0]);
	job_close(&j);
	(void)state;
}

/* Posted, not yet progressed: nothing is done, nothing changes. */
static void testany_nothing_yet(struct job *j, int r)
{
	sgc_request *before[NMIX];
	int idx = 7, done = 7;

	memcpy(before, j->req[r], sizeof(before));
	assert_int_equal(sgc_testany(NMIX, j->req[r], &idx, &done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(idx, -1);
	assert_memory_equal(before, j->req[r], sizeof(before));
}

static void test_testany_mix(void **state)
{
	struct job j;
	int r, k, idx, done, seen[NMIX];

	job_open(&j);
	for (r = 0; r < WORLD; r++)
		post_mix(&j, r, -1);
	testany_nothing_yet(&j, 1);
	assert_true(fake_run_until(all_done, &j, RUN_NS));
	for (r = 0; r < WORLD; r++) {
		memset(seen, 0, sizeof(seen));
		for (k = 0; k < NMIX; k++) {
			assert_int_equal(sgc_testany(NMIX, j.req[r], &idx, &done), 0);
			assert_int_equal(done, 1);
			assert_in_range(idx, 0, NMIX - 1);
			assert_int_equal(seen[idx], 0);
			seen[idx] = 1;
			assert_null(j.req[r][idx]);
			check_mix(&j, r, idx);
		}
		/* All taken: the array is empty now. */
		assert_int_equal(sgc_testany(NMIX, j.req[r], &idx, &done), 0);
		assert_int_equal(done, 1);
		assert_int_equal(idx, -1);
		assert_int_equal(j.c[r]->colls.nposted, 0);
	}
	job_close(&j);
	(void)state;
}

/* Rank 4's ireduce has another count: that request fails everywhere, the
 * others of the same waitall succeed, and the call names the index. */
static void test_waitall_statuses(void **state)
{
	struct job j;
	int r, k, st[NMIX + 1];
	sgc_request *arr[NMIX + 1];

	job_open(&j);
	for (r = 0; r < WORLD; r++)
		post_mix(&j, r, 4);
	assert_true(fake_run_until(all_done, &j, RUN_NS));
	for (r = 0; r < WORLD; r++) {
		/* The barrier, a NULL hole, then the rest of the mix. */
		arr[0] = j.req[r][1];
		arr[1] = NULL;
		arr[2] = j.req[r][0];	/* the mismatched ireduce */
		arr[3] = j.req[r][2];
		arr[4] = j.req[r][3];
		arr[5] = j.req[r][4];
		memset(st, 0x55, sizeof(st));
		assert_int_equal(sgc_waitall(NMIX + 1, arr, st), -SGC_EMISMATCH);
		if (!strstr(sgc_last_error(), "request 2") || !strstr(sgc_last_error(), "count"))
			fail_msg("rank %d: the last error does not name request 2 and the count: %s", r,
				 sgc_last_error());
		assert_int_equal(st[0], 0);
		assert_int_equal(st[1], 0);
		assert_int_equal(st[2], -SGC_EMISMATCH);
		for (k = 3; k <= NMIX; k++)
			assert_int_equal(st[k], 0);
		for (k = 0; k <= NMIX; k++)
			assert_null(arr[k]);
		for (k = 2; k < NMIX; k++)
			check_mix(&j, r, k);
		assert_int_equal(j.c[r]->colls.nposted, 0);
	}
	job_close(&j);
	(void)state;
}

/*
 * Rank 1 alone enters an ibarrier: sgc_testany says not done and returns
 * at once; sgc_waitall blocks (here: the virtual clock runs for rank 1
 * alone) and fails with -ETIMEDOUT at the timeout, not before.
 */
static void test_waitall_timeout(void **state)
{
	struct job j;
	sgc_request *arr[2] = { NULL, NULL };
	uint64_t t0;
	int idx, done, st[2];

	job_open(&j);
	assert_int_equal(sgc_ibarrier(j.c[1], &arr[1]), 0);
	t0 = fake_now();
	assert_int_equal(sgc_testany(2, arr, &idx, &done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(fake_now(), t0);
	assert_int_equal(sgc_waitall(2, arr, st), -ETIMEDOUT);
	assert_int_equal(st[0], 0);
	assert_int_equal(st[1], -ETIMEDOUT);
	assert_null(arr[1]);
	assert_true(fake_now() - t0 >= TIMEOUT_NS);
	if (!strstr(sgc_last_error(), "sgc_waitall: request 1: collective #0 (barrier") ||
	    !strstr(sgc_last_error(), "2000 ms"))
		fail_msg("the last error does not name request 1, the barrier and the timeout: %s",
			 sgc_last_error());
	job_close(&j);
	(void)state;
}

/*
 * Requests outlive their communicator: the outstanding ones finish with
 * -ECANCELED, the finished ones keep their result, and neither kind
 * touches the freed communicator again (ASan in `make sanitize`).
 */
static void test_after_finalize(void **state)
{
	struct job j;
	sgc_request *done_reqs[WORLD], *open_reqs[2];
	int r, idx, done, st[WORLD];

	job_open(&j);
	for (r = 0; r < WORLD; r++)
		assert_int_equal(sgc_ibarrier(j.c[r], &j.req[r][0]), 0);
	assert_true(fake_run_until(all_done, &j, RUN_NS));
	for (r = 0; r < WORLD; r++)
		done_reqs[r] = j.req[r][0];
	/* Two more that cannot finish: rank 1 alone. */
	assert_int_equal(sgc_ibarrier(j.c[1], &open_reqs[0]), 0);
	assert_int_equal(sgc_ireduce(j.c[1], j.send[1][0], NULL, 4, SGC_INT32, SGC_SUM, 0,
				     &open_reqs[1]), 0);
	job_close(&j);
	assert_int_equal(sgc_testany(2, open_reqs, &idx, &done), -ECANCELED);
	assert_int_equal(done, 1);
	assert_int_equal(idx, 0);
	assert_non_null(strstr(sgc_last_error(), "finalized"));
	assert_int_equal(sgc_waitall(2, open_reqs, st), -ECANCELED);
	assert_int_equal(st[0], 0);	/* NULL by now */
	assert_int_equal(st[1], -ECANCELED);
	assert_int_equal(sgc_waitall(WORLD, done_reqs, st), 0);
	for (r = 0; r < WORLD; r++)
		assert_int_equal(st[r], 0);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arg_errors),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_testany_mix),
		cmocka_unit_test(test_waitall_statuses),
		cmocka_unit_test(test_waitall_timeout),
		cmocka_unit_test(test_after_finalize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

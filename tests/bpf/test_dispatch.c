// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_dispatch (libsgcoll/bpf/dispatch.bpf.c) on crafted frames, through
 * BPF_PROG_RUN: two coordinators' gather_progs in two slots, each frame
 * must reach exactly the one it is addressed to (seen in their counters),
 * and everything else must pass untouched without reaching either.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "dispatch.skel.h"

#define SLOT_A	2
#define SLOT_B	5
#define PORT_B	(T_COORD_PORT + 1)

static struct dispatch *D;
static struct sgc *A, *B;
static uint8_t frame[4096];

static int put_job(struct sgc *s, uint32_t slot, uint16_t port)
{
	struct sgc_xdp_job_key key = { .ip = inet_addr(T_COORD_IP), .port = htons(port) };
	struct sgc_xdp_job job = { .slot = slot, .pid = (uint32_t)getpid() };
	int fd = bpf_program__fd(s->progs.gather_prog);

	if (bpf_map_update_elem(bpf_map__fd(D->maps.gather_slots), &slot, &fd, BPF_ANY))
		return -errno;
	return bpf_map_update_elem(bpf_map__fd(D->maps.jobs), &key, &job, BPF_ANY) ? -errno : 0;
}

static int setup(void **state)
{
	struct sgc_bpf_cfg ca = t_cfg(3, 0), cb = t_cfg(3, 0);

	(void)state;
	cb.coord_port = htons(PORT_B);
	D = dispatch__open_and_load();
	A = t_load(&ca);
	B = t_load(&cb);
	if (!D || !A || !B)
		return -1;
	if (put_job(A, SLOT_A, T_COORD_PORT) || put_job(B, SLOT_B, PORT_B)) {
		fprintf(stderr, "cannot fill the dispatcher's maps: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	dispatch__destroy(D);
	sgc__destroy(A);
	sgc__destroy(B);
	return 0;
}

/* A frame gather_prog drops as malformed (UDP length beyond the frame),
 * to @port: which coordinator counts it tells where it went. */
static void malformed_to(struct t_frame *f, uint16_t port)
{
	t_contrib(f, 1, SGC_COLL_ALLREDUCE, 1, 0, 1, SGC_INT32, SGC_SUM, 4);
	f->dport = htons(port);
	f->udp_len_delta = 40;
}

/* Run @f through the dispatcher: its verdict, and how much each
 * coordinator's @stat moved. */
static uint32_t run(const struct t_frame *f, int stat, uint64_t *da, uint64_t *db, bool *untouched)
{
	uint64_t a0[SGC_ST_MAX], a1[SGC_ST_MAX], b0[SGC_ST_MAX], b1[SGC_ST_MAX];
	struct t_run r;
	size_t len = t_build(f, frame);

	t_stats(A, a0);
	t_stats(B, b0);
	assert_int_equal(t_run_xdp(bpf_program__fd(D->progs.sgc_dispatch), frame, len, &r), 0);
	t_stats(A, a1);
	t_stats(B, b1);
	*da = a1[stat] - a0[stat];
	*db = b1[stat] - b0[stat];
	*untouched = r.out_len == len + r.meta_len && !memcmp(r.out + r.meta_len, frame, len);
	return r.retval;
}

/* Each job's datagrams reach its own gather_prog and no other. */
static void test_routes_by_port(void **state)
{
	struct t_frame f;
	uint64_t da, db;
	bool same;

	(void)state;
	malformed_to(&f, T_COORD_PORT);
	assert_int_equal(run(&f, SGC_ST_DROP_MALFORMED, &da, &db, &same), XDP_DROP);
	assert_int_equal(da, 1);
	assert_int_equal(db, 0);

	malformed_to(&f, PORT_B);
	assert_int_equal(run(&f, SGC_ST_DROP_MALFORMED, &da, &db, &same), XDP_DROP);
	assert_int_equal(da, 0);
	assert_int_equal(db, 1);

	/* IP options: still routed by its port, and gather_prog drops it. */
	malformed_to(&f, PORT_B);
	f.udp_len_delta = 0;
	f.ihl = 6;
	assert_int_equal(run(&f, SGC_ST_DROP_IP, &da, &db, &same), XDP_DROP);
	assert_int_equal(da, 0);
	assert_int_equal(db, 1);
}

/* What is no job's passes untouched and reaches no gather_prog. */
static void test_passes_the_rest(void **state)
{
	static const struct {
		const char *what;
		uint16_t port;
		uint32_t daddr;
		uint8_t ip_proto;
		uint16_t eth_proto, frag_off;
	} cases[] = {
		{ "another port", T_COORD_PORT + 2, 0, 0, 0, 0 },
		{ "another address", T_COORD_PORT, 0x0a0a0a0a, 0, 0, 0 },
		{ "TCP", T_COORD_PORT, 0, IPPROTO_TCP, 0, 0 },
		{ "ARP", T_COORD_PORT, 0, 0, ETH_P_ARP, 0 },
		{ "a later IP fragment", T_COORD_PORT, 0, 0, 0, 0x0010 },
	};
	struct t_frame f;
	uint64_t da, db, a0[SGC_ST_MAX], a1[SGC_ST_MAX];
	struct t_run r;
	size_t i;
	bool same;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		malformed_to(&f, cases[i].port);
		if (cases[i].daddr)
			f.daddr = cases[i].daddr;
		f.ip_proto = cases[i].ip_proto;
		f.eth_proto = cases[i].eth_proto;
		f.frag_off = cases[i].frag_off;
		if (run(&f, SGC_ST_PASS_FOREIGN, &da, &db, &same) != XDP_PASS || !same)
			fail_msg("%s: not passed untouched", cases[i].what);
		if (da || db)
			fail_msg("%s: reached a gather_prog", cases[i].what);
	}
	/* Shorter than Ethernet + IPv4. */
	malformed_to(&f, T_COORD_PORT);
	t_build(&f, frame);
	t_stats(A, a0);
	assert_int_equal(t_run_xdp(bpf_program__fd(D->progs.sgc_dispatch), frame, 30, &r), 0);
	t_stats(A, a1);
	assert_int_equal(r.retval, XDP_PASS);
	assert_memory_equal(a0, a1, sizeof(a0));
}

/* A job whose slot was emptied (it is leaving) gets nothing; the other
 * goes on; a slot filled again serves again. */
static void test_empty_slot(void **state)
{
	struct t_frame f;
	uint32_t k = SLOT_A;
	uint64_t da, db;
	bool same;

	(void)state;
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(D->maps.gather_slots), &k), 0);
	malformed_to(&f, T_COORD_PORT);
	assert_int_equal(run(&f, SGC_ST_DROP_MALFORMED, &da, &db, &same), XDP_PASS);
	assert_true(same);
	assert_int_equal(da, 0);
	malformed_to(&f, PORT_B);
	assert_int_equal(run(&f, SGC_ST_DROP_MALFORMED, &da, &db, &same), XDP_DROP);
	assert_int_equal(db, 1);
	assert_int_equal(put_job(A, SLOT_A, T_COORD_PORT), 0);
	malformed_to(&f, T_COORD_PORT);
	assert_int_equal(run(&f, SGC_ST_DROP_MALFORMED, &da, &db, &same), XDP_DROP);
	assert_int_equal(da, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_by_port),
		cmocka_unit_test(test_passes_the_rest),
		cmocka_unit_test(test_empty_slot),
	};

	t_require_bpf();
	return cmocka_run_group_tests_name("dispatch (two jobs)", tests, setup, teardown) ? 1 : 0;
}

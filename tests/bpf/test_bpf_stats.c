/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What gather_prog costs per datagram, from the kernel's own BPF run-time
 * statistics (run_time_ns / run_cnt of bpf_prog_info), for 363 x int32 SUM
 * contributions run through BPF_PROG_RUN:
 *   reduce    64 ranks take turns; 63 of 64 reduce, 1 of 64 completes
 *             the chunk (result copied out, datagram rewritten, metadata);
 *   dup       the same contribution again: parse, checks, tail call, lock,
 *             rejected as a duplicate (no element work);
 *   foreign   a UDP datagram to another port: parse and pass;
 *   complete  broadcasts of the same size, each of which completes its
 *             chunk: what the 1 in 64 of `reduce` costs (the RESULT
 *             written into the datagram, its UDP checksum summed).
 * (`complete` runs last: it moves the window.)
 * Statistics are enabled with BPF_ENABLE_STATS, which turns them off again
 * when its fd closes (the same switch as sysctl kernel.bpf_stats_enabled,
 * but it cannot be left on by a crash).  Prints figures, asserts nothing
 * about time.  reduce_int32_sum's own counters stay at 0: tail calls run
 * inside their caller's accounting.
 */
#include "harness.h"
#include "agg_saturating_sum.skel.h"
#include "sgcoll.h"
#include "mac.h"

#define N 100000
#define WORLD 64
#define COUNT 363

struct prog_stats {
	uint64_t ns, cnt;
};

static struct prog_stats prog_stats(int fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	struct prog_stats s = { 0, 0 };

	if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
		s.ns = info.run_time_ns;
		s.cnt = info.run_cnt;
	}
	return s;
}

static double per_run(struct prog_stats a, struct prog_stats b)
{
	return b.cnt > a.cnt ? (double)(b.ns - a.ns) / (double)(b.cnt - a.cnt) : 0.0;
}

/* What the statistics themselves cost here: an XDP program that only
 * returns XDP_PASS, run the same way. */
static double empty_prog_ns(const uint8_t *buf, size_t len)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct prog_stats a, b;
	static struct t_run res;
	int fd, i;

	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "sgc_empty", "GPL", insns, 2, NULL);
	if (fd < 0)
		return 0.0;
	a = prog_stats(fd);
	for (i = 0; i < N; i++)
		t_run_xdp(fd, buf, len, &res);
	b = prog_stats(fd);
	close(fd);
	return per_run(a, b);
}

/* Instructions of every program: as loaded (xlated), as JITed, and how
 * many the verifier walked (its limit is 1,000,000). */
static void print_sizes(struct bpf_object *obj, const char *cfgname, int only_hooks)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, obj) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);

		if (only_hooks && !strstr(bpf_program__name(p), "_prog"))
			continue;
		if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len))
			continue;
		printf("insns,cfg=%s,prog=%s,xlated=%u,jited_bytes=%u,verified=%u\n", cfgname,
		       bpf_program__name(p), info.xlated_prog_len / 8, info.jited_prog_len,
		       info.verified_insns);
	}
}

/*
 * The reduce case again on a fresh object, with or without a job key
 * (SGC_BPF_CFG_MAC: gather_prog checks each contribution's tag, computed
 * here by mac.c); gather_prog's ns per run, or < 0 when a run went wrong.
 */
static double reduce_case(int keyed)
{
	static const uint8_t key[SGC_KEY_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	static struct sgc_mac_key mk;
	static uint8_t buf[4096];
	struct sgc_bpf_cfg c = t_cfg(WORLD, keyed ? SGC_BPF_CFG_MAC : 0);
	static struct t_run res;
	struct prog_stats a, b;
	uint64_t seed = 7;
	struct t_frame f;
	struct sgc *s;
	__u32 zero = 0, k;
	int fd, i, bad = 0;

	c.chunk_bytes = COUNT * 4;
	s = t_load(&c);
	if (!s)
		return -1;
	sgc_mac_derive(key, &mk);
	if (keyed && bpf_map_update_elem(bpf_map__fd(s->maps.mac_key), &zero, &mk, BPF_ANY)) {
		sgc__destroy(s);
		return -1;
	}
	fd = bpf_program__fd(s->progs.gather_prog);
	a = prog_stats(fd);
	for (i = 0; i < N; i++) {
		uint32_t seq = (uint32_t)(i / WORLD);
		int r = i % WORLD;

		if (r == 0)
			s->bss->win.base = seq;
		t_contrib(&f, r, SGC_COLL_ALLREDUCE, seq, 0, 1, SGC_INT32, SGC_SUM, COUNT);
		for (k = 0; k < COUNT; k++) {
			uint32_t v = (uint32_t)t_rand(&seed);

			memcpy(f.body + 4 * k, &v, 4);
		}
		if (keyed)
			t_seal(&f, &mk);
		if (t_run_xdp(fd, buf, t_build(&f, buf), &res) ||
		    res.retval != (r == WORLD - 1 ? XDP_PASS : XDP_DROP))
			bad++;
	}
	b = prog_stats(fd);
	sgc__destroy(s);
	return bad ? -1 : per_run(a, b);
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

int main(void)
{
	struct sgc_bpf_cfg c;
	struct prog_stats g0, g1, g2, g3, g4, v0, v1;
	static uint8_t buf[4096];
	static struct t_run res;
	struct t_frame f;
	struct sgc *s;
	uint64_t st[SGC_ST_MAX], seed = 42;
	double empty;
	int gfd, vfd, sfd, i, fails = 0;
	uint32_t k;

	t_require_bpf();
	sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (sfd < 0)
		t_skip("BPF_ENABLE_STATS: %s", strerror(errno));
	c = t_cfg(WORLD, 0);
	c.chunk_bytes = COUNT * 4;
	s = t_load(&c);
	if (!s)
		return 1;
	gfd = bpf_program__fd(s->progs.gather_prog);
	vfd = bpf_program__fd(s->progs.reduce_int32_sum);

	/* reduce: contribution i from rank i % 64 to collective i / 64. */
	g0 = prog_stats(gfd);
	v0 = prog_stats(vfd);
	for (i = 0; i < N; i++) {
		uint32_t seq = (uint32_t)(i / WORLD);
		int r = i % WORLD;

		if (r == 0)
			s->bss->win.base = seq;
		t_contrib(&f, r, SGC_COLL_ALLREDUCE, seq, 0, 1, SGC_INT32, SGC_SUM, COUNT);
		if (i < WORLD)
			for (k = 0; k < COUNT; k++) {
				uint32_t v = (uint32_t)t_rand(&seed);

				memcpy(f.body + 4 * k, &v, 4);
			}
		if (t_run_xdp(gfd, buf, t_build(&f, buf), &res) ||
		    res.retval != (r == WORLD - 1 ? XDP_PASS : XDP_DROP))
			fails++;
	}
	g1 = prog_stats(gfd);
	v1 = prog_stats(vfd);

	/* dup: the last contribution again, N times. */
	for (i = 0; i < N; i++)
		if (t_run_xdp(gfd, buf, t_build(&f, buf), &res) || res.retval != XDP_DROP)
			fails++;
	g2 = prog_stats(gfd);

	/* foreign: another port. */
	f.dport = htons(T_COORD_PORT + 1);
	for (i = 0; i < N; i++)
		if (t_run_xdp(gfd, buf, t_build(&f, buf), &res) || res.retval != XDP_PASS)
			fails++;
	g3 = prog_stats(gfd);

	/* complete: broadcasts from rank 1, one collective each. */
	f.dport = htons(T_COORD_PORT);
	for (i = 0; i < N; i++) {
		uint32_t seq = (uint32_t)(N / WORLD + 1 + i);

		s->bss->win.base = seq;
		t_contrib(&f, 1, SGC_COLL_BCAST, seq, 0, 1, SGC_INT32, SGC_SUM, COUNT);
		f.h.arg = 1;
		if (t_run_xdp(gfd, buf, t_build(&f, buf), &res) || res.retval != XDP_PASS)
			fails++;
	}
	g4 = prog_stats(gfd);

	t_stats(s, st);
	empty = empty_prog_ns(buf, t_build(&f, buf));
	/* ns_per_run is what the kernel reports; net_ns takes off what an
	 * empty program measures (the clock reads of the accounting). */
	printf("bpf_stats,case=empty-xdp-program,ns_per_run=%.1f,note=the cost of measuring\n", empty);
	printf("bpf_stats,case=reduce,prog=gather_prog,elements=%d,dtype=int32,op=sum,world=%d,"
	       "runs=%llu,ns_per_run=%.1f,net_ns=%.1f\n", COUNT, WORLD,
	       (unsigned long long)(g1.cnt - g0.cnt), per_run(g0, g1), per_run(g0, g1) - empty);
	printf("bpf_stats,case=reduce,prog=reduce_int32_sum,runs=%llu,ns_per_run=%.1f"
	       ",note=tail-called programs are accounted to gather_prog\n",
	       (unsigned long long)(v1.cnt - v0.cnt), per_run(v0, v1));
	printf("bpf_stats,case=dup,prog=gather_prog,runs=%llu,ns_per_run=%.1f,net_ns=%.1f\n",
	       (unsigned long long)(g2.cnt - g1.cnt), per_run(g1, g2), per_run(g1, g2) - empty);
	printf("bpf_stats,case=foreign,prog=gather_prog,runs=%llu,ns_per_run=%.1f,net_ns=%.1f\n",
	       (unsigned long long)(g3.cnt - g2.cnt), per_run(g2, g3), per_run(g2, g3) - empty);
	printf("bpf_stats,case=complete,prog=gather_prog,elements=%d,dtype=int32,runs=%llu,"
	       "ns_per_run=%.1f,net_ns=%.1f\n", COUNT, (unsigned long long)(g4.cnt - g3.cnt),
	       per_run(g3, g4), per_run(g3, g4) - empty);
	printf("bpf_stats,case=reduce-minus-dup,ns_per_contribution=%.1f,ns_per_element=%.2f\n",
	       per_run(g0, g1) - per_run(g1, g2), (per_run(g0, g1) - per_run(g1, g2)) / COUNT);
	printf("counters: REDUCED %llu COMPLETED %llu DROP_DUP %llu PASS_FOREIGN %llu\n",
	       (unsigned long long)st[SGC_ST_REDUCED], (unsigned long long)st[SGC_ST_COMPLETED],
	       (unsigned long long)st[SGC_ST_DROP_DUP], (unsigned long long)st[SGC_ST_PASS_FOREIGN]);
	print_sizes(s->obj, "socket", 0);
	{
		struct agg_saturating_sum *u = agg_saturating_sum__open();

		if (u && !bpf_map__reuse_fd(u->maps.slots, bpf_map__fd(s->maps.slots)) &&
		    !bpf_map__reuse_fd(u->maps.stats, bpf_map__fd(s->maps.stats)) &&
		    !bpf_map__reuse_fd(u->maps.events, bpf_map__fd(s->maps.events)) &&
		    !bpf_map__reuse_fd(u->maps.jobs, bpf_map__fd(s->maps.jobs)) &&
		    !agg_saturating_sum__load(u))
			print_sizes(u->obj, "custom", 0);
		agg_saturating_sum__destroy(u);
	}
	sgc__destroy(s);
	/* Every delivery branch live: the hooks at their largest. */
	c = t_cfg(SGC_MAX_WORLD, SGC_BPF_CFG_RINGBUF | SGC_BPF_CFG_ALLGATHER);
	s = t_load(&c);
	if (s)
		print_sizes(s->obj, "ringbuf+allgather", 1);
	sgc__destroy(s);
	/* What the job key costs gather_prog: the reduce case without and
	 * with it, alternating. */
	{
		double plain[5], keyed[5];

		for (i = 0; i < 5; i++) {
			plain[i] = reduce_case(0);
			keyed[i] = reduce_case(1);
			if (plain[i] < 0 || keyed[i] < 0)
				fails++;
		}
		qsort(plain, 5, sizeof(plain[0]), cmp_double);
		qsort(keyed, 5, sizeof(keyed[0]), cmp_double);
		printf("bpf_stats,case=reduce-no-key,prog=gather_prog,elements=%d,runs=5x%d,"
		       "ns_per_run_median=%.1f,min=%.1f,max=%.1f\n", COUNT, N, plain[2], plain[0],
		       plain[4]);
		printf("bpf_stats,case=reduce-job-key,prog=gather_prog,elements=%d,runs=5x%d,"
		       "ns_per_run_median=%.1f,min=%.1f,max=%.1f,ratio_median=%.2f,net_ratio=%.2f\n",
		       COUNT, N, keyed[2], keyed[0], keyed[4], keyed[2] / plain[2],
		       (keyed[2] - empty) / (plain[2] - empty));
	}
	close(sfd);
	if (fails || st[SGC_ST_REDUCED] != 2 * N || st[SGC_ST_COMPLETED] != N / WORLD + N ||
	    st[SGC_ST_DROP_DUP] != N || st[SGC_ST_PASS_FOREIGN] != N) {
		fprintf(stderr, "FAIL: %d runs with an unexpected verdict or counters\n", fails);
		return 1;
	}
	return 0;
}

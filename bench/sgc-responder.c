// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc-responder - attach the XDP responder (responder.bpf.c) to every worker
 * host of a virtual cluster made by tools/sgc-cluster, so that the worker
 * hosts answer queries in the kernel and the coordinator is what a
 * benchmark measures.
 *
 *   sgc-responder --cluster NAME --hosts H [options]   attach, wait, detach
 *   sgc-responder --selftest                           check the program on
 *                                                      crafted frames (no network)
 *
 * One process holds every attachment as a BPF link: responder_prog (native
 * XDP) and responder_tc (tcx ingress, for frames XDP cannot grow) on eth0
 * of NAME-w1..NAME-wH, pass_prog on the switch side of those veth pairs
 * (NAME-sw: w1..wH; XDP_TX into a veth needs XDP on its peer).
 * It prints "sgc-responder: ready" once everything is attached, then waits
 * for SIGINT/SIGTERM or the deadline; the links go away with the process,
 * also when it is killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sgcoll/abi.h"
#include "sgcoll/wire.h"
#include "bench_proto.h"
#include "responder.skel.h"

#define MAX_HOSTS	1024
/* libbpf 1.1 and Debian 12's uapi headers predate tcx (kernel 6.6). */
#define BENCH_BPF_TCX_INGRESS	46
#define DEFAULT_DEADLINE_S 3600

static const char *const stat_names[BENCH_RST_MAX] = {
	[BENCH_RST_SIMPLE] = "simple_answered",
	[BENCH_RST_SGC_QUERY] = "sgc_query_answered",
	[BENCH_RST_SGC_HELD] = "sgc_query_held",
	[BENCH_RST_SGC_PULL] = "sgc_pull_answered",
	[BENCH_RST_WELCOME] = "sgc_welcome_seen",
	[BENCH_RST_PASS] = "passed",
	[BENCH_RST_OTHER] = "other",
	[BENCH_RST_BAD] = "malformed",
	[BENCH_RST_XDP_SMALL] = "xdp_too_small",
	[BENCH_RST_TC] = "tc_answered",
	[BENCH_RST_TC_GROW_FAIL] = "tc_grow_failed",
	[BENCH_RST_AR_RESULT] = "ar_result_answered",
	[BENCH_RST_AR_PULL] = "ar_pull_answered",
	[BENCH_RST_AR_HELD] = "ar_result_held",
};

static const char *const msg_names[] = {
	[SGC_MSG_HELLO] = "hello", [SGC_MSG_WELCOME] = "welcome", [SGC_MSG_READY] = "ready",
	[SGC_MSG_CONTRIB] = "contrib", [SGC_MSG_RESULT] = "result", [SGC_MSG_PULL] = "pull",
	[SGC_MSG_QUERY] = "query", [SGC_MSG_NACK] = "nack", [SGC_MSG_ABORT] = "abort",
	[SGC_MSG_BYE] = "bye", [SGC_MSG_BYE_ACK] = "bye_ack", [SGC_MSG_ACK] = "ack",
	[SGC_MSG_WAIT] = "wait",
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sgc-responder --cluster NAME --hosts H [--max-rank N] [--sgc-port P]\n"
		"                     [--simple-port P] [--no-sgc] [--no-simple] [--deadline S]\n"
		"                     [--allreduce-window W --allreduce-count N]\n"
		"       sgc-responder --selftest\n"
		"Attaches the XDP responder to eth0 of NAME-w1..NAME-wH (and XDP_PASS to\n"
		"their switch ports), prints \"sgc-responder: ready\", and detaches on\n"
		"SIGINT/SIGTERM or after the deadline (default %d s).\n"
		"With --allreduce-window it also contributes to allreduces of N (<= %d) int32\n"
		"in one chunk: the result of collective s by the contribution to s + W\n"
		"(sgc_bench --responder --mode tput --window W).\n",
		DEFAULT_DEADLINE_S, BENCH_MAX_ELEMS);
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static int enter_netns(const char *name)
{
	char path[PATH_MAX];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "sgc-responder: cannot open %s: %s\n", path, strerror(-err));
		return err;
	}
	if (setns(fd, CLONE_NEWNET)) {
		err = -errno;
		fprintf(stderr, "sgc-responder: cannot enter %s: %s\n", name, strerror(errno));
	}
	close(fd);
	return err;
}

/*
 * Links @prog_fd to @ifname in namespace @ns: native (driver) XDP only, as
 * generic XDP would measure something else; or tcx ingress.
 */
static int attach(int prog_fd, const char *ns, const char *ifname, bool tc)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
	unsigned int ifindex;
	int err, fd;

	err = enter_netns(ns);
	if (err)
		return err;
	ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		fprintf(stderr, "sgc-responder: no interface %s in %s\n", ifname, ns);
		return -ENODEV;
	}
	if (tc)
		fd = bpf_link_create(prog_fd, (int)ifindex, BENCH_BPF_TCX_INGRESS, NULL);
	else
		fd = bpf_link_create(prog_fd, (int)ifindex, BPF_XDP, &opts);
	if (fd < 0)
		fprintf(stderr, "sgc-responder: cannot attach %s to %s in %s: %s\n",
			tc ? "tcx ingress" : "native XDP", ifname, ns, strerror(-fd));
	return fd;
}

static void print_stats(struct responder *skel, FILE *f)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;
	__u32 k;

	if (ncpu <= 0)
		return;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return;
	fprintf(f, "sgc-responder: counters:");
	for (k = 0; k < BENCH_RST_MAX; k++) {
		__u64 sum = 0;
		int c;

		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &k, vals))
			continue;
		for (c = 0; c < ncpu; c++)
			sum += vals[c];
		fprintf(f, " %s=%llu", stat_names[k], (unsigned long long)sum);
	}
	/* What the worker processes still got, by libsgcoll message type. */
	fprintf(f, "\nsgc-responder: passed to the worker processes, by type:");
	for (k = 0; k < SGC_MSG_MAX; k++) {
		__u64 sum = 0;
		int c;

		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.sgc_passed), &k, vals))
			continue;
		for (c = 0; c < ncpu; c++)
			sum += vals[c];
		if (sum)
			fprintf(f, " %s=%llu", k < sizeof(msg_names) / sizeof(msg_names[0]) &&
				msg_names[k] ? msg_names[k] : "other", (unsigned long long)sum);
	}
	fprintf(f, "\n");
	free(vals);
}

/* ---- self test: crafted frames through BPF_PROG_TEST_RUN ---- */

struct frame {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	unsigned char payload[4096];
} __attribute__((packed));

static size_t craft(struct frame *f, unsigned short dport, const void *payload, size_t len)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->eth.h_dest, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);
	memcpy(f->eth.h_source, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	f->eth.h_proto = htons(ETH_P_IP);
	f->ip.version = 4;
	f->ip.ihl = 5;
	f->ip.ttl = 64;
	f->ip.protocol = IPPROTO_UDP;
	f->ip.saddr = htonl(0x0a000001);
	f->ip.daddr = htonl(0x0a000101);
	f->ip.tot_len = htons((unsigned short)(sizeof(f->ip) + sizeof(f->udp) + len));
	f->udp.source = htons(4242);
	f->udp.dest = htons(dport);
	f->udp.len = htons((unsigned short)(sizeof(f->udp) + len));
	memcpy(f->payload, payload, len);
	return sizeof(f->eth) + sizeof(f->ip) + sizeof(f->udp) + len;
}

static int run(int prog_fd, struct frame *in, size_t len, struct frame *out, __u32 *out_len,
	       __u32 *verdict)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = sizeof(*out), .repeat = 1);
	int err = bpf_prog_test_run_opts(prog_fd, &o);

	*out_len = o.data_size_out;
	*verdict = o.retval;
	return err;
}

static int check_body(const unsigned char *body, __u32 rank, __u32 id, __u32 count)
{
	__u32 i, v;

	for (i = 0; i < count; i++) {
		memcpy(&v, body + 4 * i, 4);
		if (v != bench_contrib(rank, id, i)) {
			fprintf(stderr, "selftest: element %u of rank %u id %u is %u, want %u\n", i,
				rank, id, v, bench_contrib(rank, id, i));
			return -1;
		}
	}
	return 0;
}

static int check_turned(const struct frame *out, __u32 out_len, size_t payload)
{
	if (out_len != sizeof(out->eth) + sizeof(out->ip) + sizeof(out->udp) + payload ||
	    ntohs(out->udp.source) == 4242 || ntohs(out->udp.dest) != 4242 ||
	    out->ip.daddr != htonl(0x0a000001) || ntohs(out->udp.len) != 8 + payload ||
	    ntohs(out->ip.tot_len) != 28 + payload || memcmp(out->eth.h_dest, "\x02\x00\x00\x00\x00\x01", 6)) {
		fprintf(stderr, "selftest: answer frame is wrong (len %u, want %zu)\n", out_len,
			sizeof(out->eth) + sizeof(out->ip) + sizeof(out->udp) + payload);
		return -1;
	}
	return 0;
}

static void sg_hdr(struct sgc_hdr *h, __u8 type, __u64 job_id, __u32 seq)
{
	memset(h, 0, sizeof(*h));
	h->magic = SGC_WIRE_MAGIC;
	h->version = SGC_WIRE_VERSION;
	h->type = type;
	h->job_id = job_id;
	h->seq = seq;
	h->nchunks = 1;
}

static int check_contrib(const struct frame *out, __u32 out_len, __u64 job_id, __u32 seq,
			 __u32 rank, __u32 id)
{
	struct sgc_hdr r;

	if (check_turned(out, out_len, SGC_HDR_SIZE + 4 * BENCH_COUNT))
		return -1;
	memcpy(&r, out->payload, sizeof(r));
	if (r.magic != SGC_WIRE_MAGIC || r.type != SGC_MSG_CONTRIB || r.seq != seq ||
	    r.job_id != job_id || r.rank != rank || r.count != BENCH_COUNT || r.chunk != 0 ||
	    r.nchunks != 1 || r.coll != SGC_COLL_QUERY || r.dtype != 4 || r.arg != 599 ||
	    r.flags || r.stamp) {
		fprintf(stderr, "selftest: CONTRIB header is wrong\n");
		return -1;
	}
	return check_body(out->payload + SGC_HDR_SIZE, rank, id, BENCH_COUNT);
}

/* A one-chunk int32 QUERY for @rank through the XDP program: its verdict. */
static int run_query(int fd, struct frame *in, struct frame *out, __u64 job_id, __u32 seq,
		     __u16 flags, __u32 rank, const struct bench_sg_query *q, __u32 *out_len,
		     __u32 *verdict)
{
	unsigned char pl[sizeof(struct sgc_hdr) + sizeof(*q)];
	struct sgc_hdr h;
	size_t len;

	sg_hdr(&h, SGC_MSG_QUERY, job_id, seq);
	h.flags = flags;
	h.dtype = 4;	/* SGC_INT32 */
	h.aux = BENCH_COUNT;
	h.arg = 599;
	memcpy(pl, &h, sizeof(h));
	memcpy(pl + sizeof(h), q, sizeof(*q));
	len = craft(in, BENCH_SGC_PORT + rank, pl, sizeof(pl));
	return run(fd, in, len, out, out_len, verdict);
}

/* A WELCOME of job @job_id with push credit @credit to @rank through the
 * XDP program, which learns the job from it and passes it on; 0 if so. */
static int run_welcome(int fd, struct frame *in, struct frame *out, __u64 job_id, __u32 rank,
		       __u16 credit)
{
	struct sgc_welcome w = { .chunk_bytes = 1456, .world = 600, .push_credit = credit };
	unsigned char pl[sizeof(struct sgc_hdr) + sizeof(w)];
	struct sgc_hdr h;
	__u32 out_len, verdict;
	size_t len;

	sg_hdr(&h, SGC_MSG_WELCOME, job_id, 0);
	h.arg = 600;
	memcpy(pl, &h, sizeof(h));
	memcpy(pl + sizeof(h), &w, sizeof(w));
	len = craft(in, BENCH_SGC_PORT + rank, pl, sizeof(pl));
	if (run(fd, in, len, out, &out_len, &verdict) || verdict != XDP_PASS) {
		fprintf(stderr, "selftest: WELCOME (credit %u) not passed (verdict %u)\n", credit,
			verdict);
		return -1;
	}
	return 0;
}

/* libsgcoll's flow: WELCOME, QUERY answered at once (credit) or held and
 * answered to the PULL, by XDP and by TC; a STOP query is not answered. */
static int selftest_sgc(int fd, int fd_tc, struct frame *in, struct frame *out, __u16 credit)
{
	unsigned char pl[2048];
	struct sgc_hdr h;
	struct bench_sg_query q = { .magic = BENCH_SGQ_MAGIC, .id = 99 };
	__u32 out_len, verdict, rank = 517, seq = 3;
	__u64 job_id = 0x1122334455667788ULL + credit;
	size_t len;

	if (run_welcome(fd, in, out, job_id, rank, credit))
		return -1;

	if (run_query(fd, in, out, job_id, seq, 0, rank, &q, &out_len, &verdict))
		return -1;
	if (!credit) {
		if (verdict != XDP_DROP) {
			fprintf(stderr, "selftest: QUERY with credit 0 not held (verdict %u)\n", verdict);
			return -1;
		}
		sg_hdr(&h, SGC_MSG_PULL, job_id, seq);
		h.coll = SGC_COLL_QUERY;
		h.dtype = 4;
		h.aux = 1;
		h.arg = 599;
		h.rank = (__u16)rank;
		len = craft(in, BENCH_SGC_PORT + rank, &h, sizeof(h));
		if (run(fd_tc, in, len, out, &out_len, &verdict))
			return -1;
		if (verdict != TC_ACT_REDIRECT) {
			fprintf(stderr, "selftest: PULL not answered by TC (verdict %u)\n", verdict);
			return -1;
		}
		if (check_contrib(out, out_len, job_id, seq, rank, q.id))
			return -1;
		if (run(fd, in, len, out, &out_len, &verdict))
			return -1;
	}
	if (verdict != XDP_TX) {
		fprintf(stderr, "selftest: sgc query (credit %u) not answered (verdict %u)\n", credit,
			verdict);
		return -1;
	}
	if (check_contrib(out, out_len, job_id, seq, rank, q.id))
		return -1;

	/* A query with SGC_F_ASK is answered at once, credit or not. */
	if (run_query(fd, in, out, job_id, seq + 2, SGC_F_ASK, rank, &q, &out_len,
		      &verdict))
		return -1;
	if (verdict != XDP_TX) {
		fprintf(stderr, "selftest: SGC_F_ASK query (credit %u) not answered (verdict %u)\n",
			credit, verdict);
		return -1;
	}
	if (check_contrib(out, out_len, job_id, seq + 2, rank, q.id))
		return -1;

	/* A STOP query goes to the worker process. */
	sg_hdr(&h, SGC_MSG_QUERY, job_id, seq + 1);
	h.flags = SGC_F_STOP;
	h.dtype = 1;
	memcpy(pl, &h, sizeof(h));
	memcpy(pl + sizeof(h), &q, sizeof(q));
	len = craft(in, BENCH_SGC_PORT + rank, pl, sizeof(h) + sizeof(q));
	if (run(fd, in, len, out, &out_len, &verdict) || verdict != XDP_PASS) {
		fprintf(stderr, "selftest: STOP query not passed\n");
		return -1;
	}
	return 0;
}

/*
 * Allreduce (window 4, BENCH_COUNT elements), in a job with push credit: a
 * RESULT of seq 10 is answered by XDP with the contribution to 14
 * (watermark 11), a PULL of 12 by TC with 12's (watermark 12 + 1 - 4; 0 in
 * the first window); a DONE or another count
 * goes up.  Without push credit a RESULT is not answered (dropped), a PULL
 * is.
 */
static int selftest_ar(int fd, int fd_tc, struct frame *in, struct frame *out)
{
	static const struct {
		__u16 credit; __u8 type; __u32 seq; __u16 count, flags; int want, id, wm;
	} c[] = {
		{ 1, SGC_MSG_RESULT, 10, BENCH_COUNT, 0, XDP_TX, 14, 11 },
		{ 1, SGC_MSG_PULL, 12, 0, 0, TC_ACT_REDIRECT, 12, 9 },
		{ 1, SGC_MSG_RESULT, 10, 0, SGC_F_DONE, XDP_PASS, 0, 0 },
		{ 1, SGC_MSG_RESULT, 10, 5, 0, XDP_PASS, 0, 0 },
		{ 0, SGC_MSG_RESULT, 10, BENCH_COUNT, 0, XDP_DROP, 0, 0 },
		{ 0, SGC_MSG_PULL, 11, 0, 0, TC_ACT_REDIRECT, 11, 8 },
		{ 0, SGC_MSG_PULL, 2, 0, 0, TC_ACT_REDIRECT, 2, 0 },
	};
	unsigned char pl[sizeof(struct sgc_hdr) + 4 * BENCH_COUNT] = { 0 };
	__u32 out_len, verdict, rank = 5;
	__u64 job_id = 0;
	struct sgc_hdr h, r;
	size_t i, len;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		bool pull = c[i].type == SGC_MSG_PULL;

		if (job_id != 0xabcdef00ULL + c[i].credit) {
			job_id = 0xabcdef00ULL + c[i].credit;
			if (run_welcome(fd, in, out, job_id, rank, c[i].credit))
				return -1;
		}

		sg_hdr(&h, c[i].type, job_id, c[i].seq);
		h.coll = SGC_COLL_ALLREDUCE;
		h.dtype = 4;
		h.rank = (__u16)rank;
		h.count = c[i].count;
		h.flags = c[i].flags;
		h.aux = pull ? 1 : 0;
		memcpy(pl, &h, sizeof(h));
		len = craft(in, BENCH_SGC_PORT + rank, pl, sizeof(h) + 4u * c[i].count);
		if (run(pull ? fd_tc : fd, in, len, out, &out_len, &verdict))
			return -1;
		if ((int)verdict != c[i].want) {
			fprintf(stderr, "selftest: allreduce case %zu: verdict %u, want %d\n", i,
				verdict, c[i].want);
			return -1;
		}
		if (c[i].want == XDP_PASS || c[i].want == XDP_DROP)
			continue;
		if (check_turned(out, out_len, SGC_HDR_SIZE + 4 * BENCH_COUNT))
			return -1;
		memcpy(&r, out->payload, sizeof(r));
		if (r.type != SGC_MSG_CONTRIB || r.seq != (__u32)c[i].id || r.job_id != job_id ||
		    r.rank != rank || r.count != BENCH_COUNT || r.coll != SGC_COLL_ALLREDUCE ||
		    r.total != BENCH_COUNT || r.aux != (__u32)c[i].wm || r.nchunks != 1 || r.flags) {
			fprintf(stderr, "selftest: allreduce case %zu: CONTRIB header is wrong "
				"(seq %u, aux %u, total %u)\n", i, r.seq, r.aux, r.total);
			return -1;
		}
		if (check_body(out->payload + SGC_HDR_SIZE, rank, (__u32)c[i].id, BENCH_COUNT))
			return -1;
	}
	return 0;
}

static int selftest(void)
{
	struct responder *skel = responder__open();
	struct frame *in = calloc(1, sizeof(*in)), *out = calloc(1, sizeof(*out));
	struct bench_msg m = { .magic = BENCH_MAGIC, .id = 7, .rank = 3, .count = BENCH_COUNT };
	__u32 out_len, verdict;
	int fd, fd_tc, err = -1;
	size_t len;

	if (skel) {
		bpf_program__set_expected_attach_type(skel->progs.responder_tc,
						      BENCH_BPF_TCX_INGRESS);
		skel->rodata->cfg.ar_window = 4;
		skel->rodata->cfg.ar_count = BENCH_COUNT;
	}
	if (!skel || !in || !out || responder__load(skel)) {
		fprintf(stderr, "selftest: skipped: cannot load the responder's BPF programs (%s); "
			"run as root on a kernel with BPF\n", geteuid() ? "not root" : "load failed");
		/* 77: ctest's skip code, for a machine that cannot do it. */
		err = 77;
		goto out;
	}
	fd = bpf_program__fd(skel->progs.responder_prog);
	fd_tc = bpf_program__fd(skel->progs.responder_tc);

	len = craft(in, BENCH_SIMPLE_PORT + 3, &m, sizeof(m));
	if (run(fd, in, len, out, &out_len, &verdict) || verdict != XDP_TX) {
		fprintf(stderr, "selftest: simple query not answered (verdict %u)\n", verdict);
		goto out;
	}
	if (check_turned(out, out_len, sizeof(m) + 4 * BENCH_COUNT))
		goto out;
	memcpy(&m, out->payload, sizeof(m));
	if (m.magic != BENCH_MAGIC || m.id != 7 || m.rank != 3 || m.count != BENCH_COUNT ||
	    m.flags != BENCH_F_RESP) {
		fprintf(stderr, "selftest: simple answer header is wrong\n");
		goto out;
	}
	if (check_body(out->payload + sizeof(m), 3, 7, BENCH_COUNT))
		goto out;

	/* Wrong rank slot for the port: not ours to answer. */
	m = (struct bench_msg){ .magic = BENCH_MAGIC, .id = 7, .rank = 4, .count = BENCH_COUNT };
	len = craft(in, BENCH_SIMPLE_PORT + 3, &m, sizeof(m));
	if (run(fd, in, len, out, &out_len, &verdict) || verdict != XDP_PASS) {
		fprintf(stderr, "selftest: mismatched rank slot was answered\n");
		goto out;
	}
	/* An unpadded query, as TC gets it when XDP cannot grow the frame. */
	m = (struct bench_msg){ .magic = BENCH_MAGIC, .id = 8, .rank = 3, .count = BENCH_COUNT };
	len = craft(in, BENCH_SIMPLE_PORT + 3, &m, sizeof(m));
	if (run(fd_tc, in, len, out, &out_len, &verdict) || verdict != TC_ACT_REDIRECT) {
		fprintf(stderr, "selftest: simple query not answered by TC (verdict %u)\n", verdict);
		goto out;
	}
	if (check_turned(out, out_len, sizeof(m) + 4 * BENCH_COUNT) ||
	    check_body(out->payload + sizeof(m), 3, 8, BENCH_COUNT))
		goto out;
	if (selftest_sgc(fd, fd_tc, in, out, 1) || selftest_sgc(fd, fd_tc, in, out, 0) ||
	    selftest_ar(fd, fd_tc, in, out))
		goto out;
	printf("sgc-responder: selftest passed\n");
	err = 0;
out:
	free(in);
	free(out);
	responder__destroy(skel);
	return err == 77 ? 77 : err ? 1 : 0;
}

/* ---- attach and wait ---- */

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'c' },
		{ "hosts", required_argument, NULL, 'H' },
		{ "max-rank", required_argument, NULL, 'm' },
		{ "sgc-port", required_argument, NULL, 'p' },
		{ "simple-port", required_argument, NULL, 'P' },
		{ "no-sgc", no_argument, NULL, 'S' },
		{ "no-simple", no_argument, NULL, 's' },
		{ "allreduce-window", required_argument, NULL, 'w' },
		{ "allreduce-count", required_argument, NULL, 'n' },
		{ "deadline", required_argument, NULL, 'd' },
		{ "selftest", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct bench_resp_cfg cfg = {
		.sgc_port = BENCH_SGC_PORT,
		.simple_port = BENCH_SIMPLE_PORT,
		.max_rank = SGC_MAX_WORLD - 1,
		.flags = BENCH_RESP_SIMPLE | BENCH_RESP_SGC,
	};
	const char *cluster = NULL;
	long hosts = 0, deadline = DEFAULT_DEADLINE_S;
	struct responder *skel = NULL;
	int *links = NULL, nlinks = 0, self_ns = -1, opt, i, rc = 1, sig;
	struct timespec ts;
	sigset_t set;
	char ns[128], ifname[IF_NAMESIZE];

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': cluster = optarg; break;
		case 'H': hosts = strtol(optarg, NULL, 10); break;
		case 'm': cfg.max_rank = (__u16)strtoul(optarg, NULL, 10); break;
		case 'p': cfg.sgc_port = (__u16)strtoul(optarg, NULL, 10); break;
		case 'P': cfg.simple_port = (__u16)strtoul(optarg, NULL, 10); break;
		case 'S': cfg.flags &= (__u16)~BENCH_RESP_SGC; break;
		case 's': cfg.flags &= (__u16)~BENCH_RESP_SIMPLE; break;
		case 'w': cfg.ar_window = (__u16)strtoul(optarg, NULL, 10); break;
		case 'n': cfg.ar_count = (__u16)strtoul(optarg, NULL, 10); break;
		case 'd': deadline = strtol(optarg, NULL, 10); break;
		case 't':
			libbpf_set_print(libbpf_quiet);
			return selftest();
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cluster || hosts < 1 || hosts > MAX_HOSTS || deadline < 1 || !cfg.max_rank) {
		usage(stderr);
		return 2;
	}
	if (!cfg.ar_window != !cfg.ar_count || cfg.ar_count > BENCH_MAX_ELEMS ||
	    cfg.ar_window > SGC_BPF_RING_SEQ / 2) {
		fprintf(stderr, "sgc-responder: --allreduce-window (1..%d) and --allreduce-count "
			"(1..%d) go together\n", SGC_BPF_RING_SEQ / 2, BENCH_MAX_ELEMS);
		return 2;
	}
	libbpf_set_print(libbpf_quiet);

	/* Block the signals now: they are taken with sigtimedwait() below. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	skel = responder__open();
	if (!skel) {
		fprintf(stderr, "sgc-responder: cannot open the BPF object\n");
		goto out;
	}
	skel->rodata->cfg = cfg;
	bpf_program__set_expected_attach_type(skel->progs.responder_tc, BENCH_BPF_TCX_INGRESS);
	if (responder__load(skel)) {
		fprintf(stderr, "sgc-responder: cannot load the BPF object (root needed)\n");
		goto out;
	}
	links = calloc((size_t)hosts * 3, sizeof(*links));
	self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!links || self_ns < 0) {
		fprintf(stderr, "sgc-responder: out of memory or no /proc/self/ns/net\n");
		goto out;
	}
	for (i = 1; i <= hosts; i++) {
		int fd;

		/* The switch side first: answers must never meet a peer without XDP. */
		snprintf(ns, sizeof(ns), "%s-sw", cluster);
		snprintf(ifname, sizeof(ifname), "w%d", i);
		fd = attach(bpf_program__fd(skel->progs.pass_prog), ns, ifname, false);
		if (fd < 0)
			goto out;
		links[nlinks++] = fd;
		snprintf(ns, sizeof(ns), "%s-w%d", cluster, i);
		fd = attach(bpf_program__fd(skel->progs.responder_prog), ns, "eth0", false);
		if (fd < 0)
			goto out;
		links[nlinks++] = fd;
		fd = attach(bpf_program__fd(skel->progs.responder_tc), ns, "eth0", true);
		if (fd < 0)
			goto out;
		links[nlinks++] = fd;
	}
	if (setns(self_ns, CLONE_NEWNET)) {
		fprintf(stderr, "sgc-responder: cannot return to our namespace: %s\n", strerror(errno));
		goto out;
	}
	printf("sgc-responder: ready: %ld hosts of %s, ranks 1..%u, sgc port %u+r%s, simple port %u+r%s, "
	       "allreduce %s (window %u, %u x int32)\n",
	       hosts, cluster, cfg.max_rank, cfg.sgc_port,
	       cfg.flags & BENCH_RESP_SGC ? "" : " (off)", cfg.simple_port,
	       cfg.flags & BENCH_RESP_SIMPLE ? "" : " (off)", cfg.ar_window ? "on" : "off",
	       cfg.ar_window, cfg.ar_count);
	fflush(stdout);

	ts.tv_sec = deadline;
	ts.tv_nsec = 0;
	sig = sigtimedwait(&set, NULL, &ts);
	if (sig < 0 && errno == EAGAIN)
		fprintf(stderr, "sgc-responder: deadline of %ld s reached, detaching\n", deadline);
	print_stats(skel, stdout);
	rc = 0;
out:
	for (i = 0; i < nlinks; i++)
		close(links[i]);
	free(links);
	if (self_ns >= 0)
		close(self_ns);
	responder__destroy(skel);
	return rc;
}

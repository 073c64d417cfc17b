// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc-faultinj - inject loss, duplication, reordering and corruption of
 * IPv4 UDP (or TCP, or any IPv4) packets on a device.
 *
 * Loads faultinj.bpf.c, attaches it with tcx links (which the kernel drops
 * when this process exits, however it exits), prints "attached", waits for
 * SIGINT/SIGTERM or --duration, then prints the counters on one line.
 *
 * libbpf 1.1 has no tcx API: the programs get the tcx attach types by
 * number and are attached with bpf_link_create().
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "faultinj.skel.h"

/* enum bpf_attach_type values newer than this system's uapi headers */
#define SGC_BPF_TCX_INGRESS	46
#define SGC_BPF_TCX_EGRESS	47

#define PPM_ONE			1000000u
/* longest wait between two checks of the deadline, in seconds */
#define WAIT_SLICE_S		1

struct options {
	const char *dev;
	bool ingress;
	bool egress;
	__u32 loss_ppm;
	__u32 dup_ppm;
	__u32 corrupt_ppm;
	__u32 reorder_ppm;
	__u16 port;
	__u32 proto;		/* IPPROTO_UDP, IPPROTO_TCP, 0: any */
	unsigned long duration_s;	/* 0: until a signal */
	bool verbose;
};

static bool verbose;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sgc-faultinj --dev IFNAME [--dir ingress|egress|both]\n"
		"                    [--loss RATE] [--dup RATE] [--corrupt RATE]\n"
		"                    [--reorder RATE]\n"
		"                    [--proto udp|tcp|any] [--port PORT]\n"
		"                    [--duration SECONDS] [--verbose]\n"
		"\n"
		"Faults IPv4 packets of one protocol on IFNAME: UDP (the default),\n"
		"TCP, or any IPv4 packet; all of them, or only the UDP and TCP ones\n"
		"with PORT as source or destination port.  RATE is a probability from\n"
		"0 to 1 (e.g. 0.05), applied per packet.  Direction defaults to\n"
		"both.  Prints \"attached\" once active; on SIGINT/SIGTERM or after\n"
		"SECONDS it prints the counters and exits, detaching.\n"
		"\n"
		"--reorder holds a packet (one per direction and CPU) at RATE and\n"
		"sends it right after the next matching packet, so that the two\n"
		"arrive swapped; until that next packet the held one is delayed.\n"
		"--corrupt changes UDP and TCP payloads only.\n"
		"\n"
		"On lo, a packet crosses egress and ingress once each: fault one\n"
		"direction for a per-packet rate.  Ingress drops silently, as a\n"
		"wire does; a drop at egress is reported to a local sender (TCP\n"
		"sends again at once rather than recovering a loss).\n");
}

static int parse_rate(const char *s, __u32 *ppm)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0))
		return -EINVAL;
	*ppm = (__u32)(v * PPM_ONE + 0.5);
	return 0;
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "dir", required_argument, NULL, 'D' },
		{ "loss", required_argument, NULL, 'l' },
		{ "dup", required_argument, NULL, 'u' },
		{ "corrupt", required_argument, NULL, 'c' },
		{ "reorder", required_argument, NULL, 'r' },
		{ "port", required_argument, NULL, 'p' },
		{ "proto", required_argument, NULL, 'P' },
		{ "duration", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	int opt;

	o->ingress = true;
	o->egress = true;
	o->proto = IPPROTO_UDP;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o->dev = optarg;
			break;
		case 'D':
			if (!strcmp(optarg, "ingress")) {
				o->ingress = true;
				o->egress = false;
			} else if (!strcmp(optarg, "egress")) {
				o->ingress = false;
				o->egress = true;
			} else if (!strcmp(optarg, "both")) {
				o->ingress = true;
				o->egress = true;
			} else {
				fprintf(stderr, "sgc-faultinj: --dir must be ingress, egress or both\n");
				return -EINVAL;
			}
			break;
		case 'l':
		case 'u':
		case 'c':
		case 'r':
			if (parse_rate(optarg, opt == 'l' ? &o->loss_ppm :
					       opt == 'u' ? &o->dup_ppm :
					       opt == 'r' ? &o->reorder_ppm :
							    &o->corrupt_ppm)) {
				fprintf(stderr, "sgc-faultinj: bad rate '%s': expected a number from 0 to 1\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'p':
			if (parse_ulong(optarg, 65535, &v)) {
				fprintf(stderr, "sgc-faultinj: bad port '%s'\n", optarg);
				return -EINVAL;
			}
			o->port = (__u16)v;
			break;
		case 'P':
			if (!strcmp(optarg, "udp")) {
				o->proto = IPPROTO_UDP;
			} else if (!strcmp(optarg, "tcp")) {
				o->proto = IPPROTO_TCP;
			} else if (!strcmp(optarg, "any")) {
				o->proto = 0;
			} else {
				fprintf(stderr, "sgc-faultinj: --proto must be udp, tcp or any\n");
				return -EINVAL;
			}
			break;
		case 't':
			if (parse_ulong(optarg, INT_MAX, &v)) {
				fprintf(stderr, "sgc-faultinj: bad duration '%s': expected whole seconds\n",
					optarg);
				return -EINVAL;
			}
			o->duration_s = v;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sgc-faultinj: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->dev) {
		fprintf(stderr, "sgc-faultinj: --dev is required\n");
		return -EINVAL;
	}
	return 0;
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt,
			va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int attach_tcx(struct bpf_program *prog, int ifindex, int type,
		      const char *dev, const char *dir)
{
	int fd;

	fd = bpf_link_create(bpf_program__fd(prog), ifindex, type, NULL);
	if (fd < 0) {
		fd = -errno;
		fprintf(stderr, "sgc-faultinj: attaching to %s %s: %s%s\n",
			dev, dir, strerror(-fd),
			fd == -EINVAL ? " (kernel without tcx? needs Linux 6.6+)" : "");
	}
	return fd;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits for one of `set`'s signals or until `duration_s` (0: no limit). */
static void wait_until_done(const sigset_t *set, unsigned long duration_s)
{
	double deadline = now_s() + duration_s;
	struct timespec slice;
	double left;

	for (;;) {
		slice.tv_sec = WAIT_SLICE_S;
		slice.tv_nsec = 0;
		if (duration_s) {
			left = deadline - now_s();
			if (left <= 0)
				return;
			if (left < WAIT_SLICE_S) {
				slice.tv_sec = (time_t)left;
				slice.tv_nsec = (long)((left - slice.tv_sec) * 1e9);
			}
		}
		if (sigtimedwait(set, NULL, &slice) >= 0)
			return;
		if (errno != EAGAIN && errno != EINTR)
			return;
	}
}

static void print_stats(const struct faultinj *skel)
{
	/* .bss is mapped into our memory: these are the live counters. */
	typeof(skel->bss->stats) st = skel->bss->stats;

	printf("faultinj: passed=%llu dropped=%llu duplicated=%llu corrupted=%llu "
	       "held=%llu reordered=%llu hold_skipped=%llu\n",
	       (unsigned long long)st.passed, (unsigned long long)st.dropped,
	       (unsigned long long)st.duplicated,
	       (unsigned long long)st.corrupted, (unsigned long long)st.held,
	       (unsigned long long)st.reordered,
	       (unsigned long long)st.hold_skipped);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct faultinj *skel = NULL;
	int in_fd = -1, eg_fd = -1;
	sigset_t sigs;
	int ifindex, err;

	if (parse_args(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	verbose = o.verbose;
	libbpf_set_print(print_libbpf);

	ifindex = if_nametoindex(o.dev);
	if (!ifindex) {
		fprintf(stderr, "sgc-faultinj: no device '%s' in this network namespace\n",
			o.dev);
		return 1;
	}

	/*
	 * Block the stop signals before attaching so that one arriving early
	 * is kept for sigtimedwait() rather than killing us mid-setup; the
	 * links would go away anyway, but the counters line would not appear.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);

	skel = faultinj__open();
	if (!skel) {
		err = -errno;
		fprintf(stderr, "sgc-faultinj: opening BPF object: %s\n", strerror(-err));
		goto cleanup;
	}
	skel->bss->cfg.loss_ppm = o.loss_ppm;
	skel->bss->cfg.dup_ppm = o.dup_ppm;
	skel->bss->cfg.corrupt_ppm = o.corrupt_ppm;
	skel->bss->cfg.reorder_ppm = o.reorder_ppm;
	skel->bss->cfg.port = o.port;
	skel->bss->cfg.proto = o.proto;

	bpf_program__set_expected_attach_type(skel->progs.faultinj_ingress,
					      SGC_BPF_TCX_INGRESS);
	bpf_program__set_expected_attach_type(skel->progs.faultinj_egress,
					      SGC_BPF_TCX_EGRESS);
	bpf_program__set_autoload(skel->progs.faultinj_ingress, o.ingress);
	bpf_program__set_autoload(skel->progs.faultinj_egress, o.egress);

	err = faultinj__load(skel);
	if (err) {
		fprintf(stderr, "sgc-faultinj: loading BPF programs: %s%s\n",
			strerror(-err), err == -EPERM ? " (run as root)" : "");
		goto cleanup;
	}

	if (o.ingress) {
		in_fd = attach_tcx(skel->progs.faultinj_ingress, ifindex,
				   SGC_BPF_TCX_INGRESS, o.dev, "ingress");
		if (in_fd < 0) {
			err = in_fd;
			goto cleanup;
		}
	}
	if (o.egress) {
		eg_fd = attach_tcx(skel->progs.faultinj_egress, ifindex,
				   SGC_BPF_TCX_EGRESS, o.dev, "egress");
		if (eg_fd < 0) {
			err = eg_fd;
			goto cleanup;
		}
	}

	printf("attached\n");
	fflush(stdout);

	wait_until_done(&sigs, o.duration_s);

	print_stats(skel);
	err = 0;

cleanup:
	if (eg_fd >= 0)
		close(eg_fd);
	if (in_fd >= 0)
		close(in_fd);
	faultinj__destroy(skel);
	return err ? 1 : 0;
}

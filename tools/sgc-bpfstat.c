// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc-bpfstat: print the eBPF path's counters of a running coordinator.
 * Finds libsgcoll's XDP dispatcher on the interface, the coordinator's
 * gather_prog in it (-p: the one on that port, when several share it), its
 * `stats` map, and sums the per-CPU values, one line per reason.
 *
 *   sgc-bpfstat IFNAME [-p PORT] [-w SECONDS]   (-w: repeat every SECONDS, show deltas)
 *
 * What each counter means: sgc-bpfstat(1), docs/man/sgc-bpfstat.1.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <sgcoll.h>
#include "xdp_dispatch.h"

#define MAX_STATS 64

static void usage(FILE *f)
{
	int i;

	fprintf(f,
		"usage: sgc-bpfstat IFNAME [-p PORT] [-w SECONDS]\n"
		"\n"
		"Prints the counters of the libsgcoll coordinator whose eBPF path is\n"
		"attached to IFNAME (summed over CPUs), one line each; with -w, again\n"
		"every SECONDS, as the change since the last print.  When several\n"
		"coordinators share IFNAME, -p names one by its UDP port.  Needs root.\n"
		"Counters (what each means: man sgc-bpfstat):\n");
	for (i = 0; sgc_bpf_stat_name(i); i++)
		fprintf(f, "%s%s", !i ? "  " : i % 6 ? " " : "\n  ", sgc_bpf_stat_name(i));
	fprintf(f, "\n");
}

/*
 * The gather_prog of the coordinator on @ifname listening on @port (0:
 * the only one), from the dispatcher @dfd's jobs map; its id, or 0.
 */
static __u32 pick_job(int dfd, const char *ifname, int port)
{
	struct sgc_xdp_job_key keys[SGC_XDP_SLOTS];
	struct sgc_xdp_job jobs[SGC_XDP_SLOTS];
	__u32 found = 0;
	int jfd = xdp_prog_map(dfd, "jobs"), n = 0, all, i;

	if (jfd < 0) {
		fprintf(stderr, "sgc-bpfstat: the dispatcher on %s has no jobs map\n", ifname);
		return 0;
	}
	all = xdp_jobs_list(jfd, keys, jobs, SGC_XDP_SLOTS);
	for (i = 0; i < all; i++) {
		/* Skipped: a process that ended without leaving, another port. */
		if (!xdp_job_alive(&jobs[i]) || (port && ntohs(keys[i].port) != port))
			continue;
		n++;
		found = jobs[i].prog_id;
		if (!port)
			fprintf(stderr, "  coordinator %s:%u (pid %u)\n",
				inet_ntoa((struct in_addr){ .s_addr = keys[i].ip }),
				ntohs(keys[i].port), jobs[i].pid);
	}
	close(jfd);
	if (n == 1)
		return found;
	if (!n)
		fprintf(stderr, "sgc-bpfstat: no running coordinator on %s%s\n", ifname,
			port ? " with that port" : "");
	else
		fprintf(stderr, "sgc-bpfstat: %d coordinators share %s (above): choose one with "
			"-p PORT\n", n, ifname);
	return 0;
}

static int find_stats_map(int ifindex, const char *ifname, int port)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), id;
	int pfd, mfd;

	if (bpf_xdp_query(ifindex, 0, &q) || !q.prog_id) {
		fprintf(stderr, "sgc-bpfstat: no XDP program on %s: is a coordinator with the eBPF "
			"path (SGC_ACCEL=auto|ebpf) running there?\n", ifname);
		return -ENOENT;
	}
	pfd = bpf_prog_get_fd_by_id(q.prog_id);
	if (pfd < 0) {
		fprintf(stderr, "sgc-bpfstat: cannot open program %u: %s (run as root)\n",
			q.prog_id, strerror(errno));
		return -errno;
	}
	if (bpf_obj_get_info_by_fd(pfd, &info, &len) || strcmp(info.name, "sgc_dispatch")) {
		fprintf(stderr, "sgc-bpfstat: the XDP program on %s is %s, not libsgcoll's "
			"sgc_dispatch\n", ifname, info.name[0] ? info.name : "unreadable");
		close(pfd);
		return -ENOENT;
	}
	id = pick_job(pfd, ifname, port);
	close(pfd);
	if (!id)
		return -ENOENT;
	pfd = bpf_prog_get_fd_by_id(id);
	mfd = pfd < 0 ? -1 : xdp_prog_map(pfd, "stats");
	if (pfd >= 0)
		close(pfd);
	if (mfd < 0) {
		fprintf(stderr, "sgc-bpfstat: the coordinator's gather_prog (id %u) on %s has no "
			"stats map\n", id, ifname);
		return -ENOENT;
	}
	return mfd;
}

static int read_stats(int fd, uint64_t *out, int n, int ncpu)
{
	uint64_t *vals = calloc((size_t)ncpu, sizeof(*vals));
	int k, i;

	if (!vals)
		return -ENOMEM;
	for (k = 0; k < n; k++) {
		__u32 key = (__u32)k;

		out[k] = 0;
		if (bpf_map_lookup_elem(fd, &key, vals))
			break;
		for (i = 0; i < ncpu; i++)
			out[k] += vals[i];
	}
	free(vals);
	return k;
}

int main(int argc, char **argv)
{
	uint64_t now[MAX_STATS], prev[MAX_STATS] = {};
	static const struct option longopts[] = {
		{ "watch", required_argument, NULL, 'w' },
		{ "port", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ifindex, fd, ncpu, n, k, opt, watch = 0, rounds = 0, port = 0;

	while ((opt = getopt_long(argc, argv, "w:p:h", longopts, NULL)) != -1) {
		if (opt == 'w') {
			watch = atoi(optarg);
		} else if (opt == 'p') {
			port = atoi(optarg);
			if (port <= 0 || port > 65535) {
				fprintf(stderr, "sgc-bpfstat: -p wants a UDP port, 1-65535: %s\n",
					optarg);
				return 2;
			}
		} else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else {
			goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	ifindex = (int)if_nametoindex(argv[optind]);
	if (!ifindex) {
		fprintf(stderr, "sgc-bpfstat: no interface %s\n", argv[optind]);
		return 1;
	}
	fd = find_stats_map(ifindex, argv[optind], port);
	if (fd < 0)
		return 1;
	ncpu = libbpf_num_possible_cpus();
	for (n = 0; n < MAX_STATS && sgc_bpf_stat_name(n); n++)
		;
	do {
		int got = read_stats(fd, now, n, ncpu);

		if (got <= 0) {
			fprintf(stderr, "sgc-bpfstat: the stats map went away (coordinator exited)\n");
			return rounds ? 0 : 1;
		}
		if (rounds)
			printf("--- last %d s\n", watch);
		for (k = 0; k < got; k++)
			printf("%-16s %12llu\n", sgc_bpf_stat_name(k),
			       (unsigned long long)(now[k] - (rounds ? prev[k] : 0)));
		fflush(stdout);
		memcpy(prev, now, sizeof(now));
		rounds++;
		if (watch)
			sleep((unsigned)watch);
	} while (watch);
	close(fd);
	return 0;
usage:
	usage(stderr);
	return 2;
}

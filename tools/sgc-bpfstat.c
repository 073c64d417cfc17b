// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc-bpfstat: print the eBPF path's counters of a running coordinator.
 * Finds gather_prog on the interface, its `stats` map, and sums the
 * per-CPU values, one line per reason.
 *
 *   sgc-bpfstat IFNAME [-w SECONDS]   (-w: repeat every SECONDS, show deltas)
 *
 * What each counter means: sgc-bpfstat(1), docs/man/sgc-bpfstat.1.
 */
#include <errno.h>
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

#define MAX_STATS 64

static void usage(FILE *f)
{
	int i;

	fprintf(f,
		"usage: sgc-bpfstat IFNAME [-w SECONDS]\n"
		"\n"
		"Prints the counters of the libsgcoll coordinator whose eBPF path is\n"
		"attached to IFNAME (summed over CPUs), one line each; with -w, again\n"
		"every SECONDS, as the change since the last print.  Needs root.\n"
		"Counters (what each means: man sgc-bpfstat):\n");
	for (i = 0; sgc_bpf_stat_name(i); i++)
		fprintf(f, "%s%s", !i ? "  " : i % 6 ? " " : "\n  ", sgc_bpf_stat_name(i));
	fprintf(f, "\n");
}

static int find_stats_map(int ifindex, const char *ifname)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ids[16], i;
	int pfd, err;

	err = bpf_xdp_query(ifindex, 0, &q);
	if (err || !q.prog_id) {
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
	info.nr_map_ids = 16;
	info.map_ids = (__u64)(uintptr_t)ids;
	err = bpf_obj_get_info_by_fd(pfd, &info, &len);
	close(pfd);
	if (err || strcmp(info.name, "gather_prog")) {
		fprintf(stderr, "sgc-bpfstat: the XDP program on %s is %s, not libsgcoll's gather_prog\n",
			ifname, err ? "unreadable" : info.name);
		return -ENOENT;
	}
	for (i = 0; i < info.nr_map_ids && i < 16; i++) {
		struct bpf_map_info mi = {};
		__u32 mlen = sizeof(mi);
		int mfd = bpf_map_get_fd_by_id(ids[i]);

		if (mfd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(mfd, &mi, &mlen) && !strcmp(mi.name, "stats"))
			return mfd;
		close(mfd);
	}
	fprintf(stderr, "sgc-bpfstat: gather_prog on %s has no stats map\n", ifname);
	return -ENOENT;
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ifindex, fd, ncpu, n, k, opt, watch = 0, rounds = 0;

	while ((opt = getopt_long(argc, argv, "w:h", longopts, NULL)) != -1) {
		if (opt == 'w') {
			watch = atoi(optarg);
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
	fd = find_stats_map(ifindex, argv[optind]);
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

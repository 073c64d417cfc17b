// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reading libsgcoll's XDP dispatcher from outside: its maps, its jobs and
 * whether their processes still run.  Used by xdp_dispatch.c and compiled
 * into sgc-bpfstat as well, so it needs only libbpf and libc.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "xdp_dispatch.h"

int xdp_prog_map(int prog_fd, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ids[16], i;

	info.nr_map_ids = 16;
	info.map_ids = (__u64)(uintptr_t)ids;
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return -errno;
	for (i = 0; i < info.nr_map_ids && i < 16; i++) {
		struct bpf_map_info mi = {};
		__u32 mlen = sizeof(mi);
		int mfd = bpf_map_get_fd_by_id(ids[i]);

		if (mfd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(mfd, &mi, &mlen) && !strcmp(mi.name, name))
			return mfd;
		close(mfd);
	}
	return -ENOENT;
}

uint64_t xdp_proc_start(uint32_t pid)
{
	char path[32], buf[512], *p;
	uint64_t start = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')'))) {
		/* field 3 starts 2 after the command's ')' */
		for (i = 3, p += 2; i < 22 && p; i++)
			p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
		if (p)
			start = strtoull(p, NULL, 10);
	}
	fclose(f);
	return start;
}

int xdp_jobs_list(int jobs_fd, struct sgc_xdp_job_key *keys, struct sgc_xdp_job *jobs, int max)
{
	struct sgc_xdp_job_key next, *prev = NULL;
	int n = 0;

	while (n < max && !bpf_map_get_next_key(jobs_fd, prev, &next)) {
		keys[n] = next;
		prev = &keys[n];
		if (!bpf_map_lookup_elem(jobs_fd, &keys[n], &jobs[n]))
			n++;
	}
	return n;
}

bool xdp_job_alive(const struct sgc_xdp_job *job)
{
	return job->slot < SGC_XDP_SLOTS && xdp_proc_start(job->pid) == job->start;
}

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * peer_args.h - the command line shared by the peers (mpi_allreduce.c,
 * gloo_allreduce.cc): same workloads, modes and defaults as sgc_bench.
 * Plain C that also compiles as C++.
 */
#ifndef PEER_ARGS_H
#define PEER_ARGS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer_args {
	const char *name;	/* contender label */
	const char *workload;	/* ar1, ar363, ar64k, ar256k, ar1m, ar16m, ar64m */
	size_t count;
	int tput;
	long ops, warmup;
	double max_s;		/* lat: stop measuring after this (0: no limit) */
	long min_ops;		/* ... once this many are measured */
	int window, sample;
};

static inline int peer_parse(struct peer_args *a, int argc, char **argv, const char *dflt_name)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->name = dflt_name;
	a->ops = -1;
	a->warmup = 200;
	a->window = 16;
	a->sample = 200;
	a->min_ops = 1;
	for (i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return -1;
		if (!strcmp(k, "--workload"))
			a->workload = v;
		else if (!strcmp(k, "--mode"))
			a->tput = !strcmp(v, "tput") ? 1 : !strcmp(v, "lat") ? 0 : -1;
		else if (!strcmp(k, "--ops"))
			a->ops = atol(v);
		else if (!strcmp(k, "--warmup"))
			a->warmup = atol(v);
		else if (!strcmp(k, "--max-s"))
			a->max_s = atof(v);
		else if (!strcmp(k, "--min-ops"))
			a->min_ops = atol(v);
		else if (!strcmp(k, "--window"))
			a->window = atoi(v);
		else if (!strcmp(k, "--sample"))
			a->sample = atoi(v);
		else if (!strcmp(k, "--name"))
			a->name = v;
		else
			return -1;
		i++;
	}
	if (!a->workload)
		return -1;
	if (!strcmp(a->workload, "ar1"))
		a->count = 1;
	else if (!strcmp(a->workload, "ar363"))
		a->count = 363;
	else if (!strcmp(a->workload, "ar64k"))
		a->count = 16384;
	else if (!strcmp(a->workload, "ar256k"))
		a->count = 65536;
	else if (!strcmp(a->workload, "ar1m"))
		a->count = 262144;
	else if (!strcmp(a->workload, "ar16m"))
		a->count = 4194304;
	else if (!strcmp(a->workload, "ar64m"))
		a->count = 16777216;
	else
		return -1;
	if (a->ops < 0)
		a->ops = a->tput ? 8000 : 5000;
	if (a->tput < 0 || a->ops < 1 || a->warmup < 0 || a->window < 1 || a->window > 1024 ||
	    a->sample < 1 || a->max_s < 0 || a->min_ops < 1 || (a->max_s > 0 && a->tput))
		return -1;
	return 0;
}

static inline void peer_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --workload ar1|ar363|ar64k|ar256k|ar1m|ar16m|ar64m [--mode lat|tput] [--ops N]\n"
		"          [--warmup N] [--window W] [--sample N] [--name LABEL]\n"
		"          [--max-s S [--min-ops N]]   (lat: stop after S s of measuring)\n",
		prog);
}

#endif /* PEER_ARGS_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * main() for a fuzz target built without libFuzzer: runs
 * LLVMFuzzerTestOneInput() once on every file named on the command line
 * (directories: every regular file in them, sorted).  This is how `make
 * test` replays the seed corpora and every crash fixture in fuzz/fixtures
 * with the ordinary compiler.  Fails when it replayed nothing, so a wrong
 * path cannot pass silently.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto bad;
	/* Exactly the file's size, so ASan builds see overreads too. */
	buf = malloc(n ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto bad;
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
bad:
	fprintf(stderr, "%s: cannot read\n", path);
	free(buf);
	fclose(f);
	return -1;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	long done = 0;
	int i, j, n, bad = 0;

	for (i = 1; i < argc; i++) {
		struct dirent **ents;
		struct stat st;

		if (stat(argv[i], &st)) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= replay_file(argv[i]);
			done++;
			continue;
		}
		n = scandir(argv[i], &ents, NULL, by_name);
		if (n < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		for (j = 0; j < n; j++) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", argv[i], ents[j]->d_name);
			if (!stat(path, &st) && S_ISREG(st.st_mode) && ents[j]->d_name[0] != '.') {
				bad |= replay_file(path);
				done++;
			}
			free(ents[j]);
		}
		free(ents);
	}
	printf("%s: replayed %ld inputs\n", argv[0], done);
	if (!done) {
		fprintf(stderr, "%s: no inputs found\n", argv[0]);
		return 1;
	}
	return bad ? 1 : 0;
}

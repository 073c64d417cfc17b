// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Consensus vote counting with the raw scatter-gather primitive (the
 * thesis's use case).  The leader (rank 0) proposes values; every follower
 * votes yes (1) or no (0) on each; a proposal is decided as soon as a
 * majority of the followers have answered (SGC_WAIT_N), so a slow or dead
 * minority never holds the leader up.  Followers who cannot judge a
 * proposal abstain (the handler declines).
 *
 *   vote [-p PROPOSALS]      run by every rank under sgc-cluster or mpirun
 *
 * A follower votes yes when (proposal + rank) % 3 != 0, and abstains when
 * (proposal * rank) % 11 == 5; the leader checks every tally against that.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sgcoll.h>

static int rank;

static int ballot(const void *query, size_t len, void *resp, size_t count, enum sgc_dtype dt,
		  void *arg)
{
	uint32_t proposal;

	(void)arg;
	if (len != sizeof(proposal) || count != 1 || dt != SGC_UINT32)
		return -EINVAL;
	memcpy(&proposal, query, sizeof(proposal));
	if ((proposal * (uint32_t)rank) % 11 == 5)
		return 1;				/* abstain */
	*(uint32_t *)resp = (proposal + (uint32_t)rank) % 3 != 0;
	return 0;
}

int main(int argc, char **argv)
{
	int proposals = 20, opt, err, world, decided = 0, bad = 0;
	sgc_comm *c;

	while ((opt = getopt(argc, argv, "p:")) != -1)
		if (opt == 'p')
			proposals = atoi(optarg);
	err = sgc_init_env(&c);
	if (err) {
		fprintf(stderr, "sgc_init_env: %s\n  %s\n", sgc_strerror(err), sgc_last_error());
		return 1;
	}
	rank = sgc_rank(c);
	world = sgc_world_size(c);
	if (world < 2) {
		fprintf(stderr, "vote: needs at least one follower (SGC_WORLD_SIZE >= 2)\n");
		sgc_finalize(c);
		return 1;
	}
	if (rank != 0) {
		err = sgc_serve(c, ballot, NULL, NULL);
		if (err)
			fprintf(stderr, "rank %d: sgc_serve: %s\n", rank, sgc_last_error());
		sgc_finalize(c);
		return err ? 1 : 0;
	}

	for (uint32_t p = 1; p <= (uint32_t)proposals; p++) {
		unsigned majority = (unsigned)(world - 1) / 2 + 1;
		struct sgc_sg_opts o = { .sz = sizeof(o), .policy = SGC_WAIT_N, .wait_n = majority };
		unsigned char *who = calloc((size_t)world, 1);
		struct sgc_sg_status st = { .sz = sizeof(st), .answered = who };
		uint32_t yes = 0, want = 0;
		int r;

		err = sgc_scatter_gather(c, &p, sizeof(p), &yes, 1, SGC_UINT32, SGC_SUM, &o, &st);
		if (err == -ECANCELED) {
			/* Too many abstained for a majority to answer. */
			printf("proposal %2u: no quorum (%d abstained)\n", p, st.ndeclined);
		} else if (err) {
			fprintf(stderr, "proposal %u: %s\n  %s\n", p, sgc_strerror(err), sgc_last_error());
			bad++;
		} else {
			for (r = 1; r < world; r++)
				if (who[r])
					want += (p + (uint32_t)r) % 3 != 0;
			if (yes != want || st.nanswered != (int)majority)
				bad++;
			decided++;
			printf("proposal %2u: %s (%u of %d votes yes, %d abstained)%s\n", p,
			       2 * yes > (unsigned)st.nanswered ? "accepted" : "rejected", yes,
			       st.nanswered, st.ndeclined, yes != want ? "  WRONG TALLY" : "");
		}
		free(who);
	}
	err = sgc_serve_stop(c);
	printf("vote: %d proposals decided by majority, %s\n", decided,
	       bad || err ? "FAILED" : "every tally checked");
	sgc_finalize(c);
	return bad || err ? 1 : 0;
}

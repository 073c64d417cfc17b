// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A fake eBPF path for the fake transport: path_bpf.c's functions with no
 * kernel behind them, so that a coordinator over fake_net can be made to
 * believe it runs the eBPF path (fake_bpf_on()).  In keep mode the
 * "kernel" passes every contribution up and user space reduces, as with
 * SGC_CFG_KEEP_RESPONSES; otherwise the kernel reduces (queries of one
 * datagram, and rank 0's own chunks, which vanish here).
 */
#include <errno.h>

#include "comm.h"
#include "fake_net.h"
#include "path_bpf.h"

struct sgc_bpf {
	bool keep;
	uint32_t token;
};

static struct sgc_bpf fake_paths[FAKE_MAX_RANKS];

void fake_bpf_on(struct sgc_comm *c, bool keep, uint32_t token)
{
	struct sgc_bpf *b = &fake_paths[c->rank % FAKE_MAX_RANKS];

	b->keep = keep;
	b->token = token;
	c->bpf = b;
	c->kernel_token = token;
}

int bpf_path_load(struct sgc_comm *c)
{
	return sgc_err(-EOPNOTSUPP, "no eBPF path over the fake transport");
}

int bpf_path_attach(struct sgc_comm *c)
{
	return 0;
}

int bpf_path_roster(struct sgc_comm *c)
{
	return 0;
}

void bpf_path_close(struct sgc_comm *c)
{
	c->bpf = NULL;
}

int bpf_path_contribute(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
			struct sgc_pkt **result)
{
	*result = NULL;
	return 0;
}

const struct sgc_bpf_slot *bpf_path_slot(struct sgc_comm *c, uint8_t coll, uint32_t seq,
					 uint32_t chunk)
{
	return NULL;
}

const struct sgc_bpf_slot *bpf_path_slot_at(struct sgc_comm *c, uint32_t seq, uint32_t chunk)
{
	return NULL;
}

void bpf_path_window(struct sgc_comm *c, uint32_t base)
{
}

void bpf_path_query(struct sgc_comm *c, uint32_t seq, uint8_t policy, uint16_t want)
{
}

uint32_t bpf_path_rank_wm(const struct sgc_comm *c, int r)
{
	return 0;
}

uint32_t bpf_path_rank_hi(const struct sgc_comm *c, int r)
{
	return 0;
}

uint64_t bpf_path_coll_rx(const struct sgc_comm *c, uint32_t seq)
{
	return 0;
}

bool bpf_path_kernel_fanout(const struct sgc_comm *c)
{
	return false;
}

bool bpf_path_keep(const struct sgc_comm *c)
{
	return c->bpf && c->bpf->keep;
}

/* Attached from the start, as SGC_ACCEL=ebpf has it. */
void bpf_path_engage(struct sgc_comm *c)
{
	(void)c;
}

/* The fake kernel reduces every kind, as SGC_ACCEL=ebpf has it. */
bool bpf_path_in_kernel(const struct sgc_comm *c, unsigned int kind)
{
	return c->bpf && !c->bpf->keep;
}

bool bpf_path_has_custom(const struct sgc_comm *c)
{
	return false;
}

int sgc_bpf_stats(const sgc_comm *c, uint64_t *out, int n)
{
	return -EOPNOTSUPP;
}

const char *sgc_bpf_stat_name(int i)
{
	return NULL;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The datagram free list, and handing a received datagram up (pkt.h). */
#include <stdlib.h>
#include <string.h>

#include "comm.h"

struct sgc_pkt *pkt_alloc(struct sgc_comm *c)
{
	struct sgc_pkt *p = c->pkts.free;

	if (p) {
		c->pkts.free = p->next;
	} else {
		p = malloc(c->pkts.size);
		if (!p)
			return NULL;
	}
	p->next = NULL;
	p->len = SGC_HDR_SIZE;
	p->refs = 1;
	p->sent_at = 0;
	return p;
}

struct sgc_pkt *pkt_copy(struct sgc_comm *c, const struct sgc_pkt *src)
{
	struct sgc_pkt *p = pkt_alloc(c);

	if (p) {
		memcpy(p->data, src->data, src->len);
		p->len = src->len;
	}
	return p;
}

void pkt_put(struct sgc_comm *c, struct sgc_pkt *p)
{
	if (!p || --p->refs)
		return;
	p->next = c->pkts.free;
	c->pkts.free = p;
}

void pkt_pool_free(struct sgc_comm *c)
{
	struct sgc_pkt *p;

	while ((p = c->pkts.free)) {
		c->pkts.free = p->next;
		free(p);
	}
}

void pkt_deliver(struct sgc_comm *c, const struct sockaddr_in *from, const uint8_t *payload,
		 uint32_t len)
{
	struct sgc_rx rx;
	int rej;

	c->st.pkts_recv++;
	rej = sgc_wire_check(payload, len, c->joined ? c->job_id : 0, c->world, c->chunk_bytes);
	if (rej) {
		if (rej == SGC_REJ_JOB || rej == SGC_REJ_MAGIC)
			c->st.foreign++;
		else
			c->st.rejected++;
		pr_debug("rank %d: dropped datagram from %s: %s\n", c->rank,
			 sgc_addr_str(from, (char[32]){0}, 32), sgc_reject_name(rej));
		return;
	}
	rx.from = *from;
	rx.hdr = (const struct sgc_hdr *)payload;
	rx.body = payload + SGC_HDR_SIZE;
	rx.body_len = len - SGC_HDR_SIZE;
	c->io.rx(c, &rx);
}

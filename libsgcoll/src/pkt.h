/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Datagrams: reference-counted buffers from a per-communicator free list,
 * and the view of a received one that handlers get.
 */
#ifndef SGC_PKT_H
#define SGC_PKT_H

#include <netinet/in.h>

#include "sgc_internal.h"

struct sgc_comm;

/*
 * Memory that datagrams are sent from in place (pkt_attach()): its owner
 * holds one reference and every such datagram another until its send has
 * completed, so the owner can tell when the kernel is done reading it.
 */
struct sgc_pin {
	uint32_t refs;
};

/* An outgoing datagram.  Retained result chunks are sent many times, so a
 * datagram lives until its owner and every send holding it let go. */
struct sgc_pkt {
	struct sgc_pkt *next;	/* free list */
	uint32_t len;		/* bytes in data: header + body (+ tag once sealed) */
	uint32_t tag_at;	/* sealed: where the job key's tag is (len - 8) */
	struct sgc_hdr tag_hdr;	/* sealed: the header the tag was made for */
	uint32_t refs;		/* owner + sends not yet completed */
	bool small;		/* room for a header and SGC_PKT_SMALL_BODY bytes */
	uint64_t sent_at;	/* coordinator's result chunk: first sent (now_ns) */
	/* A body sent from its owner's memory after the header in data,
	 * not copied (pkt_attach()); NULL: the body is in data. */
	const uint8_t *ext;
	uint32_t ext_len;
	struct sgc_pin *pin;	/* holds ext's memory while this lives */
	uint64_t data[];	/* struct sgc_hdr then body, 8-aligned */
};

/* The free lists: datagrams with room for the largest valid one, and
 * small ones for control datagrams and headers whose body is attached.
 * Thousands of chunks and acknowledgements may be in flight; in small
 * buffers they stay in a few pages, where full ones missed the cache. */
struct sgc_pkt_pool {
	struct sgc_pkt *free;
	struct sgc_pkt *free_small;
	size_t size;
};

static inline struct sgc_hdr *pkt_hdr(struct sgc_pkt *p)
{
	return (struct sgc_hdr *)p->data;
}

static inline uint8_t *pkt_body(struct sgc_pkt *p)
{
	return (uint8_t *)p->data + SGC_HDR_SIZE;
}

/* The datagram's length on the wire. */
static inline uint32_t pkt_wire_len(const struct sgc_pkt *p)
{
	return p->len + p->ext_len;
}

/* The owner is still sending from its pinned memory. */
static inline bool pin_busy(const struct sgc_pin *pin)
{
	return pin && pin->refs > 1;
}

/* A datagram as received, valid until the handler returns. */
struct sgc_rx {
	const struct sgc_hdr *hdr;
	const uint8_t *body;
	uint32_t body_len;
	struct sockaddr_in from;
};

/* A new datagram with one reference, header-only length; NULL on ENOMEM. */
SGC_HIDDEN struct sgc_pkt *pkt_alloc(struct sgc_comm *c);
/* A pin with its owner's reference; NULL on ENOMEM. */
SGC_HIDDEN struct sgc_pin *pin_new(void);
/* Drop one reference; accepts NULL. */
SGC_HIDDEN void pin_put(struct sgc_pin *pin);
/* Send @len bytes at @body after @p's header, from there, not copied:
 * @body must stay as it is while @pin is busy.  Only for a GSO socket
 * without a job key (io_send() sends such a datagram with sendmsg). */
SGC_HIDDEN void pkt_attach(struct sgc_pkt *p, const void *body, uint32_t len, struct sgc_pin *pin);
/* Body bytes a small datagram has room for, a job key's tag included. */
#define SGC_PKT_SMALL_BODY	64
/* A new datagram with room for a header and SGC_PKT_SMALL_BODY bytes:
 * a control datagram, or one to pkt_attach() a body to. */
SGC_HIDDEN struct sgc_pkt *pkt_alloc_small(struct sgc_comm *c);
/* Copy an attached body into @p and let its memory go; -ENOSPC when @p
 * is small and the body does not fit (the datagram cannot go then). */
SGC_HIDDEN int pkt_flatten(struct sgc_pkt *p);
/* A new datagram (one reference) with @src's bytes. */
SGC_HIDDEN struct sgc_pkt *pkt_copy(struct sgc_comm *c, const struct sgc_pkt *src);
/* Drop one reference; accepts NULL. */
SGC_HIDDEN void pkt_put(struct sgc_comm *c, struct sgc_pkt *p);
/* A datagram of @len bytes from @from, as received: counted, checked
 * (sgc_wire_check()) and handed to c->io.rx, or counted as foreign or
 * rejected.  Every receive path (io.c, the tests' fake) goes through it. */
SGC_HIDDEN void pkt_deliver(struct sgc_comm *c, const struct sockaddr_in *from,
			    const uint8_t *payload, uint32_t len);
/* Free the pool's datagrams (every reference must be gone). */
SGC_HIDDEN void pkt_pool_free(struct sgc_comm *c);

#endif /* SGC_PKT_H */

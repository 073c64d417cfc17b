// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The datagram free list, and handing a received datagram up (pkt.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "mac.h"

#define PKT_SMALL_SIZE	(sizeof(struct sgc_pkt) + SGC_HDR_SIZE + SGC_PKT_SMALL_BODY)
_Static_assert(sizeof(uint64_t) + SGC_MAC_TAG_SIZE <= SGC_PKT_SMALL_BODY,
	       "a mesh acknowledgement and its tag fit a small datagram");

static struct sgc_pkt *pkt_get(struct sgc_pkt **list, size_t size, bool small)
{
	struct sgc_pkt *p = *list;

	if (p) {
		*list = p->next;
	} else {
		p = malloc(size);
		if (!p)
			return NULL;
	}
	p->small = small;
	p->next = NULL;
	p->len = SGC_HDR_SIZE;
	p->tag_at = 0;
	p->refs = 1;
	p->sent_at = 0;
	p->ext = NULL;
	p->ext_len = 0;
	p->pin = NULL;
	return p;
}

struct sgc_pkt *pkt_alloc(struct sgc_comm *c)
{
	return pkt_get(&c->pkts.free, c->pkts.size, false);
}

struct sgc_pkt *pkt_alloc_small(struct sgc_comm *c)
{
	return pkt_get(&c->pkts.free_small, PKT_SMALL_SIZE, true);
}

struct sgc_pin *pin_new(void)
{
	struct sgc_pin *pin = malloc(sizeof(*pin));

	if (pin)
		pin->refs = 1;
	return pin;
}

void pin_put(struct sgc_pin *pin)
{
	if (pin && !--pin->refs)
		free(pin);
}

void pkt_attach(struct sgc_pkt *p, const void *body, uint32_t len, struct sgc_pin *pin)
{
	p->ext = body;
	p->ext_len = len;
	p->pin = pin;
	pin->refs++;
}

int pkt_flatten(struct sgc_pkt *p)
{
	if (!p->ext)
		return 0;
	if (p->small && p->len + p->ext_len + SGC_MAC_TAG_SIZE > SGC_HDR_SIZE + SGC_PKT_SMALL_BODY)
		return -ENOSPC;
	memcpy((uint8_t *)p->data + p->len, p->ext, p->ext_len);
	p->len += p->ext_len;
	p->ext = NULL;
	p->ext_len = 0;
	pin_put(p->pin);
	p->pin = NULL;
	return 0;
}

struct sgc_pkt *pkt_copy(struct sgc_comm *c, const struct sgc_pkt *src)
{
	struct sgc_pkt *p = pkt_alloc(c);

	if (p) {
		memcpy(p->data, src->data, src->len);
		p->len = src->len;
		if (src->ext) {
			memcpy((uint8_t *)p->data + p->len, src->ext, src->ext_len);
			p->len += src->ext_len;
		}
		p->tag_at = src->tag_at;
		p->tag_hdr = src->tag_hdr;
	}
	return p;
}

void pkt_put(struct sgc_comm *c, struct sgc_pkt *p)
{
	struct sgc_pkt **list;

	if (!p || --p->refs)
		return;
	list = p->small ? &c->pkts.free_small : &c->pkts.free;
	pin_put(p->pin);
	p->pin = NULL;
	p->next = *list;
	*list = p;
}

static void list_free(struct sgc_pkt **list)
{
	struct sgc_pkt *p;

	while ((p = *list)) {
		*list = p->next;
		free(p);
	}
}

void pkt_pool_free(struct sgc_comm *c)
{
	list_free(&c->pkts.free);
	list_free(&c->pkts.free_small);
}

/* A tag's trouble, said once per communicator: most likely the ranks
 * were started with different keys, or only some with one. */
static void mac_warn_once(struct sgc_comm *c, const struct sockaddr_in *from, const char *why)
{
	if (c->mac_warned)
		return;
	c->mac_warned = true;
	pr_warn("rank %d: dropping datagrams from %s: %s; every rank needs the same SGC_KEY "
		"(or SGC_KEY_FILE), or none (further drops are counted in bad_mac)\n", c->rank,
		sgc_addr_str(from, (char[32]){ 0 }, 32), why);
}

/*
 * The job key's check, before anything else reads the datagram: returns
 * its length without the tag, or -1 when it is dropped.  A result that
 * notify_prog hands this coordinator's socket is the kernel's own (its
 * token, see kernel_result_authentic()), not the wire's: it needs no tag.
 */
static int mac_open(struct sgc_comm *c, const struct sockaddr_in *from, const uint8_t *payload,
		    uint32_t len)
{
	struct sgc_hdr h;
	bool tagged;

	if (len < SGC_HDR_SIZE)
		return (int)len;	/* wire_check says why */
	memcpy(&h, payload, sizeof(h));
	tagged = h.flags & SGC_F_MAC;
	if (!c->mac) {
		if (!tagged)
			return (int)len;
		if (h.magic == SGC_WIRE_MAGIC)
			mac_warn_once(c, from, "they carry a job key's MAC and this rank has no key");
		c->st.bad_mac++;
		return -1;
	}
	if (h.type == SGC_MSG_RESULT && kernel_result_authentic(c, &h))
		return tagged && len >= SGC_HDR_SIZE + SGC_MAC_TAG_SIZE ?
		       (int)(len - SGC_MAC_TAG_SIZE) : (int)len;
	if (tagged && sgc_mac_ok(c->mac, payload, len))
		return (int)(len - SGC_MAC_TAG_SIZE);
	c->st.bad_mac++;
	if (h.magic == SGC_WIRE_MAGIC)
		mac_warn_once(c, from, tagged ? "their MAC is wrong (another key?)" :
					      "they carry no MAC and this job has a key");
	pr_debug("rank %d: dropped datagram from %s: %s MAC\n", c->rank,
		 sgc_addr_str(from, (char[32]){ 0 }, 32), tagged ? "wrong" : "no");
	return -1;
}

void pkt_deliver(struct sgc_comm *c, const struct sockaddr_in *from, const uint8_t *payload,
		 uint32_t len)
{
	struct sgc_rx rx;
	int rej, n;

	c->st.pkts_recv++;
	n = mac_open(c, from, payload, len);
	if (n < 0)
		return;
	len = (uint32_t)n;
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

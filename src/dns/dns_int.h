/*
 * dns_int.h - what the other files of dns/ (dnssec.c) need of the resolver context of dns.c:
 * its c-ares channel and loop, the timer kick after a query, whether its servers are all on
 * loopback, and a list of outside requests that dns_free cancels. Not for use outside dns/.
 * Loop thread only.
 */
#ifndef SLUICE_DNS_INT_H
#define SLUICE_DNS_INT_H
#include <ares.h>
#include <stdbool.h>

#include "dns/dns.h"

/* A request kept by another file of dns/: dns_free calls cancel (which must unlink and answer it). */
typedef struct dns_ext {
    struct dns_ext *prev, *next;
    void (*cancel)(struct dns_ext *x);
} dns_ext;

/* dns_channel - the c-ares channel of d. */
ares_channel dns_channel(dns_ctx *d);
/* dns_base - the event loop of d. */
struct event_base *dns_base(dns_ctx *d);
/* dns_kick - re-arm d's timer after a query was sent. */
void dns_kick(dns_ctx *d);
/* dns_freeing - d is inside dns_free (answers are "cancelled"). */
bool dns_freeing(const dns_ctx *d);
/* dns_ext_link - put x on d's list of outside requests. */
void dns_ext_link(dns_ctx *d, dns_ext *x);
/* dns_ext_unlink - take x off d's list. */
void dns_ext_unlink(dns_ctx *d, dns_ext *x);

#endif

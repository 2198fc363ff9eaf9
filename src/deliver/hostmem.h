/*
 * hostmem.h - what recent delivery attempts learnt about the hosts of each destination: which
 * MX hosts failed (unreachable, greeting or EHLO refused, 421, lost connection), so that the
 * next attempt to that destination tries the other hosts of the same preference first and does
 * not always begin at the same failing host (RFC 5321 4.5.4.1: a client "SHOULD keep a list of
 * hosts it cannot reach"; 5.1: among equal preferences an "easily reached address" may be
 * favoured). The order across preferences is never changed (dns_mx_demote).
 *
 * Per destination (a channel and a routing host) the memory is a list of failing hosts: a host
 * that fails joins at the end and is remembered for HOSTMEM_HOLD seconds after its last
 * failure; the host an attempt failed at first moves to the end (hostmem_to_back), so that
 * when every host of a preference keeps failing the attempts begin at each in turn; a host
 * that completes a transaction is forgotten. The table is bounded (HOSTMEM_DESTS destinations,
 * HOSTMEM_HOSTS hosts each; the destination failed least recently is dropped first).
 *
 * It also remembers the most preferred MX hosts of recently resolved domains (HOSTMEM_MX_DOMAINS
 * at most, each for HOSTMEM_MX_HOLD seconds, the least recently learnt dropped first), learnt
 * from the SMTP client's MX lookups, so that the scheduler can group domains by MX provider
 * (traffic shaping's mx: entries, conf/shaping.h) before it starts a delivery.
 *
 * Pure bookkeeping: time is an argument, nothing is logged. The daemon owns the table
 * (sl_ctx.hostmem, created at start and freed at exit); the SMTP channel program uses it on the
 * loop thread only. Strings passed in are copied; strings handed out are the caller's copies.
 */
#ifndef SLUICE_HOSTMEM_H
#define SLUICE_HOSTMEM_H
#include <stdint.h>

#include "core/util.h"
#include "dns/dns.h"

#define HOSTMEM_HOLD 900   /* seconds a failure is remembered (15 minutes) */
#define HOSTMEM_DESTS 1024 /* destinations remembered at most */
#define HOSTMEM_HOSTS 16   /* failing hosts remembered per destination at most */
#define HOSTMEM_MX_DOMAINS 4096 /* domains whose MX hosts are remembered at most */
#define HOSTMEM_MX_HOLD 3600    /* seconds an MX answer is remembered */
#define HOSTMEM_MX_NAMES 4      /* most preferred MX hosts remembered per domain */

typedef struct hostmem hostmem;

/* hostmem_new - an empty memory. */
hostmem *hostmem_new(void);
/* hostmem_free - release it (NULL allowed). */
void hostmem_free(hostmem *m);
/* hostmem_failed - host of dest failed at now: remembered until now + HOSTMEM_HOLD (new hosts join at the end). */
void hostmem_failed(hostmem *m, const char *dest, const char *host, int64_t now);
/* hostmem_to_back - host (remembered for dest) moves behind dest's other failing hosts. */
void hostmem_to_back(hostmem *m, const char *dest, const char *host);
/* hostmem_ok - host of dest completed a transaction: forget its failures. */
void hostmem_ok(hostmem *m, const char *dest, const char *host);
/* hostmem_failing - append dest's hosts still remembered at now to out, in the order to try them. */
void hostmem_failing(hostmem *m, const char *dest, int64_t now, strvec *out);

/* hostmem_mx_learn - domain's MX answer at now: its most preferred hosts (up to HOSTMEM_MX_NAMES)
 * are remembered until now + HOSTMEM_MX_HOLD, replacing what was known. */
void hostmem_mx_learn(hostmem *m, const char *domain, const dns_mx *mx, size_t n, int64_t now);
/* hostmem_mx_find - domain's remembered MX hosts at now into names (borrowed: valid until m next
 * changes); returns how many (0: none known). */
size_t hostmem_mx_find(hostmem *m, const char *domain, int64_t now, const char *names[HOSTMEM_MX_NAMES]);

#endif

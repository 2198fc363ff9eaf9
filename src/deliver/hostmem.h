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
 * Pure bookkeeping: time is an argument, nothing is logged. The daemon owns the table
 * (sl_ctx.hostmem, created at start and freed at exit); the SMTP channel program uses it on the
 * loop thread only. Strings passed in are copied; strings handed out are the caller's copies.
 */
#ifndef SLUICE_HOSTMEM_H
#define SLUICE_HOSTMEM_H
#include <stdint.h>

#include "core/util.h"

#define HOSTMEM_HOLD 900   /* seconds a failure is remembered (15 minutes) */
#define HOSTMEM_DESTS 1024 /* destinations remembered at most */
#define HOSTMEM_HOSTS 16   /* failing hosts remembered per destination at most */

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

#endif

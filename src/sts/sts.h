/*
 * sts.h - MTA-STS policy discovery and the durable policy cache (RFC 8461 §3, §5), on the event
 * loop. A lookup asks the "_mta-sts.DOMAIN" TXT record (c-ares, dns.h) and compares its id with
 * the cached policy's; when they differ, or nothing usable is cached, it resolves mta-sts.DOMAIN
 * with our resolver and fetches the policy over HTTPS on a worker (sts_fetch.h), which also writes
 * the cache file (write, fsync, rename, fsync the directory) before the loop sees the result.
 *
 * Rules (RFC 8461 §5.1): a cached policy is used until fetched + max_age; a TXT id that differs
 * from the cached one refetches; a failed fetch, a missing TXT record or a DNS failure keep the
 * cached (unexpired) policy: never a downgrade. A fetch that failed for an id is not tried again
 * for that id within STS_RETRY_FAILED seconds (§3.3 suggests rate limiting). One lookup per
 * domain at a time; others wait for it. A waiter's answer comes after at most the timeout of its
 * params: then the cached policy if any, else none.
 *
 * The cache directory holds one file per policy domain (sts_policy.h's format), read whole by
 * sts_new at start-up. The file of a policy expired more than a day ago is deleted: by sts_new, or
 * on a worker when a lookup finds it (before the lookup proper, so no fetch races the deletion). Only the loop thread calls these functions; callbacks run on the loop,
 * never inside sts_lookup. sts_free goes after workq_free and dns_free (their completions and
 * cancellations still reach the context).
 */
#ifndef SLUICE_STS_H
#define SLUICE_STS_H
#include <stdbool.h>

#include "dns/dns.h"
#include "sts/sts_policy.h"
#include "sts/sts_result.h"

struct event_base;
struct workq;
typedef struct sts_ctx sts_ctx;
typedef struct sts_wait sts_wait;

#define STS_RETRY_FAILED 300 /* seconds before a failed fetch of the same id is tried again */

/* What a lookup needs from the configuration (copied). */
typedef struct {
    unsigned port;       /* mta_sts_port: the policy server's port (443) */
    unsigned timeout;    /* mta_sts_timeout: seconds for a fetch, and the longest a waiter waits */
    const char *ca_file; /* tls_ca_file: CA certificates trusted besides the system store, or NULL */
} sts_params;

/* Where an answer's policy came from. */
enum sts_source {
    STS_SRC_NONE,    /* the domain publishes no (valid) MTA-STS TXT record and nothing is cached */
    STS_SRC_CACHED,  /* the cached policy, its id still current */
    STS_SRC_FETCHED, /* fetched just now */
    STS_SRC_KEPT,    /* the cached policy, kept because the TXT lookup or the refetch failed */
    STS_SRC_FAILED,  /* the fetch failed (or the policy was invalid) and nothing is cached */
    STS_SRC_TIMEOUT  /* the waiter's timeout passed and nothing is cached */
};

/* The answer of a lookup; valid during the callback only. */
typedef struct {
    const char *domain;
    const sts_policy *policy; /* NULL: no policy applies */
    const char *id;           /* the policy's id ("" without one) */
    enum sts_source source;
    const char *note;         /* why, for the log ("" when there is nothing to say) */
} sts_answer;

/* sts_cb - the answer for a waiter; its sts_wait is gone once this runs. */
typedef void (*sts_cb)(void *arg, const sts_answer *a);

/* sts_new - a context whose fetches run on wq and lookups on dns; loads cache_dir (which need not
 * exist yet: it is made on the first write). Logs what it loaded. */
sts_ctx *sts_new(struct event_base *base, dns_ctx *dns, struct workq *wq, const char *cache_dir);
/* sts_lookup - the policy of domain (lower case, sts_domain_ok); cb(arg, answer) later, on the loop.
 * The handle may be cancelled until cb runs. */
sts_wait *sts_lookup(sts_ctx *c, const char *domain, const sts_params *p, sts_cb cb, void *arg);
/* sts_wait_cancel - forget a waiter: its cb never runs. */
void sts_wait_cancel(sts_wait *w);
/* sts_cached_count - how many policies the cache holds (expired ones included). */
size_t sts_cached_count(const sts_ctx *c);
/* sts_stop - the daemon is stopping: fetches in progress give up (within a second), so the
 * worker queue can be drained promptly. */
void sts_stop(sts_ctx *c);
/* sts_free - free the context (see the header's note on order); waiters left are dropped. */
void sts_free(sts_ctx *c);
/* sts_source_name - "cached", "fetched", ... for logs. */
const char *sts_source_name(enum sts_source s);

#endif

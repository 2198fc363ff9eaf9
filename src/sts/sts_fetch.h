/*
 * sts_fetch.h - fetching an MTA-STS policy over HTTPS with libcurl (RFC 8461 §3.3): GET
 * https://mta-sts.DOMAIN[:port]/.well-known/mta-sts.txt, the server's certificate verified against
 * the system CA store plus an extra CA file and named mta-sts.DOMAIN, no redirects, no proxy, no
 * HTTP cache, a timeout, at most STS_POLICY_MAX_BYTES of body, status 200 and Content-Type
 * text/plain only. sts_fetch BLOCKS: it runs on a worker thread (core/workq.h), never on the loop.
 * sts_fetch_global_init once at start-up (main thread, before any fetch).
 */
#ifndef SLUICE_STS_FETCH_H
#define SLUICE_STS_FETCH_H
#include <stdbool.h>

#include "core/util.h"
#include "sts/sts_result.h"

typedef struct {
    const char *domain;  /* the policy domain: the host is "mta-sts." domain */
    unsigned port;       /* 443 unless a lab says otherwise (option mta_sts_port) */
    const char *addrs;   /* "IP,IP,..." the host resolved to (our resolver), or NULL: curl resolves */
    const char *ca_file; /* PEM CA certificates trusted besides the system store, or NULL */
    unsigned timeout;    /* seconds for the whole fetch */
} sts_fetch_req;

typedef struct {
    bool ok;             /* body holds a policy text (not yet parsed) */
    sts_fail_facts fail; /* when not ok: what failed (stage FETCH or POLICY) */
    char why[256];       /* when not ok: for the log */
    strbuf body;         /* the caller frees it (sb_free) */
} sts_fetch_res;

/* sts_fetch_global_init - libcurl's global set-up (main thread, once, before workers fetch). */
void sts_fetch_global_init(void);
/* sts_fetch_abort_all - any thread: every fetch in progress or to come fails within a second
 * (the daemon is stopping: a hanging policy server must not hold its workers). */
void sts_fetch_abort_all(void);
/* sts_fetch_global_cleanup - libcurl's global clean-up (main thread, after the last fetch). */
void sts_fetch_global_cleanup(void);
/* sts_fetch_url - the policy's URL for domain and port; caller frees. */
char *sts_fetch_url(const char *domain, unsigned port);
/* sts_fetch - GET the policy of rq->domain into rs (initialised here). Blocks; thread-safe. */
void sts_fetch(const sts_fetch_req *rq, sts_fetch_res *rs);
/* sts_content_type_ok - whether a Content-Type value is text/plain (parameters allowed). */
bool sts_content_type_ok(const char *ct);

#endif

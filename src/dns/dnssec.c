/*
 * dnssec.c - the DNSSEC-aware MX and TLSA lookups (see dnssec.h) on the resolver of dns.c.
 *
 * c-ares 1.18 has no way to set the AD bit on its own queries, so each query is built with
 * ares_create_query (RD set, EDNS0 with a 1232-octet payload), the AD bit is set in its header
 * (RFC 6840 5.7: a validating resolver then reports in AD whether the answer is secure) and it
 * goes out with ares_send. ares_send hands back the raw reply for every rcode but SERVFAIL,
 * NOTIMP and REFUSED (those come as errors, after the other servers were tried); the reply is
 * read with the bounds-checked parser of dns_answer.c.
 *
 * A request is a dns_ext on the context's list until its callback has run; an answer known
 * before any I/O (c-ares failing the query at once) is delivered from a zero timeout, so no
 * callback runs inside dns_lookup_*. dns_free cancels what is left.
 */
#include "dns/dnssec.h"
#include "dns/dns_int.h"

#include <arpa/nameser.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EDNS_PAYLOAD 1232

typedef struct {
    dns_ext ext;          /* first: the list link dns_free walks */
    dns_ctx *d;
    uint16_t qtype;
    dns_sec_mx_cb mx_cb;
    dns_tlsa_cb tlsa_cb;
    void *arg;
    bool in_call;         /* inside dns_lookup_*: the answer must be deferred */
    struct event *defer;
    /* the answer */
    sl_result res;
    bool secure;
    char err[96];
    unsigned char *reply; /* a copy of the raw reply */
    size_t reply_len;
    dns_answer ans;
} sec_req;

/* rcode_result - an answer's rcode as a result and message. */
static sl_result rcode_result(unsigned rcode, char *err, size_t errlen)
{
    switch (rcode) {
    case 0: return SL_OK;
    case 3: snprintf(err, errlen, "host not found"); return SL_PERM;
    case 2: snprintf(err, errlen, "server failure (bogus or unreachable)"); return SL_TEMP;
    default: snprintf(err, errlen, "rcode %u", rcode); return SL_TEMP;
    }
}

/* status_result - a c-ares error status (no reply) as a result and message. */
static sl_result status_result(int status, char *err, size_t errlen)
{
    if (status == ARES_ESERVFAIL)
        snprintf(err, errlen, "server failure (bogus or unreachable)");
    else if (status == ARES_ECONNREFUSED) /* what c-ares 1.18 reports once every server said SERVFAIL or REFUSED */
        snprintf(err, errlen, "no answer (SERVFAIL: bogus, or the servers unreachable)");
    else if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED)
        snprintf(err, errlen, "cancelled");
    else
        snprintf(err, errlen, "%s", ares_strerror(status));
    return SL_TEMP;
}

/* sec_rand - uniform random for shuffling equal MX preferences. */
static uint32_t sec_rand(void *ctx, uint32_t bound)
{
    (void)ctx;
    return arc4random_uniform(bound);
}

/* req_release - unlink and free q. */
static void req_release(sec_req *q)
{
    dns_ext_unlink(q->d, &q->ext);
    if (q->defer) event_free(q->defer);
    free(q->reply);
    free(q);
}

/* deliver_mx - run an MX request's callback. */
static void deliver_mx(sec_req *q, bool cancelled)
{
    if (cancelled || q->res != SL_OK) {
        q->mx_cb(q->arg, cancelled ? SL_TEMP : q->res, false, NULL, 0, cancelled ? "cancelled" : q->err);
        return;
    }
    dns_mx *mx = NULL;
    size_t n = 0;
    if (!dns_mx_from_answer(q->reply, q->reply_len, &q->ans, &mx, &n)) {
        q->mx_cb(q->arg, SL_TEMP, false, NULL, 0, "malformed reply: bad MX record");
        return;
    }
    dns_mx_order(mx, n, sec_rand, NULL);
    q->mx_cb(q->arg, SL_OK, q->secure, mx, n, NULL);
    for (size_t i = 0; i < n; i++) free(mx[i].host);
    free(mx);
}

/* deliver_tlsa - run a TLSA request's callback. */
static void deliver_tlsa(sec_req *q, bool cancelled)
{
    if (cancelled || q->res == SL_TEMP) {
        q->tlsa_cb(q->arg, SL_TEMP, false, NULL, 0, cancelled ? "cancelled" : q->err);
        return;
    }
    dns_rdata rr[DNS_ANSWER_MAX_RR];
    size_t n = q->res == SL_OK ? q->ans.n : 0;
    for (size_t i = 0; i < n; i++) {
        rr[i].rdata = q->reply + q->ans.rr[i].off;
        rr[i].len = q->ans.rr[i].len;
    }
    q->tlsa_cb(q->arg, q->res, q->secure, rr, n, q->res == SL_OK ? NULL : q->err);
}

/* req_deliver - run q's callback (cancelled while the resolver is freed) and free q. */
static void req_deliver(sec_req *q)
{
    bool cancelled = dns_freeing(q->d);
    if (q->qtype == DNS_TYPE_MX)
        deliver_mx(q, cancelled);
    else
        deliver_tlsa(q, cancelled);
    req_release(q);
}

/* req_on_defer - deliver an answer that was known before any I/O. */
static void req_on_defer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    req_deliver(arg);
}

/* req_cancel - dns_free's hook for a deferred answer (ares_destroy has answered the others): "cancelled" now. */
static void req_cancel(dns_ext *x)
{
    req_deliver((sec_req *)x);
}

/* on_answer - c-ares' callback for the query of q. */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    sec_req *q = arg;
    (void)timeouts;
    if (status != ARES_SUCCESS || !abuf || alen <= 0) {
        q->res = status_result(status, q->err, sizeof q->err);
    } else if (!dns_answer_parse(abuf, (size_t)alen, q->qtype, &q->ans)) {
        q->res = SL_TEMP;
        snprintf(q->err, sizeof q->err, "malformed reply");
    } else {
        q->res = rcode_result(q->ans.rcode, q->err, sizeof q->err);
        q->secure = q->ans.ad && dns_ad_trusted(q->d) && q->res != SL_TEMP;
        q->reply = xmalloc((size_t)alen);
        memcpy(q->reply, abuf, (size_t)alen);
        q->reply_len = (size_t)alen;
    }
    if (q->in_call && !dns_freeing(q->d)) {
        static const struct timeval zero = {0, 0};
        q->defer = evtimer_new(dns_base(q->d), req_on_defer, q);
        if (!q->defer) abort();
        evtimer_add(q->defer, &zero);
        return;
    }
    req_deliver(q);
}

/* sec_send - a query for name/qtype with the AD bit set; the answer goes to q. */
static void sec_send(sec_req *q, const char *name)
{
    unsigned char *qbuf = NULL;
    int qlen = 0;
    q->in_call = true;
    dns_ext_link(q->d, &q->ext);
    int rc = ares_create_query(name, ns_c_in, q->qtype, 0, 1, &qbuf, &qlen, EDNS_PAYLOAD);
    if (rc != ARES_SUCCESS || qlen < 12) {
        if (qbuf) ares_free_string(qbuf);
        on_answer(q, rc == ARES_SUCCESS ? ARES_EBADQUERY : rc, 0, NULL, 0);
    } else {
        qbuf[3] |= 0x20; /* AD: tell us whether the answer is authentic (RFC 6840 5.7) */
        ares_send(dns_channel(q->d), qbuf, qlen, on_answer, q);
        ares_free_string(qbuf);
    }
    q->in_call = false;
    dns_kick(q->d);
}

/* sec_new - a request of d. */
static sec_req *sec_new(dns_ctx *d, uint16_t qtype, void *arg)
{
    sec_req *q = xcalloc(1, sizeof *q);
    q->d = d;
    q->qtype = qtype;
    q->arg = arg;
    q->ext.cancel = req_cancel;
    return q;
}

void dns_lookup_mx_sec(dns_ctx *d, const char *domain, dns_sec_mx_cb cb, void *arg)
{
    sec_req *q = sec_new(d, DNS_TYPE_MX, arg);
    q->mx_cb = cb;
    sec_send(q, domain);
}

void dns_lookup_tlsa(dns_ctx *d, const char *host, unsigned port, dns_tlsa_cb cb, void *arg)
{
    sec_req *q = sec_new(d, DNS_TYPE_TLSA, arg);
    q->tlsa_cb = cb;
    char *name = xasprintf("_%u._tcp.%s", port, host);
    sec_send(q, name);
    free(name);
}

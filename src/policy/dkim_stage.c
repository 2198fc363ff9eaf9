/*
 * dkim_stage.c - DKIM at the end of data (see dkim_stage.h).
 *
 * Verifying: mail from clients that are not ours (not a local submission, not authenticated,
 * not inside internal_networks) with dkim_verify=yes is checked with dkim/dkim_dns.c before the
 * milters run, so they and Sieve see the Authentication-Results: field (RFC 8601, authserv-id =
 * host_name). Every result, temperror included, is recorded only: DKIM alone never refuses.
 *
 * Signing: with dkim_sign=local (our own mail: local submissions, authenticated clients and
 * internal_networks clients) or all, each distinct content the commit plan queues (after the
 * milters' and Sieve's header edits) gets one DKIM-Signature per keys-table line of the From:
 * domain or its nearest parent in the table: relaxed/relaxed, the From, To, Subject, Date,
 * Message-ID ... headers oversigned. Keys were read at configuration load. Signing runs on the
 * loop: an RSA-2048 signature costs about a millisecond (the "dkim_signed" log line says how
 * long each took) and the content is already in memory, so a worker hop would cost more
 * bookkeeping than it saves at our rates (see doc/sender-checks.md).
 */
#include "conf/conf.h"
#include "core/log.h"
#include "dkim/dkim.h"
#include "dkim/dkim_keys.h"
#include "policy/dkim_stage.h"
#include "queue/qfile.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* One verification in progress (ps->dkim_job). */
typedef struct dkim_job {
    policy_sess *ps;
    dkim_req *req;
    void (*done)(policy_sess *ps, smtp_sess *s);
} dkim_job;

/* insert_fields - header lines (each ending CRLF) after the trace lines and our Received: of s's message. */
static void insert_fields(smtp_sess *s, const char *lines)
{
    strbuf b;
    sb_init(&b);
    sb_append(&b, s->data.data, s->hdr_len);
    sb_puts(&b, lines);
    sb_append(&b, s->data.data + s->hdr_len, s->data.len - s->hdr_len);
    smtp_sess_set_content(s, &b);
}

/* ar_value - v with the characters an RFC 8601 value may not hold in a quoted-string replaced. */
static void ar_value(strbuf *out, const char *v)
{
    for (const char *c = v; *c; c++) sb_printf(out, "%c", *c == '"' || *c == '\\' || (unsigned char)*c < 32 ? '\'' : *c);
}

/* verified - every signature's result: logged, and the Authentication-Results: field. */
static void verified(void *arg, const dkim_sig_info *sigs, size_t n)
{
    dkim_job *j = arg;
    policy_sess *ps = j->ps;
    smtp_sess *s = ps->s;
    ps->dkim_job = NULL;
    strbuf ar;
    sb_init(&ar);
    sb_printf(&ar, "Authentication-Results: %s", s->conf->opt.hostname);
    if (n == 0) sb_puts(&ar, ";\r\n\tdkim=none");
    for (size_t i = 0; i < n; i++) {
        const dkim_sig_info *g = &sigs[i];
        log_info(s->qid, "dkim", "result=%s domain=\"%s\" selector=\"%s\" reason=\"%s\"", dkim_res_name(g->res),
                 g->domain ? g->domain : "", g->selector ? g->selector : "", g->reason);
        sb_printf(&ar, ";\r\n\tdkim=%s", dkim_res_name(g->res));
        if (g->res != DKIM_PASS && g->reason[0]) {
            sb_puts(&ar, " reason=\"");
            ar_value(&ar, g->reason);
            sb_puts(&ar, "\"");
        }
        if (g->domain && !strpbrk(g->domain, " ;\"\\")) sb_printf(&ar, " header.d=%s", g->domain);
        if (g->selector && !strpbrk(g->selector, " ;\"\\")) sb_printf(&ar, " header.s=%s", g->selector);
        if (g->algorithm && !strpbrk(g->algorithm, " ;\"\\")) sb_printf(&ar, " header.a=%s", g->algorithm);
    }
    if (n == 0) log_info(s->qid, "dkim", "result=none");
    sb_puts(&ar, "\r\n");
    insert_fields(s, ar.data);
    sb_free(&ar);
    void (*done)(policy_sess *, smtp_sess *) = j->done;
    free(j);
    done(ps, s);
}

void dkim_stage_verify(policy_sess *ps, smtp_sess *s, void (*done)(policy_sess *ps, smtp_sess *s))
{
    if (!s->conf->opt.dkim_verify || s->local || s->auth_user || s->client_internal || !ps->p->ctx->dns)
        return done(ps, s);
    dkim_job *j = xcalloc(1, sizeof *j);
    j->ps = ps;
    j->done = done;
    ps->dkim_job = j; /* verified may run inside dkim_check (no lookup needed): it clears this */
    dkim_req *req = dkim_check(ps->p->ctx->dns, s->data.data, s->data.len, now_unix(), verified, j);
    if (req) j->req = req;
}

void dkim_stage_abandon(policy_sess *ps)
{
    dkim_job *j = ps->dkim_job;
    dkim_check_cancel(j->req);
    free(j);
    ps->dkim_job = NULL;
}

/* ---------------------------------------------------------------------------------- signing */

/* sign_wanted - dkim_sign covers s's client. */
static bool sign_wanted(const smtp_sess *s)
{
    const sl_options *o = &s->conf->opt;
    if (o->dkim_sign == DKIM_SIGN_NO || !s->conf->dkim_keys) return false;
    return o->dkim_sign == DKIM_SIGN_ALL || s->local || s->auth_user || s->client_internal;
}

/* from_domain - the domain of the one From: field of msg's header (lower case), or NULL when
 * there is none, several, or several addresses in it. Caller frees. */
static char *from_domain(const char *msg, size_t len)
{
    const char *end = msg + len, *found = NULL, *found_end = NULL;
    for (const char *p = msg; p < end && !(*p == '\r' || *p == '\n');) {
        const char *e = p;
        for (;;) { /* the field, with its continuation lines */
            const char *nl = memchr(e, '\n', (size_t)(end - e));
            if (!nl) return NULL;
            e = nl + 1;
            if (e >= end || (*e != ' ' && *e != '\t')) break;
        }
        if (e - p > 5 && strncasecmp(p, "From:", 5) == 0) {
            if (found) return NULL; /* two From: fields: nothing to sign for */
            found = p + 5, found_end = e;
        }
        p = e;
    }
    if (!found) return NULL;
    char *v = xstrndup(found, (size_t)(found_end - found));
    char *addr = strrchr(v, '<') ? strrchr(v, '<') + 1 : v;
    if (strchr(addr, ',')) { /* several authors (RFC 5322 allows it; DKIM/DMARC signers do not) */
        free(v);
        return NULL;
    }
    char *at = strrchr(addr, '@');
    char *dom = NULL;
    if (at) {
        size_t n = strcspn(at + 1, "> \t\r\n;()");
        dom = xstrndup(at + 1, n);
        for (char *c = dom; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        if (!*dom) {
            free(dom);
            dom = NULL;
        }
    }
    free(v);
    return dom;
}

/* elapsed_us - microseconds since t0. */
static long elapsed_us(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000000L + (t1.tv_nsec - t0->tv_nsec) / 1000;
}

/* sign_content - c with one DKIM-Signature per key of table domain dom, or NULL when none could be made. */
static qbody *sign_content(const char *id, const dkim_keys *t, const char *dom, const qbody *c)
{
    strbuf sigs;
    sb_init(&sigs);
    for (size_t i = 0; i < t->n; i++) {
        const dkim_key *k = &t->k[i];
        if (strcmp(k->domain, dom)) continue;
        dkim_sign_opts o = {.domain = k->domain, .selector = k->selector, .key = k->key,
                            .header_canon = DKIM_CANON_RELAXED, .body_canon = DKIM_CANON_RELAXED,
                            .headers = (const char *const *)k->headers, .n_headers = k->n_headers, .oversign = true,
                            .now = now_unix()};
        char err[200] = "";
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        size_t before = sigs.len;
        if (dkim_sign(c->data, c->len, &o, &sigs, err, sizeof err) != 0) {
            sigs.len = before;
            log_warn(id, "dkim_sign_failed", "domain=%s selector=%s error=\"%s\"", k->domain, k->selector, err);
            continue;
        }
        log_info(id, "dkim_signed", "domain=%s selector=%s usec=%ld", k->domain, k->selector, elapsed_us(&t0));
    }
    if (sigs.len == 0) {
        sb_free(&sigs);
        return NULL;
    }
    sb_append(&sigs, c->data, c->len);
    size_t len = sigs.len;
    return qbody_adopt(sb_steal(&sigs), len);
}

void dkim_stage_sign(const smtp_sess *s, commit_plan *p)
{
    if (!sign_wanted(s)) return;
    const dkim_keys *t = s->conf->dkim_keys;
    qbody **was = xcalloc(p->n_msgs + 1, sizeof *was); /* content before signing, per part */
    for (size_t i = 0; i < p->n_msgs; i++) {
        enq_msg *m = p->msgs[i];
        qbody *orig = m->content;
        was[i] = orig;
        size_t k = 0;
        while (k < i && was[k] != orig) k++;
        if (k < i) { /* the same content as an earlier part: its signed copy */
            m->content = qbody_ref(p->msgs[k]->content);
            qbody_unref(orig);
            continue;
        }
        char *dom = from_domain(orig->data, orig->len);
        const char *tdom = dom ? dkim_keys_domain(t, dom) : NULL;
        qbody *signed_c = tdom ? sign_content(m->id, t, tdom, orig) : NULL;
        if (!tdom)
            log_info(m->id, "dkim_unsigned", "from_domain=\"%s\" reason=\"%s\"", dom ? dom : "",
                     dom ? "no key for the domain" : "no single From: address");
        free(dom);
        if (!signed_c) continue;
        m->content = signed_c;
        qbody_unref(orig);
    }
    free(was);
}

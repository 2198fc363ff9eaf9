/*
 * dkim_stage.c - DKIM at the end of data (see dkim_stage.h).
 *
 * Verifying: mail from clients that are not ours (not a local submission, not authenticated,
 * not inside internal_networks) with dkim_verify=yes is checked with dkim/dkim_dns.c before the
 * milters run, so they and Sieve see the Authentication-Results: field (RFC 8601, authserv-id =
 * host_name). Every result, temperror included, is recorded only: DKIM alone never refuses.
 *
 * DMARC (dmarc_check=yes, same clients): after the DKIM results, the From: domain's _dmarc
 * record (else its organizational domain's, dkim/dmarc.c), SPF's result at MAIL FROM and the
 * passing d= domains give pass or fail; dmarc_action says whether a fail of a p=reject domain
 * is refused (VERDICT_DMARC_REJECT), marked (X-Sluice-DMARC: quarantine) or only recorded. A
 * lookup that fails for now is a temperror and the message goes on.
 *
 * Signing: with dkim_sign=local (our own mail: local submissions, authenticated clients and
 * internal_networks clients) or all, each distinct content the commit plan queues (after the
 * milters' and Sieve's header edits) gets one DKIM-Signature per keys-table line of the From:
 * domain or its nearest parent in the table: relaxed/relaxed, the From, To, Subject, Date,
 * Message-ID ... headers oversigned. Keys were read at configuration load. The signatures are
 * made on a worker thread (core/workq.h: an RSA-2048 signature costs ~0.4 ms, the
 * "dkim_signed" log line says how long each took), so the loop never waits for the crypto; the
 * job holds references to the contents and to the configuration whose keys it uses, and a
 * session that ends meanwhile only detaches itself from it.
 */
#include "conf/conf.h"
#include "core/log.h"
#include "dkim/dkim.h"
#include "dkim/dkim_keys.h"
#include "dkim/dmarc.h"
#include "core/workq.h"
#include "dns/dns.h"
#include "spf/spf.h"
#include "policy/dkim_stage.h"
#include "queue/qfile.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* One verification in progress (ps->dkim_job): DKIM, then DMARC. */
typedef struct dkim_job {
    policy_sess *ps;
    dkim_req *req;         /* the DKIM check, until it answers */
    bool dmarc_phase;      /* a _dmarc TXT lookup is out (it cannot be cancelled: see cancelled) */
    bool cancelled;        /* the session ended during the lookup: its answer only frees the job */
    strvec pass_domains;   /* d= of the DKIM signatures that passed */
    bool dkim_temp;        /* a DKIM key lookup failed for now */
    char *from_dom, *org;  /* the From: domain and its organizational domain */
    bool org_lookup;       /* the record being looked up is the organizational domain's */
    void (*done)(policy_sess *ps, smtp_sess *s);
} dkim_job;

/* job_free - release j. */
static void job_free(dkim_job *j)
{
    sv_free(&j->pass_domains);
    free(j->from_dom);
    free(j->org);
    free(j);
}

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

static char *from_domain(const char *msg, size_t len);
static void dmarc_start(dkim_job *j, smtp_sess *s);

/* finish - the checks are over: go on with the message. */
static void finish(dkim_job *j, smtp_sess *s)
{
    policy_sess *ps = j->ps;
    ps->dkim_job = NULL;
    void (*done)(policy_sess *, smtp_sess *) = j->done;
    job_free(j);
    done(ps, s);
}

/* verified - every signature's result: logged, the Authentication-Results: field, then DMARC. */
static void verified(void *arg, const dkim_sig_info *sigs, size_t n)
{
    dkim_job *j = arg;
    smtp_sess *s = j->ps->s;
    j->req = NULL;
    strbuf ar;
    sb_init(&ar);
    sb_printf(&ar, "Authentication-Results: %s", s->conf->opt.hostname);
    if (n == 0) sb_puts(&ar, ";\r\n\tdkim=none");
    for (size_t i = 0; i < n; i++) {
        const dkim_sig_info *g = &sigs[i];
        log_info(s->qid, "dkim", "result=%s domain=\"%s\" selector=\"%s\" reason=\"%s\"", dkim_res_name(g->res),
                 g->domain ? g->domain : "", g->selector ? g->selector : "", g->reason);
        if (g->res == DKIM_PASS && g->domain) sv_push(&j->pass_domains, g->domain);
        if (g->res == DKIM_TEMPERROR) j->dkim_temp = true;
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
    if (s->conf->opt.dkim_verify) insert_fields(s, ar.data);
    sb_free(&ar);
    if (s->conf->opt.dmarc_check) return dmarc_start(j, s);
    finish(j, s);
}

/* verify_wanted - s's message is checked: a stranger's, with dkim_verify or dmarc_check on. */
static bool verify_wanted(policy_sess *ps, const smtp_sess *s)
{
    const sl_options *o = &s->conf->opt;
    return (o->dkim_verify || (o->dmarc_check && s->conf->dmarc_psl)) && !s->local && !s->auth_user &&
           !s->client_internal && ps->p->ctx->dns;
}

void dkim_stage_verify(policy_sess *ps, smtp_sess *s, void (*done)(policy_sess *ps, smtp_sess *s))
{
    if (!verify_wanted(ps, s)) return done(ps, s);
    dkim_job *j = xcalloc(1, sizeof *j);
    j->ps = ps;
    j->done = done;
    ps->dkim_job = j; /* verified may run inside dkim_check (no lookup needed) */
    dkim_req *req = dkim_check(ps->p->ctx->dns, s->data.data, s->data.len, now_unix(), verified, j);
    if (req && ps->dkim_job == j && !j->dmarc_phase) j->req = req;
}

void dkim_stage_abandon(policy_sess *ps)
{
    dkim_job *j = ps->dkim_job;
    ps->dkim_job = NULL;
    if (j->dmarc_phase) { /* the DNS answer will come: it frees the job */
        j->cancelled = true;
        return;
    }
    dkim_check_cancel(j->req);
    job_free(j);
}

/* ------------------------------------------------------------------------------------- DMARC */

/* dmarc_record_of - the one DMARC record among TXT strings (§6.6.3: none or several = none). */
static bool dmarc_record_of(char *const *strs, size_t n, dmarc_record *r)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        dmarc_record x = {0};
        if (strncmp(strs[i], "v=DMARC1", 8) == 0 && dmarc_record_parse(strs[i], &x) == 0) {
            *r = x;
            found++;
        }
    }
    return found == 1;
}

/* dmarc_note - log the result and write its Authentication-Results: field (and the quarantine mark). */
static void dmarc_note(smtp_sess *s, const char *res, const char *from, const char *policy, const char *disp)
{
    log_info(s->qid, "dmarc", "result=%s from_domain=\"%s\" policy=%s disposition=%s", res, from ? from : "",
             policy, disp);
    strbuf ar;
    sb_init(&ar);
    sb_printf(&ar, "Authentication-Results: %s;\r\n\tdmarc=%s", s->conf->opt.hostname, res);
    if (strcmp(policy, "-")) sb_printf(&ar, " (p=%s dis=%s)", policy, disp);
    if (from && !strpbrk(from, " ;\"\\()")) sb_printf(&ar, " header.from=%s", from);
    sb_puts(&ar, "\r\n");
    if (!strcmp(disp, "quarantine")) sb_puts(&ar, "X-Sluice-DMARC: quarantine\r\n"); /* Sieve can file it */
    insert_fields(s, ar.data);
    sb_free(&ar);
}

/* mail_from_domain - the SPF identity's domain: MAIL FROM's, or the HELO name for a null sender. */
static const char *mail_from_domain(const smtp_sess *s)
{
    const char *at = s->sender ? strrchr(s->sender, '@') : NULL;
    return at ? at + 1 : s->helo;
}

/* dmarc_evaluate - §6.6.2 with record r: pass, or fail with the policy; then act as dmarc_action says. */
static void dmarc_evaluate(dkim_job *j, smtp_sess *s, const dmarc_record *r)
{
    const dmarc_psl *psl = s->conf->dmarc_psl;
    bool spf_ok = j->ps->spf_result == SPF_PASS && dmarc_aligned(psl, mail_from_domain(s), j->from_dom, r->aspf_strict);
    bool dkim_ok = false;
    for (size_t i = 0; i < j->pass_domains.n && !dkim_ok; i++)
        dkim_ok = dmarc_aligned(psl, j->pass_domains.v[i], j->from_dom, r->adkim_strict);
    dmarc_policy pol = j->org_lookup && r->sp_given ? r->sp : r->p;
    if (spf_ok || dkim_ok) {
        dmarc_note(s, "pass", j->from_dom, dmarc_policy_name(pol), "none");
        return finish(j, s);
    }
    dmarc_policy disp = pol;
    if (r->pct < 100 && (unsigned)(random() % 100) >= r->pct) /* §6.6.4: outside pct, one step milder */
        disp = disp == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
    enum dmarc_action act = s->conf->opt.dmarc_action;
    if (act == DMARC_ACTION_NONE) disp = DMARC_P_NONE;
    if (act == DMARC_ACTION_QUARANTINE && disp == DMARC_P_REJECT) disp = DMARC_P_QUARANTINE;
    dmarc_note(s, "fail", j->from_dom, dmarc_policy_name(pol), dmarc_policy_name(disp));
    if (disp != DMARC_P_REJECT) return finish(j, s);
    policy_sess *ps = j->ps;
    ps->dkim_job = NULL;
    job_free(j);
    verdict v = verdict_refuse(VERDICT_DMARC_REJECT, false, NULL);
    policy_commit_refuse(ps, NULL, &v); /* may free the session */
}

/* dmarc_answer - the _dmarc TXT records of the From: domain or of its organizational domain. */
static void dmarc_answer(void *arg, sl_result res, char *const *strs, size_t n, const char *errmsg)
{
    dkim_job *j = arg;
    (void)errmsg;
    if (j->cancelled) return job_free(j);
    smtp_sess *s = j->ps->s;
    dmarc_record r = {0};
    if (res == SL_TEMP || (res == SL_ERR)) { /* never a refusal on a lookup that failed for now */
        dmarc_note(s, "temperror", j->from_dom, "-", "none");
        return finish(j, s);
    }
    if (res == SL_OK && dmarc_record_of(strs, n, &r)) return dmarc_evaluate(j, s, &r);
    if (!j->org_lookup && strcmp(j->org, j->from_dom)) { /* §6.6.3: then the organizational domain's */
        j->org_lookup = true;
        char *name = xasprintf("_dmarc.%s", j->org);
        dns_lookup_txt(j->ps->p->ctx->dns, name, dmarc_answer, j);
        free(name);
        return;
    }
    dmarc_note(s, "none", j->from_dom, "-", "none");
    finish(j, s);
}

/* dmarc_start - look up the From: domain's DMARC record. */
static void dmarc_start(dkim_job *j, smtp_sess *s)
{
    j->from_dom = from_domain(s->data.data + s->hdr_len, s->data.len - s->hdr_len);
    if (!j->from_dom) { /* no single From: domain: nothing DMARC can say (§6.6.1) */
        dmarc_note(s, "permerror", NULL, "-", "none");
        return finish(j, s);
    }
    j->org = dmarc_org_domain(s->conf->dmarc_psl, j->from_dom);
    j->dmarc_phase = true;
    char *name = xasprintf("_dmarc.%s", j->from_dom);
    dns_lookup_txt(j->ps->p->ctx->dns, name, dmarc_answer, j); /* may answer at once */
    free(name);
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

/* Signing on a worker: the distinct contents of a commit plan, with what to sign each with. */
typedef struct sign_job {
    policy_sess *ps;       /* NULL once the session let the commit go (the result is dropped) */
    void (*done)(policy_sess *ps);
    sl_ctx *ctx;
    sl_conf *conf;         /* a reference: its keys table is used on the worker */
    size_t n_parts;
    size_t *part;          /* per plan part, the index of its distinct content */
    size_t n;              /* distinct contents */
    qbody **in, **out;     /* per content: a reference, and the signed copy (NULL: unsigned) */
    char **dom;            /* per content: the table domain signing it, or NULL */
    strvec *notes;         /* per content: "dkim_signed ..." / "dkim_sign_failed ..." lines to log */
    int64_t now;
} sign_job;

/* sign_content - c with one DKIM-Signature per key of table domain dom, or NULL when none could
 * be made; what happened goes to notes. Any thread. */
static qbody *sign_content(const dkim_keys *t, const char *dom, const qbody *c, int64_t now, strvec *notes)
{
    strbuf sigs;
    sb_init(&sigs);
    for (size_t i = 0; i < t->n; i++) {
        const dkim_key *k = &t->k[i];
        if (strcmp(k->domain, dom)) continue;
        dkim_sign_opts o = {.domain = k->domain, .selector = k->selector, .key = k->key,
                            .header_canon = DKIM_CANON_RELAXED, .body_canon = DKIM_CANON_RELAXED,
                            .headers = (const char *const *)k->headers, .n_headers = k->n_headers, .oversign = true,
                            .now = now};
        char err[200] = "";
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        size_t before = sigs.len;
        if (dkim_sign(c->data, c->len, &o, &sigs, err, sizeof err) != 0) {
            sigs.len = before;
            sv_push_owned(notes, xasprintf("!domain=%s selector=%s error=\"%s\"", k->domain, k->selector, err));
            continue;
        }
        sv_push_owned(notes, xasprintf("domain=%s selector=%s usec=%ld", k->domain, k->selector, elapsed_us(&t0)));
    }
    if (sigs.len == 0) {
        sb_free(&sigs);
        return NULL;
    }
    sb_append(&sigs, c->data, c->len);
    size_t len = sigs.len;
    return qbody_adopt(sb_steal(&sigs), len);
}

/* sign_work - every content signed (worker thread: touches only the job, its contents and keys). */
static void sign_work(void *arg)
{
    sign_job *j = arg;
    for (size_t k = 0; k < j->n; k++)
        if (j->dom[k]) j->out[k] = sign_content(j->conf->dkim_keys, j->dom[k], j->in[k], j->now, &j->notes[k]);
}

/* sign_job_free - release j and the references it holds. */
static void sign_job_free(sign_job *j)
{
    for (size_t k = 0; k < j->n; k++) {
        qbody_unref(j->in[k]);
        qbody_unref(j->out[k]);
        free(j->dom[k]);
        sv_free(&j->notes[k]);
    }
    ctx_conf_put(j->ctx, j->conf);
    free(j->in), free(j->out), free(j->dom), free(j->notes), free(j->part);
    free(j);
}

/* sign_done - the signed contents replace the plan's (loop thread); then the commit goes on. */
static void sign_done(void *arg)
{
    sign_job *j = arg;
    policy_sess *ps = j->ps;
    if (!ps) return sign_job_free(j); /* the session let its commit go meanwhile */
    ps->sign_job = NULL;
    commit_plan *p = ps->pending;
    for (size_t i = 0; i < j->n_parts; i++) {
        enq_msg *m = p->msgs[i];
        size_t k = j->part[i];
        for (size_t x = 0; i == k && x < j->notes[k].n; x++) { /* logged once per content */
            const char *note = j->notes[k].v[x];
            if (note[0] == '!') log_warn(m->id, "dkim_sign_failed", "%s", note + 1);
            else log_info(m->id, "dkim_signed", "%s", note);
        }
        if (!j->out[k]) continue;
        qbody_unref(m->content);
        m->content = qbody_ref(j->out[k]);
    }
    void (*done)(policy_sess *) = j->done;
    sign_job_free(j);
    done(ps);
}

void dkim_stage_sign(policy_sess *ps, commit_plan *p, void (*done)(policy_sess *ps))
{
    const smtp_sess *s = ps->s;
    if (!sign_wanted(s) || p->n_msgs == 0) return done(ps);
    sign_job *j = xcalloc(1, sizeof *j);
    j->ps = ps;
    j->done = done;
    j->ctx = ps->p->ctx;
    j->conf = ctx_conf_get(j->ctx); /* the current keys (a reload may have replaced the session's) */
    j->now = now_unix();
    j->n_parts = p->n_msgs;
    j->part = xcalloc(p->n_msgs, sizeof *j->part);
    j->in = xcalloc(p->n_msgs, sizeof *j->in);
    j->out = xcalloc(p->n_msgs, sizeof *j->out);
    j->dom = xcalloc(p->n_msgs, sizeof *j->dom);
    j->notes = xcalloc(p->n_msgs, sizeof *j->notes);
    bool any = false;
    for (size_t i = 0; i < p->n_msgs; i++) {
        enq_msg *m = p->msgs[i];
        size_t k = 0;
        while (k < j->n && j->in[k] != m->content) k++;
        j->part[i] = k;
        if (k < j->n) continue; /* the same content as an earlier part: signed once */
        j->in[j->n++] = qbody_ref(m->content);
        char *dom = from_domain(m->content->data, m->content->len);
        const char *tdom = dom && j->conf->dkim_keys ? dkim_keys_domain(j->conf->dkim_keys, dom) : NULL;
        if (tdom) {
            j->dom[k] = xstrdup(tdom);
            any = true;
        } else {
            log_info(m->id, "dkim_unsigned", "from_domain=\"%s\" reason=\"%s\"", dom ? dom : "",
                     dom ? "no key for the domain" : "no single From: address");
        }
        free(dom);
    }
    if (!any || !j->ctx->wq) { /* nothing to sign, or no workers (a dry run): here and now */
        if (any) sign_work(j);
        j->ps = ps;
        return sign_done(j);
    }
    ps->sign_job = j;
    workq_submit(j->ctx->wq, sign_work, sign_done, j);
}

void dkim_stage_sign_abandon(policy_sess *ps)
{
    if (!ps->sign_job) return;
    ps->sign_job->ps = NULL; /* the worker's completion frees the job */
    ps->sign_job = NULL;
}

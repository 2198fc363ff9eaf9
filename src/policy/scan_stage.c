/*
 * scan_stage.c - content scanning and per-recipient Sieve actions at the end of data (see
 * scan_stage.h).
 */
#include "policy/scan_stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/log.h"
#include "dsn/autoreply.h"
#include "policy/commit.h"
#include "policy/vacation.h"
#include "rewrite/rewrite.h"
#include "rewrite/route.h"
#include "scan/scan_io.h"
#include "sieve/sieve.h"

#define SIEVE_CACHE_MAX 256 /* compiled scripts kept (configuration actions and users' filters) */
#define DEFAULT_STRING_ACTION "require \"fileinto\"; fileinto \"$U\";" /* Messaging Server's */

/* One scan: scanner n asked once for the recipients that share an opt-in string. */
struct scan_stage;

typedef struct {
    struct scan_stage *st;
    unsigned n;          /* scanner index, 0-based */
    char *optin;
    size_t *idx;         /* the recipients (indexes into s->rcpts) */
    size_t nidx;
    const char **addrs;  /* their addresses, for the scanner */
    scan_job *job;
    scan_result res;
    bool done;
} scan_group;

struct scan_stage {
    policy_sess *ps;
    smtp_sess *s;
    scan_group *g;
    size_t ng, pending;
};

/* A compiled script the policy keeps, keyed by its text. */
typedef struct sieve_entry {
    char *text;
    sieve_script *script; /* NULL: it does not compile (err) */
    char *err;
    struct sieve_entry *next;
} sieve_entry;

/* ---- which scanners each recipient opted into ---------------------------------------------- */

/* dir_optin - the directory's opt-in string of r for scanner n (from its "N\tSTRING" lines), or NULL. */
static char *dir_optin(const qrcpt *r, unsigned n)
{
    if (!r->optins) return NULL;
    char key[8];
    snprintf(key, sizeof key, "%u\t", n + 1);
    size_t kl = strlen(key);
    for (const char *p = r->optins; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len >= kl && strncmp(p, key, kl) == 0) return xstrndup(p + kl, len - kl);
        p += len + (nl ? 1 : 0);
    }
    return NULL;
}

/* rcpt_optin - the opt-in string of r for scanner n (the directory, then the destination channel,
 * then the source channel), or NULL when r does not opt in. */
static char *rcpt_optin(const smtp_sess *s, const qrcpt *r, unsigned n)
{
    char *d = dir_optin(r, n);
    if (d) return d;
    const sl_channel *dst = conf_channel_by_name(s->conf, r->channel);
    if (dst && dst->dst_scan[n]) return xstrdup(dst->dst_scan[n]);
    const sl_channel *src = conf_channel_by_name(s->conf, s->src_channel);
    if (src && src->src_scan[n]) return xstrdup(src->src_scan[n]);
    return NULL;
}

/* scanner_usable - scanner n is one the stage asks (spamd, clamd, a box's header; milters are
 * asked during the session). */
static bool scanner_usable(const sl_conf *c, unsigned n)
{
    enum sl_scanner_kind k = c->opt.scanners[n].kind;
    return k == SL_SCANNER_SPAMD || k == SL_SCANNER_CLAMD || k == SL_SCANNER_HEADER;
}

/* group_for - the group of scanner n and optin, created when new. */
static scan_group *group_for(struct scan_stage *st, unsigned n, const char *optin)
{
    for (size_t i = 0; i < st->ng; i++)
        if (st->g[i].n == n && strcmp(st->g[i].optin, optin) == 0) return &st->g[i];
    st->g = xrealloc(st->g, (st->ng + 1) * sizeof *st->g);
    scan_group *g = &st->g[st->ng++];
    memset(g, 0, sizeof *g);
    g->n = n;
    g->optin = xstrdup(optin);
    return g;
}

/* build_groups - every (scanner, opt-in string) asked for, with its recipients. */
static void build_groups(struct scan_stage *st)
{
    smtp_sess *s = st->s;
    for (unsigned n = 0; n < SL_SCANNERS; n++) {
        if (!scanner_usable(s->conf, n)) continue;
        for (size_t i = 0; i < s->n_rcpts; i++) {
            if (commit_rcpt_dup(s, i)) continue;
            char *optin = rcpt_optin(s, &s->rcpts[i], n);
            if (!optin) continue;
            scan_group *g = group_for(st, n, optin);
            free(optin);
            g->idx = xrealloc(g->idx, (g->nidx + 1) * sizeof *g->idx);
            g->addrs = xrealloc(g->addrs, (g->nidx + 1) * sizeof *g->addrs);
            g->idx[g->nidx] = i;
            g->addrs[g->nidx++] = s->rcpts[i].addr;
        }
    }
}

bool scan_stage_wanted(policy_sess *ps, const smtp_sess *s)
{
    (void)ps;
    if (s->conf->sieve_filter_text) return true;
    for (size_t i = 0; i < s->n_rcpts; i++)
        if (s->rcpts[i].sieve) return true;
    for (unsigned n = 0; n < SL_SCANNERS; n++) {
        if (!scanner_usable(s->conf, n)) continue;
        for (size_t i = 0; i < s->n_rcpts; i++) {
            char *optin = rcpt_optin(s, &s->rcpts[i], n);
            free(optin);
            if (optin) return true;
        }
    }
    return false;
}

/* ---- compiled scripts ------------------------------------------------------------------------ */

/* script_get - text compiled (cached by text); NULL when it does not compile (logged once). */
static const sieve_script *script_get(struct policy *p, const char *text, const char *what, const char *id)
{
    sieve_entry **pp = (sieve_entry **)&p->sieve_cache;
    size_t count = 0;
    for (sieve_entry *e = *pp; e; e = e->next, count++)
        if (strcmp(e->text, text) == 0) return e->script;
    sieve_entry *e = xcalloc(1, sizeof *e);
    char err[256] = "";
    e->text = xstrdup(text);
    e->script = sieve_parse_url(text, err, sizeof err);
    if (!e->script) {
        e->err = xstrdup(err);
        log_warn(id, "sieve_error", "script=%s error=\"%s\"", what, err);
    }
    if (count >= SIEVE_CACHE_MAX) { /* drop the oldest (the list's tail) */
        sieve_entry **t = pp;
        while ((*t)->next) t = &(*t)->next;
        sieve_free((*t)->script);
        free((*t)->text);
        free((*t)->err);
        free(*t);
        *t = NULL;
    }
    e->next = *pp;
    *pp = e;
    return e->script;
}

void scan_cache_free(struct policy *p)
{
    sieve_entry *e = p->sieve_cache;
    while (e) {
        sieve_entry *next = e->next;
        sieve_free(e->script);
        free(e->text);
        free(e->err);
        free(e);
        e = next;
    }
    p->sieve_cache = NULL;
}

/* ---- per-recipient decisions ----------------------------------------------------------------- */

/* What Sieve decided for one recipient. */
typedef struct {
    sieve_result r;
    char *header;      /* the header its copy carries (NULL: the message's own) */
    size_t header_len;
} rcpt_outcome;

/* action_text - the Sieve script a verdict calls for (verdict pairs, string or null action),
 * with $U the verdict; NULL for none. */
static char *action_text(const sl_scanner *sc, const scan_result *res)
{
    if (res->status != SCAN_DONE) return NULL;
    if (!res->verdict) return sc->null_action ? xstrdup(sc->null_action) : NULL;
    const char *act = NULL;
    for (unsigned m = 0; m < SL_SCANNER_VERDICTS && !act; m++)
        if (sc->verdict[m] && str_ieq(sc->verdict[m], res->verdict)) act = sc->action[m];
    if (!act) act = sc->string_action ? sc->string_action : DEFAULT_STRING_ACTION;
    strbuf b;
    sb_init(&b);
    for (const char *p = act; *p; p++) {
        if (p[0] == '$' && p[1] == 'U') {
            for (const char *v = res->verdict; *v; v++) { /* a safe string inside a Sieve quoted string */
                if (*v == '"' || *v == '\\') sb_putc(&b, '\\');
                if ((unsigned char)*v >= ' ') sb_putc(&b, *v);
            }
            p++;
        } else {
            sb_putc(&b, *p);
        }
    }
    return sb_steal(&b);
}

/* tests_of - RFC 5235 spamtest/virustest values for recipient i from the scans it was in. */
static void tests_of(const struct scan_stage *st, size_t i, sieve_msg *m)
{
    m->spamtest = 0;
    m->spamtest_percent = -1;
    m->virustest = 0;
    for (size_t k = 0; k < st->ng; k++) {
        const scan_group *g = &st->g[k];
        bool in = false;
        for (size_t j = 0; j < g->nidx && !in; j++) in = g->idx[j] == i;
        if (!in || g->res.status != SCAN_DONE) continue;
        enum sl_scanner_kind kind = st->s->conf->opt.scanners[g->n].kind;
        if (kind == SL_SCANNER_CLAMD) {
            int v = g->res.hit ? 5 : 1;
            if (v > m->virustest) m->virustest = v;
        } else if ((kind == SL_SCANNER_SPAMD || kind == SL_SCANNER_HEADER) && g->res.threshold > 0) {
            double ratio = g->res.score / g->res.threshold; /* 1.0 = the spam threshold */
            int v = ratio <= 0 ? 1 : 1 + (int)(ratio * 5.0);
            int pct = ratio <= 0 ? 0 : (int)(ratio * 50.0);
            if (v > 10) v = 10;
            if (pct > 100) pct = 100;
            if (v > m->spamtest) m->spamtest = v;
            if (pct > m->spamtest_percent) m->spamtest_percent = pct;
        }
    }
}

/* run_one - run script text on the recipient's current header, merged into out. */
static void run_one(struct scan_stage *st, const char *text, const char *what, sieve_msg *m, rcpt_outcome *out,
                    bool *ran)
{
    const sieve_script *sc = script_get(st->ps->p, text, what, st->s->qid);
    if (!sc) return;
    sieve_result r;
    if (out->header) m->header = out->header, m->header_len = out->header_len;
    if (sieve_run(sc, m, &r) != 0)
        log_warn(st->s->qid, "sieve_error", "script=%s to=<%s> error=\"%s\"", what, m->env_to, r.error ? r.error : "");
    if (!*ran) {
        out->r = r;
        *ran = true;
    } else {
        sieve_result_merge(&out->r, &r);
        sieve_result_free(&r);
    }
    if (out->r.header) { /* the edited header is the next script's input */
        free(out->header);
        out->header = xstrndup(out->r.header, out->r.header_len);
        out->header_len = out->r.header_len;
    }
}

/* header_end - the length of the header block of data (up to and without the empty line), and
 * where the body starts. */
static size_t header_end(const char *data, size_t len, size_t *body)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n') {
            *body = i + 4;
            return i + 2;
        }
    *body = len;
    return len;
}

/* skip_notes - the header lines noting the optional scanners that could not scan recipient i. */
static void skip_notes(const struct scan_stage *st, size_t i, strbuf *out)
{
    for (size_t k = 0; k < st->ng; k++) {
        const scan_group *g = &st->g[k];
        if (g->res.status == SCAN_DONE) continue;
        for (size_t j = 0; j < g->nidx; j++)
            if (g->idx[j] == i)
                sb_printf(out, "X-Sluice-Scan: spamfilter%u not scanned (%s)\r\n", g->n + 1,
                          g->res.detail ? g->res.detail : "failed");
    }
}

/* decide_rcpt - every script for recipient i. */
static void decide_rcpt(struct scan_stage *st, size_t i, const char *hdr, size_t hlen, rcpt_outcome *out)
{
    smtp_sess *s = st->s;
    const qrcpt *r = &s->rcpts[i];
    memset(out, 0, sizeof *out);
    strbuf notes;
    sb_init(&notes);
    skip_notes(st, i, &notes);
    if (notes.len) { /* the notes go after our Received: line, at the top */
        strbuf h;
        sb_init(&h);
        sb_append(&h, hdr, s->hdr_len);
        sb_append(&h, notes.data, notes.len);
        sb_append(&h, hdr + s->hdr_len, hlen - s->hdr_len);
        out->header_len = h.len;
        out->header = sb_steal(&h);
    }
    sb_free(&notes);
    sieve_msg m = {hdr, hlen, s->data.len - s->hdr_len, s->sender ? s->sender : "", r->orig ? r->orig : r->addr, 0, -1, 0};
    tests_of(st, i, &m);
    bool ran = false;
    if (s->conf->sieve_filter_text) run_one(st, s->conf->sieve_filter_text, "sieve_filter", &m, out, &ran);
    for (size_t k = 0; k < st->ng; k++) {
        const scan_group *g = &st->g[k];
        bool in = false;
        for (size_t j = 0; j < g->nidx && !in; j++) in = g->idx[j] == i;
        char *act = in ? action_text(&s->conf->opt.scanners[g->n], &g->res) : NULL;
        if (act) {
            char what[32];
            snprintf(what, sizeof what, "spamfilter%u_action", g->n + 1);
            run_one(st, act, what, &m, out, &ran);
        }
        free(act);
    }
    if (r->sieve) run_one(st, r->sieve, "user", &m, out, &ran);
    if (!ran) out->r.keep = true; /* nothing ran: the inbox */
    log_debug(s->qid, "sieve_result", "to=<%s> spamtest=%d virustest=%d keep=%s folders=%zu redirects=%zu reject=%s "
              "edited=%s vacation=%s", r->addr, m.spamtest, m.virustest, out->r.keep ? "yes" : "no", out->r.fileinto.n,
              out->r.redirect.n, out->r.reject ? "yes" : "no", out->header ? "yes" : "no", out->r.vacation ? "yes" : "no");
}

/* ---- the commit plan ------------------------------------------------------------------------- */

/* Building the plan: one message per distinct header. */
typedef struct {
    struct scan_stage *st;
    commit_plan *p;
    qbody *orig;            /* the message as received */
    size_t body_off;        /* where its body starts */
    char **headers;         /* the header of each part (NULL: the original) */
} plan_builder;

/* part_for - the plan's message carrying header (NULL: the message as received). */
static enq_msg *part_for(plan_builder *b, const char *header, size_t hlen)
{
    commit_plan *p = b->p;
    for (size_t k = 0; k < p->n_msgs; k++)
        if ((!header && !b->headers[k]) || (header && b->headers[k] && strcmp(header, b->headers[k]) == 0))
            return p->msgs[k];
    smtp_sess *s = b->st->s;
    qbody *content;
    if (!header) {
        content = qbody_ref(b->orig);
    } else {
        strbuf c;
        sb_init(&c);
        sb_append(&c, header, hlen);
        sb_puts(&c, "\r\n");
        sb_append(&c, b->orig->data + b->body_off, b->orig->len - b->body_off);
        size_t len = c.len;
        content = qbody_adopt(sb_steal(&c), len);
    }
    char id[32];
    if (p->n_msgs == 0) snprintf(id, sizeof id, "%s", s->qid);
    else snprintf(id, sizeof id, "%.24s-%zu", s->qid, p->n_msgs + 1);
    p->msgs = xrealloc(p->msgs, (p->n_msgs + 1) * sizeof *p->msgs);
    b->headers = xrealloc(b->headers, (p->n_msgs + 1) * sizeof *b->headers);
    b->headers[p->n_msgs] = header ? xstrdup(header) : NULL;
    p->msgs[p->n_msgs] = commit_msg_new(s, id, content);
    return p->msgs[p->n_msgs++];
}

/* folder_ok - a folder name Sluice will file into (the delivery checks the path again). */
static bool folder_ok(const char *f)
{
    size_t n = strlen(f);
    if (n == 0 || n > 255 || f[0] == '.' || f[0] == '/' || strstr(f, "..")) return false;
    for (const char *p = f; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f) return false;
    return true;
}

/* add_redirect - a Sieve redirect: the new address routed from the source channel. */
static void add_redirect(plan_builder *b, enq_msg *m, const qrcpt *r, const char *to)
{
    smtp_sess *s = b->st->s;
    rw_result rw;
    memset(&rw, 0, sizeof rw);
    if (rewrite_address(s->conf, to, s->src_channel, &rw, NULL) != SL_OK) {
        log_warn(s->qid, "redirect_failed", "to=<%s> redirect=<%s> error=\"%s\"", r->addr, to, rw.error ? rw.error : "");
        rw_result_free(&rw);
        return;
    }
    char *dest = route_dest_host(&rw);
    enqueue_add_rcpt(m, rw.addr, r->orig, r->orcpt, rw.channel->name, dest, r->notify);
    free(dest);
    rw_result_free(&rw);
    log_info(s->qid, "redirect", "to=<%s> redirect=<%s>", r->addr, to);
}

/* place_rcpt - recipient i's copies (inbox, folders, redirects), DSN or nothing, as decided. */
static void place_rcpt(plan_builder *b, size_t i, rcpt_outcome *o, size_t *rejected)
{
    smtp_sess *s = b->st->s;
    const qrcpt *r = &s->rcpts[i];
    const sieve_result *sr = &o->r;
    if (sr->reject) { /* counted here; an MDN (or the 550) once every recipient is placed */
        log_info(s->qid, "sieve_reject", "to=<%s> reason=\"%s\"", r->addr, sr->reject);
        (*rejected)++;
        return;
    }
    enq_msg *m = NULL;
    const sl_channel *ch = conf_channel_by_name(s->conf, r->channel);
    bool folders = ch && (ch->type == CHAN_LOCAL || ch->lmtp); /* a relay has no folders: its copy is kept */
    bool kept = sr->keep || (!folders && sr->fileinto.n);
    if (kept || sr->fileinto.n || sr->redirect.n) m = part_for(b, o->header, o->header_len);
    if (kept) enqueue_add_rcpt(m, r->addr, r->orig, r->orcpt, r->channel, r->host, r->notify);
    for (size_t k = 0; folders && k < sr->fileinto.n; k++) {
        const char *f = sr->fileinto.v[k];
        if (!folder_ok(f)) {
            log_warn(s->qid, "fileinto_refused", "to=<%s> folder=\"%s\" note=\"kept in the inbox\"", r->addr, f);
            f = NULL;
        } else {
            log_info(s->qid, "fileinto", "to=<%s> folder=\"%s\"", r->addr, f);
        }
        enqueue_add_rcpt(m, r->addr, r->orig, r->orcpt, r->channel, r->host, r->notify);
        m->rcpts[m->n_rcpts - 1].folder = f && !str_ieq(f, "INBOX") ? xstrdup(f) : NULL;
    }
    for (size_t k = 0; k < sr->redirect.n; k++) add_redirect(b, m, r, sr->redirect.v[k]);
    if (!m) log_info(s->qid, "discarded", "to=<%s> by=sieve", r->addr);
}

/* send_mdns - RFC 5429 2.1: the recipients whose scripts rejected a message the others took tell
 * the sender with an MDN (RFC 8098, "deleted") through the dispositionchannel; never to <>. */
static void send_mdns(struct scan_stage *st, const rcpt_outcome *outs, size_t n, const qbody *content)
{
    smtp_sess *s = st->s;
    if (!s->sender || !*s->sender) {
        log_info(s->qid, "mdn_suppressed", "reason=\"null sender\"");
        return;
    }
    size_t body, hlen = header_end(content->data, content->len, &body);
    char *subject = vacation_header_value(content->data, hlen, "Subject");
    char *msgid = vacation_header_value(content->data, hlen, "Message-ID");
    for (size_t i = 0; i < n; i++) {
        if (!outs[i].r.reject) continue;
        const qrcpt *r = &s->rcpts[i];
        mdn_reject m = {s->src_channel, s->qid, r->orig ? r->orig : r->addr, s->sender, outs[i].r.reject,
                        content->data, hlen, subject, msgid};
        mdn_reject_submit(st->ps->p->ctx, &m);
    }
    free(subject);
    free(msgid);
}

/* stage_free - release the stage (its scans stopped). */
static void stage_free(struct scan_stage *st)
{
    for (size_t k = 0; k < st->ng; k++) {
        scan_cancel(st->g[k].job);
        scan_result_free(&st->g[k].res);
        free(st->g[k].optin);
        free(st->g[k].idx);
        free(st->g[k].addrs);
    }
    free(st->g);
    free(st);
}

/* required_failure - the first required scanner that could not scan, or NULL. */
static const scan_group *required_failure(const struct scan_stage *st)
{
    for (size_t k = 0; k < st->ng; k++)
        if (st->g[k].res.status != SCAN_DONE && !st->s->conf->opt.scanners[st->g[k].n].optional) return &st->g[k];
    return NULL;
}

/* stage_finish - every scan answered: decide per recipient and commit. */
static void stage_finish(struct scan_stage *st)
{
    policy_sess *ps = st->ps;
    smtp_sess *s = st->s;
    ps->scan = NULL;
    const scan_group *bad = required_failure(st);
    if (bad) {
        log_warn(s->qid, "scan_required_failed", "scanner=%u error=\"%s\"", bad->n + 1,
                 bad->res.detail ? bad->res.detail : "");
        verdict v = verdict_refuse(VERDICT_SCAN_FAILED, true, NULL);
        stage_free(st);
        return policy_commit_refuse(ps, NULL, &v);
    }
    size_t body_off, hlen = header_end(s->data.data, s->data.len, &body_off);
    size_t n = s->n_rcpts, rejected = 0, considered = 0;
    rcpt_outcome *outs = xcalloc(n ? n : 1, sizeof *outs);
    for (size_t i = 0; i < n; i++)
        if (!commit_rcpt_dup(s, i)) decide_rcpt(st, i, s->data.data, hlen, &outs[i]);
    size_t len = s->data.len;
    plan_builder b = {st, xcalloc(1, sizeof(commit_plan)), qbody_adopt(sb_steal(&s->data), len), body_off, NULL};
    for (size_t i = 0; i < n; i++) {
        if (commit_rcpt_dup(s, i)) continue;
        considered++;
        place_rcpt(&b, i, &outs[i], &rejected);
        if (outs[i].r.vacation) vacation_consider(ps->p->ctx, s, &s->rcpts[i], b.orig, &outs[i].r);
    }
    const char *reason = NULL;
    for (size_t i = 0; i < n && !reason; i++) reason = outs[i].r.reject;
    char *why = reason ? xstrdup(reason) : NULL;
    if (rejected && rejected < considered) send_mdns(st, outs, n, b.orig);
    for (size_t i = 0; i < n; i++) {
        sieve_result_free(&outs[i].r);
        free(outs[i].header);
    }
    free(outs);
    for (size_t k = 0; k < b.p->n_msgs; k++) free(b.headers[k]);
    free(b.headers);
    qbody_unref(b.orig);
    stage_free(st);
    if (considered && rejected == considered) { /* every recipient refuses: 550 at the end of data */
        verdict v = verdict_refuse(VERDICT_CONTENT_REJECT, false, NULL);
        if (why) verdict_set_text(&v, why);
        free(why);
        return policy_commit_refuse(ps, b.p, &v);
    }
    free(why);
    policy_commit_plan(ps, b.p); /* no part at all (every copy discarded) answers 250 at once */
}

/* log_scan - one line per scan. */
static void log_scan(const smtp_sess *s, const scan_group *g)
{
    static const char *const kinds[] = {"none", "spamd", "clamd", "milter", "header"};
    const sl_scanner *sc = &s->conf->opt.scanners[g->n];
    const scan_result *r = &g->res;
    log_info(s->qid, "scan", "scanner=%u type=%s optin=\"%s\" nrcpt=%zu result=%s verdict=%s score=%.1f detail=\"%s\"",
             g->n + 1, kinds[sc->kind], g->optin, g->nidx, r->status == SCAN_DONE ? "done" : "failed",
             r->verdict ? r->verdict : "-", r->score, r->detail ? r->detail : "");
}

/* on_scanned - one scan answered. */
static void on_scanned(void *arg, scan_result *r)
{
    scan_group *g = arg;
    struct scan_stage *st = g->st;
    g->job = NULL;
    g->done = true;
    g->res = *r;
    memset(r, 0, sizeof *r); /* taken over */
    log_scan(st->s, g);
    if (--st->pending == 0) stage_finish(st);
}

/* score_of - the score in a header value: after "score=" when there is one, else the first number. */
static double score_of(const char *v)
{
    const char *p = strcasestr(v, "score=");
    p = p ? p + 6 : v;
    while (*p && !(*p == '-' || *p == '.' || (*p >= '0' && *p <= '9'))) p++;
    return strtod(p, NULL);
}

/* header_verdict - a scanning box's verdict, read from the field it wrote (seed document 001's
 * second approach: the box relays the message back, to a source channel that is not sent there
 * again); the value's first word is the verdict, none is the null verdict. */
static void header_verdict(const smtp_sess *s, const sl_scanner *sc, scan_result *r)
{
    size_t body, hlen = header_end(s->data.data, s->data.len, &body);
    char *v = vacation_header_value(s->data.data, hlen, sc->header);
    r->status = SCAN_DONE;
    if (v) {
        static const char *const clean[] = {"no", "false", "clean", "ok", "0", "ham"};
        size_t n = strcspn(v, " \t,;");
        bool null_verdict = n == 0;
        for (size_t i = 0; i < SL_ARRAY_LEN(clean) && !null_verdict; i++)
            null_verdict = strlen(clean[i]) == n && strncasecmp(v, clean[i], n) == 0;
        if (!null_verdict) r->verdict = xstrndup(v, n);
        r->hit = r->verdict != NULL;
        r->detail = xasprintf("%s: %.200s", sc->header, v);
        free(v);
    }
    char *sv = sc->score_header ? vacation_header_value(s->data.data, hlen, sc->score_header) : NULL;
    if (sv) {
        r->score = score_of(sv);
        r->threshold = sc->threshold;
        free(sv);
    }
}

void scan_stage_start(policy_sess *ps, smtp_sess *s)
{
    struct scan_stage *st = xcalloc(1, sizeof *st);
    st->ps = ps;
    st->s = s;
    ps->scan = st;
    build_groups(st);
    if (st->ng == 0) return stage_finish(st);
    st->pending = st->ng;
    for (size_t k = 0; k < st->ng; k++) { /* the boxes' headers are read now */
        scan_group *g = &st->g[k];
        g->st = st;
        const sl_scanner *sc = &s->conf->opt.scanners[g->n];
        if (sc->kind != SL_SCANNER_HEADER) continue;
        header_verdict(s, sc, &g->res);
        g->done = true;
        st->pending--;
        log_scan(s, g);
    }
    if (st->pending == 0) return stage_finish(st);
    for (size_t k = 0; k < st->ng; k++) {
        scan_group *g = &st->g[k];
        if (g->done) continue;
        scan_target t;
        scan_target_from_conf(&t, &s->conf->opt.scanners[g->n]);
        scan_req q = {s->data.data, s->data.len, g->optin, s->qid, s->client_ip, s->helo ? s->helo : "",
                      s->sender ? s->sender : "", g->addrs, g->nidx};
        g->job = scan_start(ps->p->ctx->base, &t, &q, on_scanned, g);
    }
}

void scan_stage_abandon(policy_sess *ps)
{
    if (!ps->scan) return;
    stage_free(ps->scan);
    ps->scan = NULL;
}

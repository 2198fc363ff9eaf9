/*
 * qadmin_out.c - what `sluice queue list|show|summary` print, in text and JSON (see qadmin.h).
 *
 * JSON: `list` and `show` give an array of message objects, `summary` an array of destination
 * objects; numbers are numbers, times both ISO 8601 UTC and an age or delay in seconds, absent
 * values null. doc/operations.md documents every member.
 */
#include "queue/qadmin.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *rcpt_status(uint8_t st)
{
    static const char *names[] = {"pending", "delivered", "failed", "relayed"};
    return st < 4 ? names[st] : "?";
}

/* next_attempt - the earliest next attempt of m's pending recipients (0: now), -1 when none. */
static int64_t next_attempt(const qmsg *m)
{
    int64_t next = -1;
    for (size_t i = 0; i < m->n_rcpts; i++)
        if (m->rcpts[i].status == QR_PENDING && (next < 0 || m->rcpts[i].next_attempt < next))
            next = m->rcpts[i].next_attempt;
    return next;
}

/* selected - whether e is in req's selection (list: and its CHANNEL). */
static bool selected(const qadmin_req *req, const qadmin_ent *e, int64_t now)
{
    if (!strcmp(req->cmd, "list") && req->arg && !str_ieq(e->msg->channel, req->arg)) return false;
    return qadmin_sel_match(&req->sel, e->msg, e->reply, now);
}

/* put_next - "next_attempt" (ISO, null when none is pending) and "next_attempt_in_seconds". */
static void put_next(strbuf *out, int64_t next, int64_t now)
{
    if (next < 0) {
        json_put_member(out, false, "next_attempt", NULL);
        json_put_member(out, false, "next_attempt_in_seconds", NULL);
        return;
    }
    json_put_time(out, false, "next_attempt", next > 0 ? next : now);
    json_put_int(out, false, "next_attempt_in_seconds", next > now ? next - now : 0);
}

/* rcpt_json - one recipient object. */
static void rcpt_json(strbuf *out, const qrcpt *r, int64_t now)
{
    const char *at = strrchr(r->addr, '@');
    char *domain = str_lower(xstrdup(at ? at + 1 : ""));
    sb_putc(out, '{');
    json_put_member(out, true, "address", r->addr);
    json_put_member(out, false, "orig", r->orig);
    json_put_member(out, false, "orcpt", r->orcpt);
    json_put_member(out, false, "domain", domain);
    json_put_member(out, false, "host", r->host);
    json_put_member(out, false, "status", rcpt_status(r->status));
    json_put_int(out, false, "attempts", r->attempts);
    json_put_int(out, false, "notices_sent", r->notices_sent);
    put_next(out, r->status == QR_PENDING ? r->next_attempt : -1, now);
    sb_putc(out, '}');
    free(domain);
}

/* ent_json - one message object. */
static void ent_json(strbuf *out, const qadmin_ent *e, int64_t now)
{
    const qmsg *m = e->msg;
    size_t pending = 0;
    for (size_t i = 0; i < m->n_rcpts; i++) pending += m->rcpts[i].status == QR_PENDING;
    sb_putc(out, '{');
    json_put_member(out, true, "id", m->id);
    json_put_member(out, false, "channel", m->channel);
    json_put_member(out, false, "state", e->state);
    json_put_member(out, false, "from", m->sender);
    json_put_int(out, false, "size", (int64_t)m->data_len);
    json_put_time(out, false, "arrived", m->arrival);
    json_put_int(out, false, "age_seconds", now > m->arrival ? now - m->arrival : 0);
    json_put_member(out, false, "source_channel", m->src_channel);
    json_put_member(out, false, "client", m->client);
    json_put_member(out, false, "envid", m->envid);
    json_put_member(out, false, "ret", m->ret == 1 ? "full" : m->ret == 2 ? "hdrs" : NULL);
    sb_puts(out, m->is_notification ? ",\"notification\":true" : ",\"notification\":false");
    json_put_int(out, false, "pending", (int64_t)pending);
    put_next(out, next_attempt(m), now);
    json_put_member(out, false, "last_reply", e->reply);
    json_put_time(out, false, "last_reply_at", e->reply ? e->reply_at : 0);
    json_put_member(out, false, "path", e->path);
    sb_puts(out, ",\"recipients\":[");
    for (size_t i = 0; i < m->n_rcpts; i++) {
        if (i) sb_putc(out, ',');
        rcpt_json(out, &m->rcpts[i], now);
    }
    sb_puts(out, "]}");
}

/* put_ents - the entries for which keep() holds: a JSON array or text (line or block); returns how many. */
static size_t put_ents(const qadmin_req *req, const qadmin_ent *ents, size_t n, int64_t now, strbuf *out, bool block,
                       bool (*keep)(const qadmin_req *, const qadmin_ent *, int64_t))
{
    size_t k = 0;
    if (req->json) sb_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        const qadmin_ent *e = &ents[i];
        if (!keep(req, e, now)) continue;
        if (req->json) {
            sb_puts(out, k ? ",\n" : "\n");
            ent_json(out, e, now);
        } else if (block) {
            qadmin_show(e->msg, e->path, e->state, out);
            if (e->reply) sb_printf(out, "last-reply: %s\n", e->reply);
        } else {
            qadmin_list_line(e->msg, e->state, out);
        }
        k++;
    }
    if (req->json) sb_puts(out, k ? "\n]\n" : "]\n");
    return k;
}

void qadmin_list(const qadmin_req *req, const qadmin_ent *ents, size_t n, int64_t now, strbuf *out)
{
    put_ents(req, ents, n, now, out, false, selected);
}

/* has_id - the entry is the message req->arg. */
static bool has_id(const qadmin_req *req, const qadmin_ent *e, int64_t now)
{
    (void)now;
    return !strcmp(e->msg->id, req->arg);
}

size_t qadmin_show_ents(const qadmin_req *req, const qadmin_ent *ents, size_t n, int64_t now, strbuf *out)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) found += has_id(req, &ents[i], now);
    if (found || req->json) put_ents(req, ents, n, now, out, true, has_id);
    return found;
}

/* is_waiting - the scheduler holds it (not held aside, not waiting for a return at start). */
static bool is_waiting(const qadmin_ent *e)
{
    return strcmp(e->state, "held") != 0 && strcmp(e->state, "returning") != 0;
}

void qadmin_summary_ents(const qadmin_req *req, const qadmin_ent *ents, size_t n, int64_t now, strbuf *out)
{
    qadmin_summary sum = {0};
    for (size_t i = 0; i < n; i++)
        if (is_waiting(&ents[i]) && selected(req, &ents[i], now)) qadmin_summary_add(&sum, ents[i].msg);
    qadmin_summary_print(&sum, now, out);
}

/* ---- per destination ---- */

/* One destination domain of the summary. */
typedef struct {
    char *domain;
    size_t messages, recipients, held;
    int64_t oldest, next; /* next: -1 none */
    const char *reply;
    int64_t reply_at;
    strvec channels;
} dsum;

typedef struct {
    dsum *v;
    size_t n;
} dsums;

/* dsum_get - the row of domain, created empty. */
static dsum *dsum_get(dsums *d, const char *domain)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->v[i].domain, domain)) return &d->v[i];
    d->v = xrealloc(d->v, (d->n + 1) * sizeof *d->v);
    dsum *r = &d->v[d->n++];
    memset(r, 0, sizeof *r);
    r->domain = xstrdup(domain);
    r->next = -1;
    r->oldest = INT64_MAX;
    return r;
}

/* dsum_rcpt - count one pending recipient of e; first: the first of e's recipients for this domain. */
static void dsum_rcpt(dsum *r, const qadmin_ent *e, const qrcpt *rc, bool first)
{
    const qmsg *m = e->msg;
    r->recipients++;
    if (is_waiting(e) && (r->next < 0 || rc->next_attempt < r->next)) r->next = rc->next_attempt;
    if (!first) return;
    r->messages++;
    r->held += !is_waiting(e);
    if (m->arrival < r->oldest) r->oldest = m->arrival;
    if (e->reply && (!r->reply || e->reply_at > r->reply_at)) {
        r->reply = e->reply;
        r->reply_at = e->reply_at;
    }
    if (!sv_contains_ci(&r->channels, m->channel)) sv_push(&r->channels, m->channel);
}

/* dsum_add - e's pending recipients into their domains' rows (only domain's when it is not NULL). */
static void dsum_add(dsums *d, const qadmin_ent *e, const char *only)
{
    strvec seen = {0};
    for (size_t i = 0; i < e->msg->n_rcpts; i++) {
        const qrcpt *rc = &e->msg->rcpts[i];
        if (rc->status != QR_PENDING) continue;
        const char *at = strrchr(rc->addr, '@');
        char *domain = str_lower(xstrdup(at ? at + 1 : ""));
        if (only && !str_ieq(domain, only)) {
            free(domain);
            continue;
        }
        bool first = !sv_contains_ci(&seen, domain);
        if (first) sv_push(&seen, domain);
        dsum_rcpt(dsum_get(d, domain), e, rc, first);
        free(domain);
    }
    sv_free(&seen);
}

static int dsum_cmp(const void *a, const void *b)
{
    const dsum *x = a, *y = b;
    if (x->messages != y->messages) return x->messages > y->messages ? -1 : 1;
    return strcmp(x->domain, y->domain);
}

/* dsum_json - one destination object. */
static void dsum_json(strbuf *out, const dsum *r, int64_t now)
{
    sb_putc(out, '{');
    json_put_member(out, true, "domain", r->domain);
    json_put_int(out, false, "messages", (int64_t)r->messages);
    json_put_int(out, false, "recipients", (int64_t)r->recipients);
    json_put_int(out, false, "held", (int64_t)r->held);
    json_put_time(out, false, "oldest_arrived", r->oldest);
    json_put_int(out, false, "oldest_age_seconds", now > r->oldest ? now - r->oldest : 0);
    put_next(out, r->next, now);
    json_put_member(out, false, "last_reply", r->reply);
    json_put_time(out, false, "last_reply_at", r->reply ? r->reply_at : 0);
    sb_puts(out, ",\"channels\":[");
    for (size_t i = 0; i < r->channels.n; i++) {
        if (i) sb_putc(out, ',');
        json_put_str(out, r->channels.v[i]);
    }
    sb_puts(out, "]}");
}

void qadmin_summary_json(const qadmin_req *req, const qadmin_ent *ents, size_t n, int64_t now, strbuf *out)
{
    dsums d = {0};
    for (size_t i = 0; i < n; i++)
        if (selected(req, &ents[i], now)) dsum_add(&d, &ents[i], req->sel.domain);
    if (d.n) qsort(d.v, d.n, sizeof *d.v, dsum_cmp);
    sb_putc(out, '[');
    for (size_t i = 0; i < d.n; i++) {
        sb_puts(out, i ? ",\n" : "\n");
        dsum_json(out, &d.v[i], now);
        free(d.v[i].domain);
        sv_free(&d.v[i].channels);
    }
    sb_puts(out, d.n ? "\n]\n" : "]\n");
    free(d.v);
}

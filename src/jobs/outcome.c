/*
 * outcome.c - the outcome policy and its durable execution (see outcome.h).
 * The first half is pure (decisions); the second half (the DSN chain, the state write) does
 * the I/O on the loop through bounce_submit and the store.
 */
#include "jobs/outcome.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "dsn/bounce.h"
#include "smtp/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- decisions (pure) ---- */

int64_t outcome_retry_delay(const sl_channel *ch, const sl_options *o, unsigned attempts)
{
    if (ch && ch->n_backoff) {
        size_t i = attempts ? attempts - 1 : 0;
        if (i >= ch->n_backoff) i = ch->n_backoff - 1;
        return ch->backoff[i] > 0 ? ch->backoff[i] : 1;
    }
    int64_t d = o->retry_interval ? o->retry_interval : 1;
    for (unsigned i = 1; i < attempts && d < (int64_t)o->retry_max; i++) d *= 2;
    if (o->retry_max && d > (int64_t)o->retry_max) d = o->retry_max;
    return d;
}

int64_t outcome_lifetime(const sl_channel *ch, const sl_options *o)
{
    if (ch && ch->n_notices) return ch->notices[ch->n_notices - 1];
    return o->message_lifetime;
}

/* next_deadline - the next notice age (delay warning or return) not yet reached for r, as a time. */
static int64_t next_deadline(const sl_channel *ch, const sl_options *o, const qmsg *m, const qrcpt *r)
{
    if (ch && ch->n_notices && r->notices_sent + 1u < ch->n_notices) return m->arrival + ch->notices[r->notices_sent];
    return m->arrival + outcome_lifetime(ch, o);
}

bool outcome_wants_failure_dsn(unsigned notify)
{
    if (notify & DSN_NOTIFY_NEVER) return false;
    return notify == 0 || (notify & DSN_NOTIFY_FAILURE);
}

bool outcome_wants_delay_dsn(unsigned notify)
{
    if (notify & DSN_NOTIFY_NEVER) return false;
    return notify == 0 || (notify & DSN_NOTIFY_DELAY);
}

/* report_add - one DSN line item about r, pointing into res. */
static void report_add(outcome_reports *rs, const qrcpt *r, const char *action, const deliv_result *res)
{
    dsn_report *d = &rs->v[rs->n++];
    d->rcpt = r;
    d->action = action;
    d->status = res->status[0] ? res->status : NULL;
    d->diag = res->diag;
    d->remote_mta = res->remote_mta;
}

/* notices_reached - how many of the channel's earlier notice ages (all but the last) age has reached. */
static unsigned notices_reached(const sl_channel *ch, int64_t age)
{
    unsigned reached = 0;
    if (ch && ch->n_notices > 1)
        while (reached + 1 < ch->n_notices && ch->notices[reached] <= age) reached++;
    return reached;
}

/* decide_delivered - r got its copy: final, and a success DSN if NOTIFY asks (final delivery or relayed). */
static void decide_delivered(const sl_channel *ch, qrcpt *r, const deliv_result *res, outcome_plan *p)
{
    bool final_delivery = ch && (ch->type == CHAN_LOCAL || ch->type == CHAN_LMTP || ch->lmtp);
    r->status = res->relayed ? QR_RELAYED : QR_DELIVERED;
    if ((r->notify & DSN_NOTIFY_SUCCESS) && (res->relayed || final_delivery))
        report_add(&p->dsn[OUTCOME_DSN_SUCCESS], r, res->relayed ? "relayed" : "delivered", res);
}

/* decide_deferred - a temporary failure: retry per backoff, warn at notice ages; false when timed out
 * (res is then rewritten into a permanent failure with the last temporary status, else 4.4.7). */
static bool decide_deferred(const sl_channel *ch, const sl_options *o, const qmsg *m, qrcpt *r, deliv_result *res,
                            int64_t now, outcome_plan *p)
{
    int64_t age = now - m->arrival;
    if (age >= outcome_lifetime(ch, o)) {
        if (res->status[0] != '4') snprintf(res->status, sizeof res->status, "4.4.7");
        res->result = SL_PERM;
        return false;
    }
    unsigned reached = notices_reached(ch, age);
    if (reached > r->notices_sent) {
        r->notices_sent = (uint8_t)reached;
        if (outcome_wants_delay_dsn(r->notify)) report_add(&p->dsn[OUTCOME_DSN_DELAYED], r, "delayed", res);
    }
    int64_t next = now + outcome_retry_delay(ch, o, r->attempts);
    int64_t deadline = next_deadline(ch, o, m, r);
    r->next_attempt = next < deadline ? next : (deadline > now ? deadline : now + 1);
    return true;
}

/* decide_failed - a permanent failure: reported in a failed DSN (r fails once it is durable), or silently final. */
static void decide_failed(qrcpt *r, const deliv_result *res, outcome_plan *p)
{
    if (outcome_wants_failure_dsn(r->notify)) report_add(&p->dsn[OUTCOME_DSN_FAILED], r, "failed", res);
    else r->status = QR_FAILED;
}

/* plan_init - room for every recipient of an n-recipient item in every DSN kind. */
static void plan_init(outcome_plan *p, size_t n)
{
    p->verdict = xcalloc(n ? n : 1, sizeof *p->verdict);
    for (int k = 0; k < OUTCOME_DSN_KINDS; k++) {
        p->dsn[k].v = xcalloc(n ? n : 1, sizeof(dsn_report));
        p->dsn[k].n = 0;
    }
}

void outcome_decide(const sl_channel *ch, const sl_options *o, deliv_item *item, int64_t now, outcome_plan *p)
{
    plan_init(p, item->n);
    for (size_t i = 0; i < item->n; i++) {
        qrcpt *r = &item->msg->rcpts[item->rcpts[i]];
        deliv_result *res = &item->results[i];
        if (res->result == SL_OK) {
            decide_delivered(ch, r, res, p);
            p->verdict[i] = OUTCOME_DELIVERED;
            continue;
        }
        r->attempts++;
        if (res->result != SL_PERM && decide_deferred(ch, o, item->msg, r, res, now, p)) {
            p->verdict[i] = OUTCOME_DEFERRED;
            continue;
        }
        decide_failed(r, res, p);
        p->verdict[i] = OUTCOME_FAILED;
    }
}

void outcome_failure_dsn_done(const sl_channel *ch, const sl_options *o, deliv_item *item, sl_result res, int64_t now)
{
    for (size_t i = 0; i < item->n; i++) {
        qrcpt *r = &item->msg->rcpts[item->rcpts[i]];
        if (item->results[i].result != SL_PERM) continue;
        if (res == SL_OK) r->status = QR_FAILED;
        else r->next_attempt = now + outcome_retry_delay(ch, o, r->attempts + 1u);
    }
}

void outcome_plan_free(outcome_plan *p)
{
    free(p->verdict);
    for (int k = 0; k < OUTCOME_DSN_KINDS; k++) free(p->dsn[k].v);
    memset(p, 0, sizeof *p);
}

bool outcome_all_final(const qmsg *m)
{
    for (size_t i = 0; i < m->n_rcpts; i++)
        if (m->rcpts[i].status == QR_PENDING) return false;
    return true;
}

/* ---- carrying it out (loop thread) ---- */

/* The DSNs of one item on their way out. */
typedef struct {
    sl_ctx *ctx;
    const sl_channel *ch;
    const sl_options *o;
    deliv_item *item;
    outcome_plan plan;
    int next; /* the DSN kind being queued */
    outcome_done_cb done;
    void *arg;
} dsnchain;

static const char *const verdict_event[] = {"delivered", "deferred", "failed"};

/* log_verdicts - one line per recipient: delivered, deferred or failed, with the attempt count. */
static void log_verdicts(const deliv_item *item, const outcome_plan *p)
{
    const qmsg *m = item->msg;
    for (size_t i = 0; i < item->n; i++) {
        const qrcpt *r = &m->rcpts[item->rcpts[i]];
        const deliv_result *res = &item->results[i];
        metric_add(&METRIC_DELIVERIES, (const char *const[]){m->channel, verdict_event[p->verdict[i]]}, 1);
        log_info(m->id, verdict_event[p->verdict[i]],
                 "rcpt=<%s> orig=<%s> channel=%s relay=\"%s\" status=%s diag=\"%s\" attempts=%u", r->addr, r->orig,
                 m->channel, res->remote_mta ? res->remote_mta : "", res->status, res->diag ? res->diag : "",
                 r->attempts);
    }
}

static void dsnchain_step(void *arg, sl_result res, const char *err);

/* dsnchain_run - queue the next DSN kind that has line items, or finish. */
static void dsnchain_run(dsnchain *c)
{
    while (c->next < OUTCOME_DSN_KINDS && c->plan.dsn[c->next].n == 0) c->next++;
    if (c->next == OUTCOME_DSN_KINDS) {
        outcome_done_cb done = c->done;
        void *arg = c->arg;
        outcome_plan_free(&c->plan);
        free(c);
        done(arg);
        return;
    }
    outcome_reports *rs = &c->plan.dsn[c->next];
    bounce_submit(c->ctx, c->item->msg, rs->v, rs->n, dsnchain_step, c);
}

/* dsnchain_step - one DSN is durable (or could not be queued); the failed one decides the failures. */
static void dsnchain_step(void *arg, sl_result res, const char *err)
{
    dsnchain *c = arg;
    (void)err;
    if (c->next == OUTCOME_DSN_FAILED) outcome_failure_dsn_done(c->ch, c->o, c->item, res, now_unix());
    c->next++;
    dsnchain_run(c);
}

void outcome_apply(sl_ctx *ctx, const sl_channel *ch, const sl_options *o, deliv_item *item, outcome_done_cb done,
                   void *arg)
{
    dsnchain *c = xcalloc(1, sizeof *c);
    c->ctx = ctx;
    c->ch = ch;
    c->o = o;
    c->item = item;
    c->done = done;
    c->arg = arg;
    outcome_decide(ch, o, item, now_unix(), &c->plan);
    log_verdicts(item, &c->plan);
    dsnchain_run(c);
}

bool outcome_persist(sl_ctx *ctx, const char *path, const qmsg *m, store_done_cb cb, void *arg)
{
    if (outcome_all_final(m)) return false;
    store_update_states(ctx->store, path, m, cb, arg);
    return true;
}

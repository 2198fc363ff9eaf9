/*
 * sched.c - job scheduler (see sched.h).
 *
 * Ownership: the scheduler owns every qent (a queued file and its qmsg). A qent is either in
 * its channel's heap (waiting) or held by exactly one job (busy). A job owns one deliv_item at
 * a time, takes a configuration reference for its lifetime, and for tcp_* channels one
 * smtp_out session that it reuses for the next due message to the same host.
 */
#include "jobs/sched.h"
#include "conf/conf.h"
#include "core/log.h"
#include "core/workq.h"
#include "deliver/deliver.h"
#include "deliver/maildir.h"
#include "deliver/smtp_out.h"
#include "dsn/bounce.h"
#include "queue/store.h"
#include "smtp/parse.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

typedef struct chanq chanq;

typedef struct qent {
    qmsg *msg;
    char *path;
    chanq *cq;
    int64_t due;
    size_t heap_idx;
    bool in_heap;
} qent;

struct chanq {
    char *name;
    qent **heap;
    size_t n, cap;
    int active;
    struct event *timer;
    sched *s;
};

typedef struct job {
    sched *s;
    chanq *cq;
    sl_conf *conf;
    const sl_channel *ch;
    char *host;
    smtp_out *out;
    qent *cur;
    deliv_item item;
    size_t pending_bounce;
} job;

struct sched {
    sl_ctx *ctx;
    chanq **chans;
    size_t n_chans;
    bool running;
    int busy;      /* jobs plus outstanding removals */
    size_t count;  /* qents held */
};

static void kick(chanq *cq);
static void job_next(job *j);

/* ---- heap of waiting qents by due time ---- */

static void heap_swap(chanq *cq, size_t a, size_t b)
{
    qent *t = cq->heap[a];
    cq->heap[a] = cq->heap[b];
    cq->heap[b] = t;
    cq->heap[a]->heap_idx = a;
    cq->heap[b]->heap_idx = b;
}

static void heap_up(chanq *cq, size_t i)
{
    while (i > 0 && cq->heap[(i - 1) / 2]->due > cq->heap[i]->due) {
        heap_swap(cq, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(chanq *cq, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < cq->n && cq->heap[l]->due < cq->heap[m]->due) m = l;
        if (r < cq->n && cq->heap[r]->due < cq->heap[m]->due) m = r;
        if (m == i) return;
        heap_swap(cq, i, m);
        i = m;
    }
}

static void heap_push(chanq *cq, qent *e)
{
    if (cq->n == cq->cap) {
        cq->cap = cq->cap ? cq->cap * 2 : 64;
        cq->heap = xrealloc(cq->heap, cq->cap * sizeof *cq->heap);
    }
    e->heap_idx = cq->n;
    e->in_heap = true;
    cq->heap[cq->n++] = e;
    heap_up(cq, e->heap_idx);
}

static void heap_remove(chanq *cq, size_t i)
{
    qent *e = cq->heap[i];
    e->in_heap = false;
    cq->n--;
    if (i == cq->n) return;
    cq->heap[i] = cq->heap[cq->n];
    cq->heap[i]->heap_idx = i;
    heap_down(cq, i);
    heap_up(cq, i);
}

/* ---- queue entries ---- */

/* qent_due - earliest next attempt among pending recipients; -1 when none is pending. */
static int64_t qent_due(const qent *e)
{
    int64_t due = -1;
    for (size_t i = 0; i < e->msg->n_rcpts; i++) {
        const qrcpt *r = &e->msg->rcpts[i];
        if (r->status != QR_PENDING) continue;
        if (due < 0 || r->next_attempt < due) due = r->next_attempt;
    }
    return due;
}

static void qent_free(qent *e)
{
    qmsg_free(e->msg);
    free(e->msg);
    free(e->path);
    free(e);
}

static chanq *chanq_get(sched *s, const char *name);

static void removed(void *arg, sl_result res, const char *err)
{
    qent *e = arg;
    sched *s = e->cq->s;
    if (res != SL_OK) log_error(e->msg->id, "remove_error", "path=%s error=\"%s\"", e->path, err);
    else log_info(e->msg->id, "removed", "channel=%s", e->msg->channel);
    s->busy--;
    s->count--;
    qent_free(e);
}

/* qent_requeue - back into the heap, or off the disk when every recipient is final. */
static void qent_requeue(qent *e)
{
    sched *s = e->cq->s;
    int64_t due = qent_due(e);
    if (due < 0) {
        s->busy++;
        store_remove(s->ctx->store, e->path, removed, e);
        return;
    }
    e->due = due;
    heap_push(e->cq, e);
}

/* ---- items ---- */

static bool item_select(job *j, qent *e, int64_t now, const char *host)
{
    deliv_item *it = &j->item;
    memset(it, 0, sizeof *it);
    for (size_t i = 0; i < e->msg->n_rcpts; i++) {
        const qrcpt *r = &e->msg->rcpts[i];
        if (r->status != QR_PENDING || r->next_attempt > now) continue;
        if (!host) host = r->host;
        if (!str_ieq(r->host, host)) continue;
        it->rcpts = xrealloc(it->rcpts, (it->n + 1) * sizeof *it->rcpts);
        it->rcpts[it->n++] = i;
    }
    if (!it->n) return false;
    it->msg = e->msg;
    it->channel = j->ch;
    it->host = xstrdup(host);
    it->results = xcalloc(it->n, sizeof *it->results);
    j->cur = e;
    return true;
}

static void item_clear(deliv_item *it)
{
    for (size_t i = 0; i < it->n; i++) deliv_result_clear(&it->results[i]);
    free(it->results);
    free(it->rcpts);
    free(it->host);
    memset(it, 0, sizeof *it);
}

static int64_t backoff(const sl_options *o, unsigned attempts)
{
    int64_t d = o->retry_interval ? o->retry_interval : 1;
    for (unsigned i = 1; i < attempts && d < (int64_t)o->retry_max; i++) d *= 2;
    if (o->retry_max && d > (int64_t)o->retry_max) d = o->retry_max;
    return d;
}

static bool wants_failure_dsn(unsigned notify)
{
    if (notify & DSN_NOTIFY_NEVER) return false;
    return notify == 0 || (notify & DSN_NOTIFY_FAILURE);
}

static void states_written(void *arg, sl_result res, const char *err)
{
    job *j = arg;
    qent *e = j->cur;
    if (res != SL_OK) log_error(e->msg->id, "state_write_error", "error=\"%s\"", err);
    item_clear(&j->item);
    j->cur = NULL;
    qent_requeue(e);
    job_next(j);
}

static void persist(job *j)
{
    store_update_states(j->s->ctx->store, j->cur->path, j->cur->msg, states_written, j);
}

static void bounced(void *arg, sl_result res, const char *err)
{
    job *j = arg;
    (void)err;
    deliv_item *it = &j->item;
    /* Only once the DSN is durable may the recipient be marked failed; else retry later. */
    for (size_t i = 0; i < it->n; i++) {
        qrcpt *r = &it->msg->rcpts[it->rcpts[i]];
        if (it->results[i].result != SL_PERM) continue;
        if (res == SL_OK) r->status = QR_FAILED;
        else r->next_attempt = now_unix() + backoff(&j->conf->opt, r->attempts + 1);
    }
    persist(j);
}

static void log_result(const qmsg *m, const qrcpt *r, const deliv_result *res, const char *event)
{
    log_info(m->id, event, "rcpt=<%s> orig=<%s> channel=%s relay=\"%s\" status=%s diag=\"%s\"", r->addr, r->orig,
             m->channel, res->remote_mta ? res->remote_mta : "", res->status, res->diag ? res->diag : "");
}

/* item_done - apply a finished item's results (on the loop). */
static void item_done(job *j)
{
    deliv_item *it = &j->item;
    qmsg *m = it->msg;
    const sl_options *o = &j->conf->opt;
    int64_t now = now_unix();
    dsn_report *reports = xcalloc(it->n, sizeof *reports);
    size_t nrep = 0, nfail = 0;
    for (size_t i = 0; i < it->n; i++) {
        qrcpt *r = &m->rcpts[it->rcpts[i]];
        deliv_result *res = &it->results[i];
        if (res->result == SL_OK) {
            r->status = res->relayed ? QR_RELAYED : QR_DELIVERED;
            log_result(m, r, res, "delivered");
            continue;
        }
        r->attempts++;
        if (res->result != SL_PERM && now - m->arrival < (int64_t)o->message_lifetime) {
            r->next_attempt = now + backoff(o, r->attempts);
            log_result(m, r, res, "deferred");
            continue;
        }
        if (res->result != SL_PERM) { /* lifetime exceeded: give up */
            if (res->status[0] != '4') snprintf(res->status, sizeof res->status, "4.4.7");
            res->result = SL_PERM;
        }
        log_result(m, r, res, "failed");
        nfail++;
        if (!wants_failure_dsn(r->notify)) continue;
        reports[nrep].rcpt = r;
        reports[nrep].action = "failed";
        reports[nrep].status = res->status[0] ? res->status : "5.0.0";
        reports[nrep].diag = res->diag;
        reports[nrep].remote_mta = res->remote_mta;
        nrep++;
    }
    if (nfail) bounce_submit(j->s->ctx, m, reports, nrep, bounced, j);
    else persist(j);
    free(reports);
}

static void smtp_item_done(void *arg, deliv_item *item)
{
    (void)item;
    item_done(arg);
}

static void local_run(void *arg)
{
    job *j = arg;
    deliv_item *it = &j->item;
    const qmsg *m = it->msg;
    for (size_t i = 0; i < it->n; i++) {
        const qrcpt *r = &m->rcpts[it->rcpts[i]];
        deliv_result *res = &it->results[i];
        if (j->ch->type == CHAN_BITBUCKET) {
            deliv_result_set(res, SL_OK, "2.0.0", "x-local; discarded", NULL);
            continue;
        }
        if (j->ch->type != CHAN_LOCAL) {
            deliv_result_set(res, SL_TEMP, "4.3.5", "x-local; channel type not supported yet", NULL);
            continue;
        }
        char err[256] = "";
        char *prefix = xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", m->sender, r->addr);
        sl_result rc = maildir_deliver(j->conf->opt.maildir_root, r->addr, prefix, m->data, m->data_len, 0, err,
                                       sizeof err);
        free(prefix);
        char *diag = xasprintf("x-local; %s", rc == SL_OK ? "delivered to maildir" : err);
        deliv_result_set(res, rc, rc == SL_OK ? "2.0.0" : rc == SL_PERM ? "5.1.3" : "4.3.0", diag, NULL);
        free(diag);
    }
}

static void local_done(void *arg)
{
    item_done(arg);
}

static void job_run_item(job *j)
{
    if (j->ch->type == CHAN_SMTP) {
        if (!j->out) j->out = smtp_out_new(j->s->ctx->base, j->s->ctx->dns, j->conf, j->ch, j->host);
        smtp_out_deliver(j->out, &j->item, smtp_item_done, j);
    } else {
        workq_submit(j->s->ctx->wq, local_run, local_done, j);
    }
}

static void job_end(job *j)
{
    chanq *cq = j->cq;
    sched *s = j->s;
    if (j->out) smtp_out_free(j->out);
    ctx_conf_put(s->ctx, j->conf);
    free(j->host);
    free(j);
    cq->active--;
    s->busy--;
    kick(cq);
}

/* job_next - after an item: take the next due message for the same host, or end the job. */
static void job_next(job *j)
{
    chanq *cq = j->cq;
    if (j->s->running && j->out && smtp_out_reusable(j->out)) {
        int64_t now = now_unix();
        size_t lim = cq->n < 64 ? cq->n : 64;
        for (size_t i = 0; i < lim; i++) {
            qent *e = cq->heap[i];
            if (e->due > now) continue;
            heap_remove(cq, i);
            if (item_select(j, e, now, j->host)) {
                job_run_item(j);
                return;
            }
            heap_push(cq, e);
        }
    }
    job_end(j);
}

static void job_start(chanq *cq, const sl_channel *ch, qent *e, int64_t now)
{
    sched *s = cq->s;
    job *j = xcalloc(1, sizeof *j);
    j->s = s;
    j->cq = cq;
    j->conf = ctx_conf_get(s->ctx);
    j->ch = conf_channel_by_name(j->conf, ch->name);
    cq->active++;
    s->busy++;
    if (!item_select(j, e, now, NULL)) { /* nothing due after all */
        qent_requeue(e);
        job_end(j);
        return;
    }
    j->host = xstrdup(j->item.host);
    job_run_item(j);
}

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kick(arg);
}

/* kick - start jobs for due messages of a channel up to its job limit; arm the timer. */
static void kick(chanq *cq)
{
    sched *s = cq->s;
    if (!s->running) return;
    const sl_channel *ch = conf_channel_by_name(s->ctx->conf, cq->name);
    if (!ch || ch->type == CHAN_HOLD) return;
    int limit = ch->maxjobs ? (int)ch->maxjobs : 1;
    int64_t now = now_unix();
    while (cq->active < limit && cq->n && cq->heap[0]->due <= now) {
        qent *e = cq->heap[0];
        heap_remove(cq, 0);
        job_start(cq, ch, e, now);
        ch = conf_channel_by_name(s->ctx->conf, cq->name);
        if (!ch) return;
    }
    if (cq->n && cq->heap[0]->due > now) {
        struct timeval tv = {(time_t)(cq->heap[0]->due - now), 0};
        evtimer_add(cq->timer, &tv);
    }
}

static chanq *chanq_get(sched *s, const char *name)
{
    for (size_t i = 0; i < s->n_chans; i++)
        if (str_ieq(s->chans[i]->name, name)) return s->chans[i];
    chanq *cq = xcalloc(1, sizeof *cq);
    cq->name = xstrdup(name);
    cq->s = s;
    cq->timer = evtimer_new(s->ctx->base, timer_fired, cq);
    s->chans = xrealloc(s->chans, (s->n_chans + 1) * sizeof *s->chans);
    s->chans[s->n_chans++] = cq;
    return cq;
}

sched *sched_new(sl_ctx *ctx)
{
    sched *s = xcalloc(1, sizeof *s);
    s->ctx = ctx;
    return s;
}

void sched_add(sched *s, qmsg *msg, char *path)
{
    qent *e = xcalloc(1, sizeof *e);
    e->msg = msg;
    e->path = path;
    e->cq = chanq_get(s, msg->channel);
    s->count++;
    qent_requeue(e);
    kick(e->cq);
}

void sched_start(sched *s)
{
    s->running = true;
    for (size_t i = 0; i < s->n_chans; i++) kick(s->chans[i]);
}

void sched_stop(sched *s)
{
    s->running = false;
    for (size_t i = 0; i < s->n_chans; i++) evtimer_del(s->chans[i]->timer);
}

int sched_idle(const sched *s)
{
    return s->busy == 0;
}

size_t sched_count(const sched *s)
{
    return s->count;
}

void sched_free(sched *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_chans; i++) {
        chanq *cq = s->chans[i];
        for (size_t k = 0; k < cq->n; k++) qent_free(cq->heap[k]);
        free(cq->heap);
        event_free(cq->timer);
        free(cq->name);
        free(cq);
    }
    free(s->chans);
    free(s);
}

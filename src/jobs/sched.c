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
#include "queue/enqueue.h"
#include "queue/qadmin.h"
#include "queue/store.h"
#include "rewrite/rewrite.h"
#include "rewrite/route.h"
#include "smtp/parse.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct chanq chanq;

typedef struct qent {
    qmsg *msg;
    char *path;
    chanq *cq;
    int64_t due;
    size_t heap_idx;
    bool in_heap;
    bool removing;   /* being removed from disk */
    bool return_now; /* administrator asked for a bounce now */
    struct qent *prev, *next; /* every qent of the scheduler */
} qent;

typedef struct poolq {
    char *name;
    int active; /* jobs running in channels of this pool */
} poolq;

struct chanq {
    char *name;
    bool kicking; /* re-entrancy guard: a job can end inside kick */
    struct job *idle; /* parked jobs (they still count in active) */
    qent **heap;
    size_t n, cap;
    int active;
    struct event *timer;
    sched *s;
};

typedef struct job {
    sched *s;
    chanq *cq;
    poolq *pq;
    sl_conf *conf;
    const sl_channel *ch;
    char *host;
    smtp_out *out;
    qent *cur;
    deliv_item item;
    size_t pending_bounce;
    struct event *idle_timer; /* parked: connection kept open for more mail to the same host */
    struct job *idle_next;
    bool idle;
} job;

#define SCHED_IDLE_KEEP_SECS 2 /* how long an SMTP job with nothing to do keeps its connection */

struct sched {
    sl_ctx *ctx;
    chanq **chans;
    size_t n_chans;
    poolq **pools;
    size_t n_pools;
    size_t rr; /* round-robin start when a pool slot frees */
    qent *all; /* every qent, for administration */
    bool running;
    int busy;      /* jobs plus outstanding removals */
    size_t count;  /* qents held */
    uint64_t body_bytes; /* message content held in memory (queue_cache_size bounds it) */
    /* statistics for "queue stats" (benchmark 4: the cost of a decision must not grow with the queue) */
    uint64_t heap_ops, heap_ns;     /* pushes and removals in the channel heaps, and their time */
    uint64_t decisions, decide_ns;  /* messages handed to a new job by kick, and the time per hand-over */
    size_t heap_max;                /* the largest channel heap seen */
    bool recovering;                /* the start-up scan is still running */
    size_t recovered;
    double recover_secs;
};

static void kick(chanq *cq);
static void job_next(job *j);
static void job_park(job *j);

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
    uint64_t t0 = now_mono_ns();
    if (cq->n == cq->cap) {
        cq->cap = cq->cap ? cq->cap * 2 : 64;
        cq->heap = xrealloc(cq->heap, cq->cap * sizeof *cq->heap);
    }
    e->heap_idx = cq->n;
    e->in_heap = true;
    cq->heap[cq->n++] = e;
    heap_up(cq, e->heap_idx);
    if (cq->n > cq->s->heap_max) cq->s->heap_max = cq->n;
    cq->s->heap_ops++;
    cq->s->heap_ns += now_mono_ns() - t0;
}

static void heap_remove(chanq *cq, size_t i)
{
    uint64_t t0 = now_mono_ns();
    qent *e = cq->heap[i];
    e->in_heap = false;
    cq->n--;
    if (i != cq->n) {
        cq->heap[i] = cq->heap[cq->n];
        cq->heap[i]->heap_idx = i;
        heap_down(cq, i);
        heap_up(cq, i);
    }
    cq->s->heap_ops++;
    cq->s->heap_ns += now_mono_ns() - t0;
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

static void qent_unlink(qent *e)
{
    sched *s = e->cq->s;
    if (e->prev) e->prev->next = e->next;
    else if (s->all == e) s->all = e->next;
    if (e->next) e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

/* body_keep - account for a message's content in memory, or drop it when over queue_cache_size. */
static void body_keep(sched *s, qmsg *m)
{
    if (m->body_on_disk) return;
    if (s->body_bytes + m->data_len > s->ctx->conf->opt.queue_cache_size) {
        qmsg_drop_data(m);
        return;
    }
    s->body_bytes += m->data_len;
}

/* body_trim - after an attempt: give a waiting message's content up while the cache is over its size. */
static void body_trim(sched *s, qmsg *m)
{
    if (m->body_on_disk || s->body_bytes <= s->ctx->conf->opt.queue_cache_size) return;
    s->body_bytes -= m->data_len;
    qmsg_drop_data(m);
}

static void qent_free(qent *e)
{
    sched *s = e->cq->s;
    if (!e->msg->body_on_disk) s->body_bytes -= e->msg->data_len;
    qent_unlink(e);
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
        e->removing = true;
        store_remove(s->ctx->store, e->path, removed, e);
        return;
    }
    e->due = due;
    body_trim(s, e->msg);
    heap_push(e->cq, e);
}

/* ---- items ---- */

static bool item_select(job *j, qent *e, int64_t now, const char *host)
{
    deliv_item *it = &j->item;
    memset(it, 0, sizeof *it);
    for (size_t i = 0; i < e->msg->n_rcpts; i++) {
        const qrcpt *r = &e->msg->rcpts[i];
        if (r->status != QR_PENDING) continue;
        if (!e->return_now) {
            if (r->next_attempt > now) continue;
            if (!host) host = r->host;
            if (!str_ieq(r->host, host)) continue;
        } else if (!host) {
            host = r->host;
        }
        if (j->ch && j->ch->copts.max_rcpts && it->n >= j->ch->copts.max_rcpts) break;
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

/* retry_delay - the channel's backoff for the n-th attempt (the last entry repeats), else doubling. */
static int64_t retry_delay(const sl_channel *ch, const sl_options *o, unsigned attempts)
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

/* lifetime - age at which a message is returned: the last "notices" age, else message_lifetime. */
static int64_t lifetime(const sl_channel *ch, const sl_options *o)
{
    if (ch && ch->n_notices) return ch->notices[ch->n_notices - 1];
    return o->message_lifetime;
}

/* next_deadline - the next notice age (delay warning or return) not yet reached for r, as a time. */
static int64_t next_deadline(const sl_channel *ch, const sl_options *o, const qmsg *m, const qrcpt *r)
{
    if (ch && ch->n_notices && r->notices_sent + 1u < ch->n_notices) return m->arrival + ch->notices[r->notices_sent];
    return m->arrival + lifetime(ch, o);
}

static bool wants_failure_dsn(unsigned notify)
{
    if (notify & DSN_NOTIFY_NEVER) return false;
    return notify == 0 || (notify & DSN_NOTIFY_FAILURE);
}

static bool wants_delay_dsn(unsigned notify)
{
    if (notify & DSN_NOTIFY_NEVER) return false;
    return notify == 0 || (notify & DSN_NOTIFY_DELAY);
}

/* states_written - the new states are durable: the message waits again, or leaves the disk. */
static void states_written(void *arg, sl_result res, const char *err)
{
    qent *e = arg;
    sched *s = e->cq->s;
    if (res != SL_OK) log_error(e->msg->id, "state_write_error", "error=\"%s\"", err);
    s->busy--;
    qent_requeue(e);
    kick(e->cq);
}

/* persist - make the item's new recipient states durable, then let the job go on at once: the
 * flush (shared with the commits of the moment) must not hold a delivery connection. When every
 * recipient is final the removal of the file is the record (as in Postfix): no state flush, and
 * a crash before the removal only repeats deliveries, never loses one. */
static void persist(job *j)
{
    qent *e = j->cur;
    item_clear(&j->item);
    j->cur = NULL;
    if (qent_due(e) < 0) {
        qent_requeue(e);
        job_next(j);
        return;
    }
    j->s->busy++;
    store_update_states(j->s->ctx->store, e->path, e->msg, states_written, e);
    job_next(j);
}

/* report - one DSN line item. */
typedef struct {
    dsn_report *v;
    size_t n;
} reportset;

static void report_add(reportset *rs, const qrcpt *r, const char *action, const deliv_result *res)
{
    dsn_report *d = &rs->v[rs->n++];
    d->rcpt = r;
    d->action = action;
    d->status = res->status[0] ? res->status : NULL;
    d->diag = res->diag;
    d->remote_mta = res->remote_mta;
}

/*
 * The DSNs of one item go out one kind at a time (failed, then delayed, then success), each
 * durable before the recipients it reports on change state; the chain ends with persist().
 */
typedef struct {
    job *j;
    reportset sets[3];
    int next;
} dsnchain;

static void dsnchain_step(void *arg, sl_result res, const char *err);

static void dsnchain_run(dsnchain *c)
{
    while (c->next < 3 && c->sets[c->next].n == 0) c->next++;
    if (c->next == 3) {
        job *j = c->j;
        for (int i = 0; i < 3; i++) free(c->sets[i].v);
        free(c);
        persist(j);
        return;
    }
    reportset *rs = &c->sets[c->next];
    bounce_submit(c->j->s->ctx, c->j->item.msg, rs->v, rs->n, dsnchain_step, c);
}

static void dsnchain_step(void *arg, sl_result res, const char *err)
{
    dsnchain *c = arg;
    job *j = c->j;
    (void)err;
    if (c->next == 0) {
        /* Only once the failure DSN is durable may the recipients be marked failed; else retry later. */
        deliv_item *it = &j->item;
        for (size_t i = 0; i < it->n; i++) {
            qrcpt *r = &it->msg->rcpts[it->rcpts[i]];
            if (it->results[i].result != SL_PERM) continue;
            if (res == SL_OK) r->status = QR_FAILED;
            else r->next_attempt = now_unix() + retry_delay(j->ch, &j->conf->opt, r->attempts + 1);
        }
    }
    c->next++;
    dsnchain_run(c);
}

static void log_result(const qmsg *m, const qrcpt *r, const deliv_result *res, const char *event)
{
    log_info(m->id, event, "rcpt=<%s> orig=<%s> channel=%s relay=\"%s\" status=%s diag=\"%s\" attempts=%u", r->addr,
             r->orig, m->channel, res->remote_mta ? res->remote_mta : "", res->status, res->diag ? res->diag : "",
             r->attempts);
}

/* item_temp - a temporary failure: retry per backoff, warn at notice ages, return at the last. */
static bool item_temp(job *j, qrcpt *r, deliv_result *res, int64_t now, reportset *delayed)
{
    const qmsg *m = j->item.msg;
    const sl_options *o = &j->conf->opt;
    int64_t age = now - m->arrival;
    if (age >= lifetime(j->ch, o)) {
        /* timed out: returned as failed, with the last temporary reason */
        if (res->status[0] != '4') snprintf(res->status, sizeof res->status, "4.4.7");
        res->result = SL_PERM;
        return false;
    }
    unsigned reached = 0;
    if (j->ch && j->ch->n_notices > 1)
        while (reached + 1 < j->ch->n_notices && j->ch->notices[reached] <= age) reached++;
    if (reached > r->notices_sent) {
        r->notices_sent = (uint8_t)reached;
        if (wants_delay_dsn(r->notify)) report_add(delayed, r, "delayed", res);
    }
    int64_t next = now + retry_delay(j->ch, o, r->attempts);
    int64_t deadline = next_deadline(j->ch, o, m, r);
    r->next_attempt = next < deadline ? next : (deadline > now ? deadline : now + 1);
    log_result(m, r, res, "deferred");
    return true;
}

/* item_done - apply a finished item's results (on the loop). */
static void item_done(job *j)
{
    deliv_item *it = &j->item;
    qmsg *m = it->msg;
    int64_t now = now_unix();
    dsnchain *c = xcalloc(1, sizeof *c);
    c->j = j;
    for (int k = 0; k < 3; k++) c->sets[k].v = xcalloc(it->n, sizeof(dsn_report));
    size_t nfail = 0;
    bool final_delivery = j->ch && (j->ch->type == CHAN_LOCAL || j->ch->type == CHAN_LMTP || j->ch->lmtp);
    for (size_t i = 0; i < it->n; i++) {
        qrcpt *r = &m->rcpts[it->rcpts[i]];
        deliv_result *res = &it->results[i];
        if (res->result == SL_OK) {
            r->status = res->relayed ? QR_RELAYED : QR_DELIVERED;
            log_result(m, r, res, "delivered");
            if ((r->notify & DSN_NOTIFY_SUCCESS) && (res->relayed || final_delivery))
                report_add(&c->sets[2], r, res->relayed ? "relayed" : "delivered", res);
            continue;
        }
        r->attempts++;
        if (res->result != SL_PERM && item_temp(j, r, res, now, &c->sets[1])) continue;
        log_result(m, r, res, "failed");
        nfail++;
        if (wants_failure_dsn(r->notify)) report_add(&c->sets[0], r, "failed", res);
        else r->status = QR_FAILED; /* NOTIFY without FAILURE: fail silently */
    }
    if (nfail && c->sets[0].n == 0) {
        /* nothing to report, but PERM results still become final through the chain's first step */
        for (size_t i = 0; i < it->n; i++)
            if (it->results[i].result == SL_PERM) m->rcpts[it->rcpts[i]].status = QR_FAILED;
    }
    dsnchain_run(c);
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
            deliv_result_set(res, SL_TEMP, "4.3.5", "x-local; channel cannot deliver", NULL);
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

/* ---- process channels: rewrite again with this channel as the source, and requeue ---- */

typedef struct {
    job *j;
    enq_msg em;
} procjob;

static void process_done(void *arg, sl_result res, const char *err)
{
    procjob *p = arg;
    job *j = p->j;
    deliv_item *it = &j->item;
    for (size_t i = 0; i < it->n; i++) {
        if (it->results[i].result != SL_OK) continue; /* routing failures keep their PERM result */
        if (res != SL_OK) deliv_result_set(&it->results[i], SL_TEMP, "4.3.0", err ? err : "requeue failed", NULL);
    }
    if (res == SL_OK && p->em.n_rcpts)
        log_info(it->msg->id, "requeued", "id=%s from_channel=%s nrcpt=%zu", p->em.id, it->msg->channel,
                 p->em.n_rcpts);
    enqueue_msg_free(&p->em);
    free(p);
    item_done(j);
}

static void process_run(job *j)
{
    deliv_item *it = &j->item;
    const qmsg *m = it->msg;
    procjob *p = xcalloc(1, sizeof *p);
    p->j = j;
    store_new_id(j->s->ctx->store, p->em.id, sizeof p->em.id);
    p->em.sender = xstrdup(m->sender);
    p->em.envid = xstrdup(m->envid);
    p->em.ret = m->ret;
    p->em.body = m->body;
    p->em.smtputf8 = m->smtputf8;
    p->em.is_notification = m->is_notification;
    p->em.is_postmaster_copy = m->is_postmaster_copy;
    p->em.arrival = m->arrival;
    p->em.src_channel = xstrdup(m->channel);
    p->em.client = xstrdup(m->client);
    p->em.data = m->data;
    p->em.data_len = m->data_len;
    for (size_t i = 0; i < it->n; i++) {
        const qrcpt *r = &m->rcpts[it->rcpts[i]];
        rw_result rw;
        memset(&rw, 0, sizeof rw);
        sl_result rc = rewrite_address(j->conf, r->addr, j->ch->name, &rw, NULL);
        if (rc == SL_OK && str_ieq(rw.channel->name, j->ch->name)) {
            rc = SL_PERM;
            free(rw.error);
            rw.error = xstrdup("routing loop: the process channel routes to itself");
        }
        if (rc != SL_OK) {
            char *diag = xasprintf("x-process; %s", rw.error ? rw.error : "cannot route");
            deliv_result_set(&it->results[i], rc == SL_PERM ? SL_PERM : SL_TEMP, rc == SL_PERM ? "5.4.6" : "4.4.6",
                             diag, NULL);
            free(diag);
        } else {
            char *diag = xasprintf("x-process; requeued to %s", rw.channel->name);
            deliv_result_set(&it->results[i], SL_OK, "2.0.0", diag, NULL);
            free(diag);
            char *dest = route_dest_host(&rw);
            enqueue_add_rcpt(&p->em, rw.addr, r->orig, r->orcpt, rw.channel->name, dest, r->notify);
            free(dest);
        }
        rw_result_free(&rw);
    }
    if (!p->em.n_rcpts) {
        process_done(p, SL_OK, NULL);
        return;
    }
    enqueue_submit(j->s->ctx, &p->em, process_done, p);
}

static void return_run(void *arg)
{
    job *j = arg;
    for (size_t i = 0; i < j->item.n; i++)
        deliv_result_set(&j->item.results[i], SL_PERM, "5.0.0", "x-sluice; returned to the sender by the postmaster",
                         NULL);
}

typedef struct {
    job *j;
    char *path;
    size_t len;
    char id[32];
    qmsg loaded; /* the content read back (data_owned), or nothing with err set */
    int rc;
    char err[256];
} body_load;

static void body_load_run(void *arg)
{
    body_load *b = arg;
    memset(&b->loaded, 0, sizeof b->loaded);
    snprintf(b->loaded.id, sizeof b->loaded.id, "%s", b->id);
    b->loaded.data_len = b->len;
    b->loaded.body_on_disk = true;
    b->rc = qfile_load_data(b->path, &b->loaded, b->err, sizeof b->err);
}

static void job_run_item(job *j);

/* body_load_done - the content is back in memory (and counted), or the attempt is deferred. */
static void body_load_done(void *arg)
{
    body_load *b = arg;
    job *j = b->j;
    qmsg *m = j->cur->msg;
    if (b->rc == 0) {
        m->data_owned = b->loaded.data_owned;
        m->data = m->data_owned;
        m->body_on_disk = false;
        j->s->body_bytes += m->data_len;
        job_run_item(j);
    } else {
        log_error(m->id, "queue_read_error", "path=%s error=\"%s\"", j->cur->path, b->err);
        char *diag = xasprintf("x-sluice; queue file unreadable: %s", b->err);
        for (size_t i = 0; i < j->item.n; i++) deliv_result_set(&j->item.results[i], SL_TEMP, "4.3.0", diag, NULL);
        free(diag);
        item_done(j);
    }
    free(b->path);
    free(b);
}

static void job_run_item(job *j)
{
    if (j->cur->msg->body_on_disk) { /* beyond queue_cache_size: read the content back first */
        body_load *b = xcalloc(1, sizeof *b);
        b->j = j;
        b->path = xstrdup(j->cur->path);
        b->len = j->cur->msg->data_len;
        snprintf(b->id, sizeof b->id, "%s", j->cur->msg->id);
        workq_submit(j->s->ctx->wq, body_load_run, body_load_done, b);
        return;
    }
    if (j->cur->return_now) {
        j->cur->return_now = false;
        workq_submit(j->s->ctx->wq, return_run, local_done, j);
    } else if (j->ch->type == CHAN_SMTP || j->ch->type == CHAN_LMTP) {
        if (!j->out) {
            sl_ctx *ctx = j->s->ctx;
            j->out = smtp_out_new(ctx->base, ctx->dns, j->conf, j->ch, j->host);
            smtp_out_set_self(j->out, ctx->loop_token, ctx->listen_addrs, ctx->n_listen);
            smtp_out_set_tls(j->out, ctx->tls_client);
        }
        smtp_out_deliver(j->out, &j->item, smtp_item_done, j);
    } else if (j->ch->type == CHAN_PROCESS) {
        process_run(j);
    } else {
        workq_submit(j->s->ctx->wq, local_run, local_done, j);
    }
}

/* pool_of - the pool a channel runs in under the current configuration. */
static poolq *pool_of(sched *s, const sl_channel *ch, unsigned *limit)
{
    const sl_conf *c = s->ctx->conf;
    const char *name = ch->pool;
    *limit = 10;
    if (!name && c->n_pools) name = c->pools[0].name;
    if (!name) name = "DEFAULT";
    for (size_t i = 0; i < c->n_pools; i++)
        if (str_ieq(c->pools[i].name, name)) *limit = c->pools[i].job_limit;
    for (size_t i = 0; i < s->n_pools; i++)
        if (str_ieq(s->pools[i]->name, name)) return s->pools[i];
    poolq *p = xcalloc(1, sizeof *p);
    p->name = xstrdup(name);
    s->pools = xrealloc(s->pools, (s->n_pools + 1) * sizeof *s->pools);
    s->pools[s->n_pools++] = p;
    return p;
}

/* kick_pool - a job of pool p ended: let every channel of p start work, fairly (round robin). */
static void kick_pool(sched *s, poolq *p)
{
    size_t n = s->n_chans;
    if (!n) return;
    size_t start = s->rr++ % n;
    for (size_t k = 0; k < n; k++) {
        chanq *cq = s->chans[(start + k) % n];
        const sl_channel *ch = conf_channel_by_name(s->ctx->conf, cq->name);
        unsigned lim;
        if (ch && pool_of(s, ch, &lim) == p) kick(cq);
    }
}

static void job_end(job *j)
{
    chanq *cq = j->cq;
    sched *s = j->s;
    poolq *p = j->pq;
    if (j->out) smtp_out_free(j->out);
    if (j->idle_timer) event_free(j->idle_timer);
    ctx_conf_put(s->ctx, j->conf);
    free(j->host);
    free(j);
    cq->active--;
    p->active--;
    s->busy--;
    kick(cq);
    kick_pool(s, p);
}

static void job_unpark(job *j)
{
    chanq *cq = j->cq;
    for (job **pp = &cq->idle; *pp; pp = &(*pp)->idle_next)
        if (*pp == j) {
            *pp = j->idle_next;
            break;
        }
    j->idle_next = NULL;
    j->idle = false;
    evtimer_del(j->idle_timer);
}

static void idle_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job *j = arg;
    job_unpark(j);
    job_end(j);
}

/* job_park - keep an idle SMTP connection a little while: mail for the same host often follows. */
static void job_park(job *j)
{
    if (!j->idle_timer) j->idle_timer = evtimer_new(j->s->ctx->base, idle_expired, j);
    j->idle = true;
    j->idle_next = j->cq->idle;
    j->cq->idle = j;
    struct timeval tv = {SCHED_IDLE_KEEP_SECS, 0};
    evtimer_add(j->idle_timer, &tv);
}

/* idle_take - a parked job of cq that can take e now (same host and a live connection), or NULL. */
static job *idle_take(chanq *cq, qent *e, int64_t now)
{
    for (job *j = cq->idle; j; j = j->idle_next) {
        if (!smtp_out_reusable(j->out)) continue;
        heap_remove(cq, e->heap_idx);
        if (item_select(j, e, now, j->host)) {
            job_unpark(j);
            return j;
        }
        heap_push(cq, e);
    }
    return NULL;
}

/* pool_reclaim_idle - end one parked job of pool p (any channel) to free a slot; false if none. */
static bool pool_reclaim_idle(sched *s, poolq *p)
{
    for (size_t i = 0; i < s->n_chans; i++) {
        job *j = s->chans[i]->idle;
        if (!j || j->pq != p) continue;
        job_unpark(j);
        job_end(j);
        return true;
    }
    return false;
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
        job_park(j);
        return;
    }
    job_end(j);
}

/* job_start - a new job for e; t0 is when kick began looking at e: the decision's cost is counted
 * up to the job being ready, before its first I/O (connect, or reading the content back). */
static void job_start(chanq *cq, const sl_channel *ch, poolq *p, qent *e, int64_t now, uint64_t t0)
{
    sched *s = cq->s;
    job *j = xcalloc(1, sizeof *j);
    j->s = s;
    j->cq = cq;
    j->pq = p;
    j->conf = ctx_conf_get(s->ctx);
    j->ch = conf_channel_by_name(j->conf, ch->name);
    cq->active++;
    p->active++;
    s->busy++;
    if (!item_select(j, e, now, NULL)) { /* nothing due after all */
        qent_requeue(e);
        job_end(j);
        return;
    }
    j->host = xstrdup(j->item.host);
    log_debug(e->msg->id, "job_start", "channel=%s host=%s pool=%s channel_jobs=%d pool_jobs=%d", ch->name, j->host,
              p->name, cq->active, p->active);
    s->decisions++;
    s->decide_ns += now_mono_ns() - t0;
    job_run_item(j);
}

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kick(arg);
}

/* kick - start jobs for due messages of a channel within min(maxjobs, pool job_limit) and the pool's
 * shared limit; arm the timer for the next due message. O(log n) per message started. */
static void kick(chanq *cq)
{
    sched *s = cq->s;
    if (!s->running || cq->kicking) return;
    const sl_channel *ch = conf_channel_by_name(s->ctx->conf, cq->name);
    if (!ch) return;
    /* a hold channel keeps its messages until released; only an administrator's return runs */
    bool hold = ch->type == CHAN_HOLD;
    if (hold && !(cq->n && cq->heap[0]->return_now)) return;
    cq->kicking = true;
    unsigned plimit;
    poolq *p = pool_of(s, ch, &plimit);
    int limit = ch->maxjobs ? (int)ch->maxjobs : 1;
    if ((int)plimit < limit) limit = (int)plimit;
    int64_t now = now_unix();
    while (cq->n && cq->heap[0]->due <= now && (!hold || cq->heap[0]->return_now)) {
        uint64_t t0 = now_mono_ns();
        qent *e = cq->heap[0];
        job *ij = cq->idle ? idle_take(cq, e, now) : NULL;
        if (ij) { /* a parked connection to the same host takes it */
            job_run_item(ij);
            continue;
        }
        if (cq->active >= limit) { /* a parked connection to another host gives its slot up */
            job *v = cq->idle;
            if (!v) break;
            job_unpark(v);
            job_end(v);
            continue;
        }
        if (p->active >= (int)plimit) { /* the same, for the pool's shared limit */
            if (!pool_reclaim_idle(s, p)) break;
            continue;
        }
        heap_remove(cq, 0);
        job_start(cq, ch, p, e, now, t0);
        ch = conf_channel_by_name(s->ctx->conf, cq->name);
        if (!ch) break;
    }
    if (cq->n && cq->heap[0]->due > now && !hold) {
        struct timeval tv = {(time_t)(cq->heap[0]->due - now), 0};
        evtimer_add(cq->timer, &tv);
    }
    cq->kicking = false;
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
    e->next = s->all;
    if (s->all) s->all->prev = e;
    s->all = e;
    s->count++;
    body_keep(s, msg);
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
    for (size_t i = 0; i < s->n_chans; i++) {
        chanq *cq = s->chans[i];
        evtimer_del(cq->timer);
        while (cq->idle) {
            job *j = cq->idle;
            job_unpark(j);
            job_end(j);
        }
    }
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
    for (size_t i = 0; i < s->n_pools; i++) {
        free(s->pools[i]->name);
        free(s->pools[i]);
    }
    free(s->pools);
    free(s);
}

/* ---- administration ---- */

typedef struct {
    sched *s;
    strbuf out;
    int status;
    int pending; /* file operations in flight, plus one while issuing */
    sched_admin_cb cb;
    void *arg;
} admin_req;

typedef struct {
    admin_req *req;
    char *from, *to; /* rename (to == NULL: unlink) */
    char id[32], channel[64];
    char verb[16]; /* copied: the command's argv is gone when the operation completes */
    int err;
    qmsg *loaded; /* release: the decoded file */
    char *loaded_path;
} admin_op;

static void admin_finish(admin_req *r)
{
    if (--r->pending > 0) return;
    r->cb(r->arg, r->status, &r->out);
    sb_free(&r->out);
    free(r);
}

static void admin_file_run(void *arg)
{
    admin_op *op = arg;
    op->err = 0;
    if (op->to) {
        char *dir = xstrdup(op->to);
        *strrchr(dir, '/') = '\0';
        char *parent = xstrdup(dir);
        char *slash = strrchr(parent, '/');
        if (slash) *slash = '\0';
        mkdir(parent, 0700);
        mkdir(dir, 0700);
        if (rename(op->from, op->to) < 0) op->err = errno;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            if (fsync(fd) < 0 && !op->err) op->err = errno;
            close(fd);
        }
        free(parent);
        free(dir);
    } else if (unlink(op->from) < 0) {
        op->err = errno;
    }
    if (!op->err && op->loaded_path) { /* release: read the file back for the scheduler */
        strbuf sb = {0};
        char errbuf[256];
        file_read(op->to, &sb);
        op->loaded = xcalloc(1, sizeof *op->loaded);
        if (qfile_decode(sb.data ? sb.data : "", sb.len, op->loaded, errbuf, sizeof errbuf) < 0) {
            free(op->loaded);
            op->loaded = NULL;
            op->err = EINVAL;
        }
        sb_free(&sb);
    }
}

static void admin_file_done(void *arg)
{
    admin_op *op = arg;
    admin_req *r = op->req;
    if (op->err) {
        sb_printf(&r->out, "%s %s: %s failed: %s\n", op->id, op->channel, op->verb, strerror(op->err));
        r->status = 1;
    } else {
        sb_printf(&r->out, "%s %s: %s\n", op->id, op->channel, op->verb);
        log_info(op->id, "admin", "action=%s channel=%s", op->verb, op->channel);
        if (op->loaded) sched_add(r->s, op->loaded, xstrdup(op->to));
    }
    free(op->from);
    free(op->to);
    free(op->loaded_path);
    free(op);
    admin_finish(r);
}

static void admin_file_op(admin_req *r, const char *verb, const qmsg *m, const char *from, char *to, bool load)
{
    admin_op *op = xcalloc(1, sizeof *op);
    op->req = r;
    snprintf(op->verb, sizeof op->verb, "%s", verb);
    op->from = xstrdup(from);
    op->to = to;
    snprintf(op->id, sizeof op->id, "%s", m ? m->id : "");
    snprintf(op->channel, sizeof op->channel, "%s", m ? m->channel : "");
    if (load) {
        op->loaded_path = xstrdup(to);
        store_claim(r->s->ctx->store, op->id); /* a background recovery scan must not add it too */
    }
    r->pending++;
    workq_submit(r->s->ctx->wq, admin_file_run, admin_file_done, op);
}

static const char *qent_state(const qent *e)
{
    return e->in_heap ? "queued" : e->removing ? "removing" : "delivering";
}

/* admin_take - take a waiting qent out of the scheduler; NULL (and a message) when busy. */
static bool admin_take(admin_req *r, qent *e)
{
    if (!e->in_heap) {
        sb_printf(&r->out, "%s %s: busy (%s), try again\n", e->msg->id, e->msg->channel, qent_state(e));
        r->status = 1;
        return false;
    }
    heap_remove(e->cq, e->heap_idx);
    return true;
}

static void admin_release(admin_req *r, const char *id)
{
    const char *qdir = r->s->ctx->conf->opt.queue_dir;
    char *held = xasprintf("%s/.held", qdir);
    DIR *d = opendir(held);
    size_t found = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *dot = strrchr(de->d_name, '.');
        if (de->d_name[0] == '.' || !dot || strcmp(dot + 1, id) != 0) continue;
        char *chan = xstrndup(de->d_name, (size_t)(dot - de->d_name));
        const sl_channel *ch = conf_channel_by_name(r->s->ctx->conf, chan);
        qmsg tmp = {0};
        snprintf(tmp.id, sizeof tmp.id, "%s", id);
        tmp.channel = chan;
        char *from = xasprintf("%s/%s", held, de->d_name);
        admin_file_op(r, "release", &tmp, from, store_queue_path(qdir, chan, ch && ch->subdirs ? ch->subdirs : 1, id),
                      true);
        free(from);
        free(chan);
        found++;
    }
    if (d) closedir(d);
    free(held);
    if (!found) {
        sb_printf(&r->out, "%s: no such held message\n", id);
        r->status = 1;
    }
}

void sched_admin(sched *s, int argc, char **argv, sched_admin_cb cb, void *arg)
{
    admin_req *r = xcalloc(1, sizeof *r);
    r->s = s;
    r->cb = cb;
    r->arg = arg;
    r->pending = 1;
    const char *cmd = argc ? argv[0] : "";
    const char *qdir = s->ctx->conf->opt.queue_dir;
    bool by_id = argc == 2;
    if (!strcmp(cmd, "list") && argc <= 2) {
        for (qent *e = s->all; e; e = e->next)
            if (argc < 2 || str_ieq(e->msg->channel, argv[1])) qadmin_list_line(e->msg, qent_state(e), &r->out);
    } else if (!strcmp(cmd, "summary") && argc == 1) {
        qadmin_summary sum = {0};
        for (qent *e = s->all; e; e = e->next) qadmin_summary_add(&sum, e->msg);
        qadmin_summary_print(&sum, now_unix(), &r->out);
    } else if (!strcmp(cmd, "stats") && argc == 1) {
        sched_stats(s, &r->out);
    } else if (!strcmp(cmd, "release") && by_id) {
        admin_release(r, argv[1]);
    } else if (by_id && (!strcmp(cmd, "show") || !strcmp(cmd, "hold") || !strcmp(cmd, "delete") ||
                         !strcmp(cmd, "return") || !strcmp(cmd, "retry"))) {
        size_t found = 0;
        qent *e = s->all;
        while (e) {
            qent *next = e->next;
            bool match = !strcmp(e->msg->id, argv[1]) || (!strcmp(cmd, "retry") && str_ieq(e->msg->channel, argv[1]));
            if (!match) {
                e = next;
                continue;
            }
            found++;
            if (!strcmp(cmd, "show")) {
                qadmin_show(e->msg, e->path, qent_state(e), &r->out);
            } else if (!strcmp(cmd, "hold") || !strcmp(cmd, "delete")) {
                if (admin_take(r, e)) {
                    bool hold = !strcmp(cmd, "hold");
                    admin_file_op(r, cmd, e->msg, e->path, hold ? qadmin_held_path(qdir, e->msg->channel, e->msg->id) : NULL,
                                  false);
                    s->count--;
                    qent_free(e);
                }
            } else if (!strcmp(cmd, "return")) {
                if (admin_take(r, e)) {
                    e->return_now = true;
                    e->due = -1; /* ahead of everything, also in a hold channel */
                    heap_push(e->cq, e);
                    sb_printf(&r->out, "%s %s: return\n", e->msg->id, e->msg->channel);
                    log_info(e->msg->id, "admin", "action=return channel=%s", e->msg->channel);
                    kick(e->cq);
                }
            } else { /* retry */
                for (size_t i = 0; i < e->msg->n_rcpts; i++)
                    if (e->msg->rcpts[i].status == QR_PENDING) e->msg->rcpts[i].next_attempt = 0;
                if (e->in_heap) {
                    heap_remove(e->cq, e->heap_idx);
                    e->due = 0;
                    heap_push(e->cq, e);
                    store_update_states(s->ctx->store, e->path, e->msg, NULL, NULL);
                }
                sb_printf(&r->out, "%s %s: retry\n", e->msg->id, e->msg->channel);
                log_info(e->msg->id, "admin", "action=retry channel=%s", e->msg->channel);
                kick(e->cq);
            }
            e = next;
        }
        if (!found) {
            sb_printf(&r->out, "%s: no such message\n", argv[1]);
            r->status = 1;
        }
    } else {
        sb_printf(&r->out, "usage: queue list [CHANNEL] | show ID | hold ID | release ID | delete ID | return ID | "
                           "retry ID|CHANNEL | summary | stats\n");
        r->status = 2;
    }
    admin_finish(r);
}

void sched_stats(const sched *s, strbuf *out)
{
    sb_printf(out, "messages: %zu\n", s->count);
    sb_printf(out, "recovery: %s", s->recovering ? "running" : "done");
    if (!s->recovering) sb_printf(out, " (%zu messages in %.3f s)", s->recovered, s->recover_secs);
    sb_printf(out, "\nbodies in memory: %" PRIu64 " bytes (queue_cache_size %" PRIu64 ")\n", s->body_bytes,
              s->ctx->conf->opt.queue_cache_size);
    sb_printf(out, "largest channel heap: %zu\n", s->heap_max);
    sb_printf(out, "heap operations: %" PRIu64 " (%.0f ns each)\n", s->heap_ops,
              s->heap_ops ? (double)s->heap_ns / (double)s->heap_ops : 0.0);
    sb_printf(out, "decisions: %" PRIu64 " (%.0f ns each)\n", s->decisions,
              s->decisions ? (double)s->decide_ns / (double)s->decisions : 0.0);
}

void sched_recovery(sched *s, bool running, size_t found, double secs)
{
    s->recovering = running;
    s->recovered = found;
    s->recover_secs = secs;
}

void sched_load_returns(sched *s)
{
    const char *qdir = s->ctx->conf->opt.queue_dir;
    char *rdir = xasprintf("%s/.return", qdir);
    DIR *d = opendir(rdir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *dot = strrchr(de->d_name, '.');
        if (de->d_name[0] == '.' || !dot) continue;
        char *from = xasprintf("%s/%s", rdir, de->d_name);
        char *chan = xstrndup(de->d_name, (size_t)(dot - de->d_name));
        const sl_channel *ch = conf_channel_by_name(s->ctx->conf, chan);
        char *to = store_queue_path(qdir, chan, ch && ch->subdirs ? ch->subdirs : 1, dot + 1);
        char *dir = xstrdup(to);
        *strrchr(dir, '/') = '\0';
        char *parent = xstrdup(dir);
        *strrchr(parent, '/') = '\0';
        mkdir(parent, 0700);
        mkdir(dir, 0700);
        strbuf sb = {0};
        char err[256] = "unreadable";
        file_read(from, &sb);
        qmsg *m = xcalloc(1, sizeof *m);
        store_claim(s->ctx->store, dot + 1);
        if (qfile_decode(sb.data ? sb.data : "", sb.len, m, err, sizeof err) == 0 && rename(from, to) == 0) {
            sched_add(s, m, xstrdup(to));
            qent *e = s->all; /* the one just added */
            if (e->in_heap) heap_remove(e->cq, e->heap_idx);
            e->return_now = true;
            e->due = -1;
            heap_push(e->cq, e);
            log_info(m->id, "admin", "action=return channel=%s when=start-up", chan);
        } else {
            log_error(de->d_name, "return_failed", "path=%s error=\"%s\"", from, err);
            qmsg_free(m);
            free(m);
        }
        sb_free(&sb);
        free(parent);
        free(dir);
        free(to);
        free(chan);
        free(from);
    }
    if (d) closedir(d);
    free(rdir);
}

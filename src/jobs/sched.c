/*
 * sched.c - the job scheduler's heap, pools and jobs (see sched.h; the structures are in
 * sched_int.h, administration in sched_admin.c).
 *
 * A job owns one deliv_item at a time, takes a configuration reference for its lifetime, and
 * runs its items through its channel's program (deliver/program.h), which may keep state in the
 * job (an SMTP session) and then takes the next due message for the same host. An item's
 * results go to outcome_apply (DSNs, recipient states), then the new states are written while
 * the job goes on: the flush must not hold a delivery connection.
 */
#include "jobs/sched_int.h"
#include "core/metrics.h"
#include "conf/conf.h"
#include "core/log.h"
#include "core/workq.h"
#include "jobs/outcome.h"
#include "jobs/shape.h"
#include "queue/store.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct job {
    sched *s;
    chanq *cq;
    poolq *pq;
    sl_conf *conf;              /* the job's configuration reference */
    const deliv_program *prog;  /* the channel's program (a returned item runs the return program) */
    deliv_job dj;               /* what the program runs with (and its state) */
    char *host;
    qent *cur;
    deliv_item item;
    struct event *idle_timer;   /* parked: connection kept open for more mail to the same host */
    struct job *idle_next;
    bool idle;
    sdest *sd;                  /* traffic shaping: the destination whose connection this is, or NULL */
    unsigned sent;              /* messages it started (per_connection) */
} job;

#define SCHED_IDLE_KEEP_SECS 2 /* how long a job with nothing to do keeps its connection */
#define SCHED_NEXT_LOOKAHEAD 64 /* heap positions a finished job looks at for its host */

static void job_next(job *j);
static void job_end(job *j);
static void job_run_item(job *j);
static void kick_spread(chanq *cq, qent *e, int64_t now);

/* qent_of - the qent around a heap node. */
static qent *qent_of(dueheap_node *n)
{
    return n ? (qent *)((char *)n - offsetof(qent, hn)) : NULL;
}

/* chanq_top - the channel's earliest waiting message, or NULL. */
static qent *chanq_top(const chanq *cq)
{
    return qent_of(dueheap_top(&cq->heap));
}

/* ---- the heap, timed ---- */

void sched_heap_push(qent *e)
{
    chanq *cq = e->cq;
    uint64_t t0 = now_mono_ns();
    dueheap_push(&cq->heap, &e->hn);
    if (cq->heap.n > cq->s->heap_max) cq->s->heap_max = cq->heap.n;
    cq->s->heap_ops++;
    cq->s->heap_ns += now_mono_ns() - t0;
}

void sched_heap_remove(qent *e)
{
    chanq *cq = e->cq;
    uint64_t t0 = now_mono_ns();
    dueheap_remove(&cq->heap, &e->hn);
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

/* qent_unlink - take e off the scheduler's list of every qent. */
static void qent_unlink(qent *e)
{
    sched *s = e->cq->s;
    if (e->prev) e->prev->next = e->next;
    else if (s->all == e) s->all = e->next;
    if (e->next) e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

const char *sched_qent_state(const qent *e)
{
    return e->hn.queued || e->wait ? "queued" : e->removing ? "removing" : "delivering";
}

void sched_qent_unshape(qent *e)
{
    if (!e->wait) return;
    sched_shape_unwait(e);
    sched_heap_push(e);
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

void sched_qent_free(qent *e)
{
    sched *s = e->cq->s;
    if (!e->msg->body_on_disk) s->body_bytes -= e->msg->data_len;
    qent_unlink(e);
    qmsg_free(e->msg);
    free(e->msg);
    free(e->path);
    free(e->last_reply);
    free(e->inflight);
    free(e);
}

/* removed - the file of a finished message is gone (or could not be removed): forget it. */
static void removed(void *arg, sl_result res, const char *err)
{
    qent *e = arg;
    sched *s = e->cq->s;
    if (res != SL_OK) log_error(e->msg->id, "remove_error", "path=%s error=\"%s\"", e->path, err);
    else log_info(e->msg->id, "removed", "channel=%s", e->msg->channel);
    s->busy--;
    s->count--;
    sched_qent_free(e);
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
    e->hn.due = due;
    body_trim(s, e->msg);
    sched_heap_push(e);
}

/* ---- items ---- */

/* item_take - whether r belongs in an item to host (NULL: the first pending recipient's host) now;
 * one_system: every recipient goes to the same system (a "daemon" smart host), whatever its host. */
static bool item_take(const qent *e, const qrcpt *r, int64_t now, const char **host, bool one_system)
{
    if (r->status != QR_PENDING) return false;
    /* another job delivers it now (a message of one recipient needs no marks: it is held or not) */
    if (e->holders && (!e->inflight || e->inflight[r - e->msg->rcpts])) return false;
    if (e->return_now) { /* returned: every pending recipient, due or not */
        if (!*host) *host = r->host;
        return true;
    }
    if (r->next_attempt > now) return false;
    if (!*host) *host = r->host;
    return one_system || str_ieq(r->host, *host);
}

/* qent_more_due - e has a pending recipient due now that no job is delivering (another host's). */
static bool qent_more_due(const qent *e, int64_t now)
{
    for (size_t i = 0; i < e->msg->n_rcpts; i++) {
        const char *host = NULL;
        if (item_take(e, &e->msg->rcpts[i], now, &host, false)) return true;
    }
    return false;
}

/* ---- traffic shaping (sched_shape.c) ---- */

/* shape_pick - the host of e's first recipient due now whose destination lets a new connection
 * start a message now, or NULL. */
static const char *shape_pick(qent *e, int64_t now)
{
    sched *s = e->cq->s;
    int64_t ms = sched_now_ms();
    const char *last = NULL;
    for (size_t i = 0; i < e->msg->n_rcpts; i++) {
        const char *host = NULL;
        if (!item_take(e, &e->msg->rcpts[i], now, &host, false)) continue;
        if (last && str_ieq(last, host)) continue;
        last = host;
        if (sched_shape_check(sched_shape_dest(s, host), true, ms) == SHAPE_GO) return host;
    }
    return NULL;
}

/* shape_item - j starts a message for host: its connection counts for the destination, the message for the rate. */
static void shape_item(job *j, const char *host)
{
    int64_t ms = sched_now_ms();
    if (!j->sd) {
        j->sd = sched_shape_dest(j->s, host);
        sched_shape_conn(j->sd, 1);
    }
    sched_shape_sent(j->sd, ms);
    j->sent++;
}

/* item_select - make j's item of e's recipients due now for host (up to MAX_RCPTS; one for a "single"
 * channel); false if none. */
static bool item_select(job *j, qent *e, int64_t now, const char *host)
{
    deliv_item *it = &j->item;
    memset(it, 0, sizeof *it);
    const sl_channel *ch = j->dj.ch;
    bool shaped = !e->return_now && sched_shape_on(e->cq);
    if (shaped && !host && !(host = shape_pick(e, now))) return false; /* every destination holds back */
    /* single_sys and multiple: one copy per destination system; with a smart host that is one for all */
    bool one_system = ch && ch->daemon && (ch->type == CHAN_SMTP || ch->type == CHAN_LMTP || ch->smtp || ch->lmtp);
    for (size_t i = 0; i < e->msg->n_rcpts; i++) {
        if (!item_take(e, &e->msg->rcpts[i], now, &host, one_system)) continue;
        if (ch && ch->copts.max_rcpts && it->n >= ch->copts.max_rcpts) break;
        if (ch && ch->addrmode == CHAN_SINGLE && it->n >= 1) break; /* "single": one copy per recipient */
        it->rcpts = xrealloc(it->rcpts, (it->n + 1) * sizeof *it->rcpts);
        it->rcpts[it->n++] = i;
    }
    if (!it->n) return false;
    if (!e->inflight && e->msg->n_rcpts > 1) e->inflight = xcalloc(e->msg->n_rcpts, sizeof *e->inflight);
    if (e->inflight)
        for (size_t i = 0; i < it->n; i++) e->inflight[it->rcpts[i]] = true;
    e->holders++;
    it->msg = e->msg;
    it->channel = ch;
    it->host = xstrdup(host);
    it->results = xcalloc(it->n, sizeof *it->results);
    j->cur = e;
    if (shaped) shape_item(j, host);
    return true;
}

/* item_clear - free an item's results and recipient list. */
static void item_clear(deliv_item *it)
{
    for (size_t i = 0; i < it->n; i++) deliv_result_clear(&it->results[i]);
    free(it->results);
    free(it->rcpts);
    free(it->host);
    memset(it, 0, sizeof *it);
}

static void states_write(qent *e);

/* qent_release - the last job let e go and no state write is pending: it waits again, or leaves the disk. */
static void qent_release(qent *e)
{
    if (e->holders || e->pins || e->writing) return;
    qent_requeue(e);
    sched_kick(e->cq);
}

/* states_written - the new states are durable: write again if another item finished meanwhile,
 * else the message waits again or leaves the disk (once no job holds it). */
static void states_written(void *arg, sl_result res, const char *err)
{
    qent *e = arg;
    sched *s = e->cq->s;
    if (res != SL_OK) log_error(e->msg->id, "state_write_error", "error=\"%s\"", err);
    s->busy--;
    e->writing = false;
    if (e->rewrite) {
        e->rewrite = false;
        states_write(e);
        return;
    }
    qent_release(e);
}

/* states_write - write e's recipient states (the latest, when a write is already being flushed:
 * after it, so an older state never lands last); with every recipient final there is nothing to write. */
static void states_write(qent *e)
{
    sched *s = e->cq->s;
    if (e->writing) {
        e->rewrite = true;
        return;
    }
    s->busy++;
    e->writing = true;
    if (!outcome_persist(s->ctx, e->path, e->msg, states_written, e)) { /* every recipient final */
        s->busy--;
        e->writing = false;
        qent_release(e);
    }
}

/* item_applied - the item's outcome is carried out: write the new states and let the job go on at
 * once (the flush, shared with the commits of the moment, must not hold a delivery connection). */
static void item_applied(void *arg)
{
    job *j = arg;
    qent *e = j->cur;
    if (e->inflight)
        for (size_t i = 0; i < j->item.n; i++) e->inflight[j->item.rcpts[i]] = false;
    e->holders--;
    item_clear(&j->item);
    j->cur = NULL;
    sched *s = j->s;
    bool held = e->holders > 0; /* other jobs still deliver some of it: it stays out of the heap */
    if (held) e->pins++;
    states_write(e);
    job_next(j); /* may end j and free a slot */
    if (held) {
        /* a slot this freed and the heap's due messages did not take goes to this message's
         * recipients that wait for one (the heap does not hold it while its other jobs run) */
        if (s->running && !e->cq->kicking) kick_spread(e->cq, e, now_unix());
        e->pins--;
        qent_release(e);
    }
}

/* note_reply - keep the diagnostic of the item's first recipient that was not delivered (the
 * queue tools' last remote reply); an item delivered in full keeps the earlier one. */
static void note_reply(qent *e, const deliv_item *item)
{
    for (size_t i = 0; i < item->n; i++) {
        const deliv_result *r = &item->results[i];
        if (r->result == SL_OK || !r->diag) continue;
        free(e->last_reply);
        e->last_reply = xstrdup(r->diag);
        e->reply_at = now_unix();
        return;
    }
}

/* item_ran - the program filled every result: apply them (on the loop). */
static void item_ran(void *arg, deliv_item *item)
{
    job *j = arg;
    note_reply(j->cur, item);
    if (j->sd) sched_shape_result(j->s, j->sd, item); /* a reply that says "slow down" */
    outcome_apply(j->s->ctx, j->dj.ch, &j->conf->opt, item, item_applied, j);
}

/* ---- message content read back from the queue file ---- */

typedef struct {
    job *j;
    char *path;
    size_t len;
    char id[32];
    qmsg loaded; /* the content read back (loaded.content), or nothing with err set */
    int rc;
    char err[256];
} body_load;

/* body_load_run - on a worker: read the content of the message back. */
static void body_load_run(void *arg)
{
    body_load *b = arg;
    memset(&b->loaded, 0, sizeof b->loaded);
    snprintf(b->loaded.id, sizeof b->loaded.id, "%s", b->id);
    b->loaded.data_len = b->len;
    b->loaded.body_on_disk = true;
    b->rc = qfile_load_data(b->path, &b->loaded, b->err, sizeof b->err);
}

/* body_load_failed - the content cannot be read: every recipient of the item is deferred (4.3.0). */
static void body_load_failed(job *j, const body_load *b)
{
    log_error(j->cur->msg->id, "queue_read_error", "path=%s error=\"%s\"", j->cur->path, b->err);
    char *diag = xasprintf("x-sluice; queue file unreadable: %s", b->err);
    for (size_t i = 0; i < j->item.n; i++) deliv_result_set(&j->item.results[i], SL_TEMP, "4.3.0", diag, NULL);
    free(diag);
    item_ran(j, &j->item);
}

/* body_load_done - the content is back in memory (and counted), or the attempt is deferred. */
static void body_load_done(void *arg)
{
    body_load *b = arg;
    job *j = b->j;
    qmsg *m = j->cur->msg;
    if (b->rc == 0) {
        if (m->body_on_disk) { /* else a job delivering to another host of it read it back first */
            qmsg_set_content(m, b->loaded.content);
            b->loaded.content = NULL;
            m->body_on_disk = false;
            j->s->body_bytes += m->data_len;
        }
        qmsg_free(&b->loaded);
        job_run_item(j);
    } else {
        body_load_failed(j, b);
    }
    free(b->path);
    free(b);
}

/* body_load_start - beyond queue_cache_size: read the content back on a worker before delivering. */
static void body_load_start(job *j)
{
    body_load *b = xcalloc(1, sizeof *b);
    b->j = j;
    b->path = xstrdup(j->cur->path);
    b->len = j->cur->msg->data_len;
    snprintf(b->id, sizeof b->id, "%s", j->cur->msg->id);
    workq_submit(j->s->ctx->wq, body_load_run, body_load_done, b);
}

/* ---- jobs ---- */

/* job_run_item - hand the job's current item to its program (the return program for a returned message). */
static void job_run_item(job *j)
{
    if (j->cur->msg->body_on_disk) {
        body_load_start(j);
        return;
    }
    const deliv_program *p = j->prog;
    if (j->cur->return_now) {
        j->cur->return_now = false;
        p = deliv_program_for(j->s->progs, j->dj.ch, true);
    }
    p->start(&j->dj, &j->item, item_ran, j);
}

/* job_reusable - the job's program can take another item to the same host now. */
static bool job_reusable(const job *j)
{
    if (j->sd && !sched_shape_job_ok(j->sd, j->sent, sched_now_ms())) return false; /* suspended, per_connection */
    return j->prog->reusable && j->prog->reusable(&j->dj);
}

/* job_rate_ok - shaping: the rate of the job's destination lets it start another message now. */
static bool job_rate_ok(const job *j)
{
    return !j->sd || sched_shape_check(j->sd, false, sched_now_ms()) == SHAPE_GO;
}

/* pool_of - the pool a channel runs in under the current configuration, and its job_limit. */
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
        if (ch && pool_of(s, ch, &lim) == p) sched_kick(cq);
    }
}

/* job_end - close the job's program state, give its slots back and let waiting work start. */
static void job_end(job *j)
{
    chanq *cq = j->cq;
    sched *s = j->s;
    poolq *p = j->pq;
    sdest *sd = j->sd;
    if (j->prog->job_close) j->prog->job_close(&j->dj);
    if (j->idle_timer) event_free(j->idle_timer);
    ctx_conf_put(s->ctx, j->conf);
    free(j->host);
    free(j);
    cq->active--;
    p->active--;
    s->busy--;
    if (sd) sched_shape_conn(sd, -1); /* its waiting messages may go */
    sched_kick(cq);
    kick_pool(s, p);
}

/* job_unpark - take a parked job off its channel's idle list. */
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

/* idle_expired - nothing came for a parked job's host in time: end it. */
static void idle_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job *j = arg;
    job_unpark(j);
    job_end(j);
}

/* job_park - keep an idle connection a little while: mail for the same host often follows. */
static void job_park(job *j)
{
    if (!j->idle_timer) j->idle_timer = evtimer_new(j->s->ctx->base, idle_expired, j);
    j->idle = true;
    j->idle_next = j->cq->idle;
    j->cq->idle = j;
    struct timeval tv = {SCHED_IDLE_KEEP_SECS, 0};
    evtimer_add(j->idle_timer, &tv);
    if (j->sd) sched_shape_idle(j->sd); /* may hand j a held-back message, or end j (another domain) */
}

/* idle_take - a parked job of cq that can take e now (same host and a live connection), or NULL. */
static job *idle_take(chanq *cq, qent *e, int64_t now)
{
    for (job *j = cq->idle; j; j = j->idle_next) {
        if (!job_reusable(j) || !job_rate_ok(j)) continue;
        sched_heap_remove(e);
        if (item_select(j, e, now, j->host)) {
            job_unpark(j);
            return j;
        }
        sched_heap_push(e);
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

/* job_take_next - a due message for the job's host among the first heap positions; false if none. */
static bool job_take_next(job *j, int64_t now)
{
    chanq *cq = j->cq;
    if (!job_rate_ok(j)) return false; /* the rate's next slot is later: park */
    size_t lim = cq->heap.n < SCHED_NEXT_LOOKAHEAD ? cq->heap.n : SCHED_NEXT_LOOKAHEAD;
    for (size_t i = 0; i < lim; i++) {
        qent *e = qent_of(dueheap_at(&cq->heap, i));
        if (e->hn.due > now) continue;
        sched_heap_remove(e);
        if (item_select(j, e, now, j->host)) return true;
        sched_heap_push(e);
    }
    return false;
}

/* job_next - after an item: take the next due message for the same host, park, or end the job. */
static void job_next(job *j)
{
    if (j->sd && sched_shape_on(j->cq)) { /* the MX lookup may have put its domain into a provider */
        sdest *d = sched_shape_dest(j->s, j->host), *old = j->sd;
        if (d != old) {
            sched_shape_conn(d, 1);
            j->sd = d;
            sched_shape_conn(old, -1);
        }
    }
    if (!j->s->running || !job_reusable(j)) {
        job_end(j);
        return;
    }
    int64_t now = now_unix();
    if (!job_take_next(j, now)) {
        job_park(j);
        return;
    }
    qent *e = j->cur;
    sched *s = j->s;
    e->pins++;
    job_run_item(j); /* may end j */
    if (s->running && !e->cq->kicking) kick_spread(e->cq, e, now);
    e->pins--;
    qent_release(e);
}

/* job_start - a new job for e; t0 is when kick began looking at e: the decision's cost is counted
 * up to the job being ready, before its first I/O (connect, or reading the content back). */
static bool job_start(chanq *cq, const sl_channel *ch, poolq *p, qent *e, int64_t now, uint64_t t0)
{
    sched *s = cq->s;
    job *j = xcalloc(1, sizeof *j);
    j->s = s;
    j->cq = cq;
    j->pq = p;
    j->conf = ctx_conf_get(s->ctx);
    j->dj.ctx = s->ctx;
    j->dj.conf = j->conf;
    j->dj.ch = conf_channel_by_name(j->conf, ch->name);
    j->prog = deliv_program_for(s->progs, j->dj.ch, false);
    cq->active++;
    p->active++;
    s->busy++;
    if (!item_select(j, e, now, NULL)) { /* nothing due after all */
        qent_release(e);
        job_end(j);
        return false;
    }
    j->host = xstrdup(j->item.host);
    j->dj.host = j->host;
    log_debug(e->msg->id, "job_start", "channel=%s host=%s pool=%s channel_jobs=%d pool_jobs=%d", ch->name, j->host,
              p->name, cq->active, p->active);
    s->decisions++;
    s->decide_ns += now_mono_ns() - t0;
    job_run_item(j);
    return true;
}

/* ---- kick: starting jobs within the limits ---- */

/* timer_fired - the channel's next waiting message is due. */
static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sched_kick(arg);
}

typedef enum { ROOM_YES, ROOM_FREED, ROOM_NONE } kick_room;

/* room_for_job - whether cq may start a job now: when the channel's or the pool's limit is
 * reached and reclaim is set, a parked job (of the channel, else of the pool) gives its slot up:
 * ROOM_FREED. */
static kick_room room_for_job(chanq *cq, poolq *p, int limit, unsigned plimit, bool reclaim)
{
    if (!reclaim) return cq->active < limit && p->active < (int)plimit ? ROOM_YES : ROOM_NONE;
    if (cq->active >= limit) {
        job *v = cq->idle;
        if (!v) return ROOM_NONE;
        job_unpark(v);
        job_end(v);
        return ROOM_FREED;
    }
    if (p->active >= (int)plimit) return pool_reclaim_idle(cq->s, p) ? ROOM_FREED : ROOM_NONE;
    return ROOM_YES;
}

/* kick_due - cq's earliest message when it may run now (in a hold channel: only a returned one). */
static qent *kick_due(const chanq *cq, bool hold, int64_t now)
{
    qent *e = chanq_top(cq);
    if (!e || e->hn.due > now || (hold && !e->return_now)) return NULL;
    return e;
}

/* kick_arm - wake the channel when its earliest waiting message is due. */
static void kick_arm(chanq *cq, bool hold, int64_t now)
{
    qent *e = chanq_top(cq);
    if (!e || e->hn.due <= now || hold) return;
    struct timeval tv = {(time_t)(e->hn.due - now), 0};
    evtimer_add(cq->timer, &tv);
}

/* shape_parked - a parked job of cq holding a connection to d (to host first), or NULL. */
static job *shape_parked(chanq *cq, sdest *d, const char *host)
{
    job *other = NULL;
    for (job *v = cq->idle; v; v = v->idle_next) {
        if (v->sd != d) continue;
        if (str_ieq(v->host, host) && job_reusable(v)) return v;
        if (!other) other = v;
    }
    return other;
}

/* shape_gate - traffic shaping before e (the channel's earliest due message, in the heap) goes to a
 * job: true when a destination of its due recipients lets a message start now (a new connection,
 * or a parked one to the same host; a parked connection to another host of a full destination is
 * closed for it). Otherwise e leaves the heap for the wait list of the first destination that
 * holds it back, its recipients untouched, and false. */
static bool shape_gate(chanq *cq, qent *e, int64_t now)
{
    sched *s = cq->s;
    int64_t ms = sched_now_ms();
    sdest *first = NULL;
    const char *last = NULL;
    for (size_t i = 0; i < e->msg->n_rcpts; i++) {
        const char *host = NULL;
        if (!item_take(e, &e->msg->rcpts[i], now, &host, false)) continue;
        if (last && str_ieq(last, host)) continue;
        last = host;
        sdest *d = sched_shape_dest(s, host);
        int v = sched_shape_check(d, true, ms);
        if (v == SHAPE_WAIT_CONN) {
            job *p = shape_parked(cq, d, host);
            if (p && str_ieq(p->host, host) && job_reusable(p)) return true; /* idle_take gives it to p */
            if (p) { /* a parked connection to another domain of the destination makes room */
                job_unpark(p);
                job_end(p);
                v = sched_shape_check(d, true, ms);
            }
        }
        if (v == SHAPE_GO) return true;
        if (!first) first = d;
    }
    if (!first) return true; /* nothing due after all: the usual path copes */
    sched_heap_remove(e);
    sched_shape_wait(first, e, ms);
    return false;
}

/* kick_spread - e is being delivered to one host: its recipients at other destination hosts go
 * out at the same time, in further jobs while the channel and the pool have room (parked jobs are
 * not ended for them). The caller holds e. */
static void kick_spread(chanq *cq, qent *e, int64_t now)
{
    if (e->msg->n_rcpts < 2 || !qent_more_due(e, now)) return; /* the common case, at no cost */
    const sl_channel *ch = conf_channel_by_name(cq->s->ctx->conf, cq->name);
    bool shaped = sched_shape_on(cq);
    while (ch && ch->type != CHAN_HOLD && qent_more_due(e, now)) {
        if (shaped && !shape_pick(e, now)) return; /* the other destinations hold back */
        unsigned plimit;
        poolq *p = pool_of(cq->s, ch, &plimit);
        int limit = ch->maxjobs ? (int)ch->maxjobs : 1;
        if ((int)plimit < limit) limit = (int)plimit;
        if (room_for_job(cq, p, limit, plimit, false) != ROOM_YES) return;
        if (!job_start(cq, ch, p, e, now, now_mono_ns())) return;
        ch = conf_channel_by_name(cq->s->ctx->conf, cq->name);
    }
}

/* kick_run - the loop of sched_kick: hand due messages to parked or new jobs while there is room. */
static void kick_run(chanq *cq, const sl_channel *ch, bool hold, int64_t now)
{
    unsigned plimit;
    poolq *p = pool_of(cq->s, ch, &plimit);
    int limit = ch->maxjobs ? (int)ch->maxjobs : 1;
    if ((int)plimit < limit) limit = (int)plimit;
    qent *e;
    bool shaped = !hold && sched_shape_on(cq);
    while ((e = kick_due(cq, hold, now))) {
        uint64_t t0 = now_mono_ns();
        if (shaped && !e->return_now && !shape_gate(cq, e, now)) continue; /* held back: on a wait list */
        job *ij = cq->idle ? idle_take(cq, e, now) : NULL;
        if (ij) { /* a parked connection to the same host takes it */
            e->pins++;
            job_run_item(ij);
            kick_spread(cq, e, now);
            e->pins--;
            qent_release(e);
            continue;
        }
        kick_room room = room_for_job(cq, p, limit, plimit, true);
        if (room == ROOM_NONE) break;
        if (room == ROOM_FREED) continue;
        sched_heap_remove(e);
        e->pins++; /* pinned across the starts, so no failed start lets it go */
        bool started = job_start(cq, ch, p, e, now, t0);
        if (started) kick_spread(cq, e, now);
        e->pins--;
        qent_release(e);
        if (!started && shaped) break; /* the gate and the start disagreed: the next kick tries again */
        ch = conf_channel_by_name(cq->s->ctx->conf, cq->name);
        if (!ch) break;
    }
}

/* sched_kick - start jobs for due messages of a channel within min(maxjobs, pool job_limit) and the
 * pool's shared limit; arm the timer for the next due message. O(log n) per message started. */
void sched_kick(chanq *cq)
{
    sched *s = cq->s;
    if (!s->running || cq->kicking) return;
    const sl_channel *ch = conf_channel_by_name(s->ctx->conf, cq->name);
    if (!ch) return;
    /* a hold channel keeps its messages until released; only an administrator's return runs */
    bool hold = ch->type == CHAN_HOLD;
    if (hold && !(cq->heap.n && chanq_top(cq)->return_now)) return;
    cq->kicking = true;
    int64_t now = now_unix();
    kick_run(cq, ch, hold, now);
    kick_arm(cq, hold, now);
    cq->kicking = false;
}

/* ---- the scheduler ---- */

/* chanq_get - the queue of channel name, created on first use. */
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

/* later_drain - the end of the loop turn: add the messages sched_add_later kept. */
static void later_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sched *s = arg;
    sched_later *v = s->later;
    size_t n = s->n_later;
    s->later = NULL;
    s->n_later = s->cap_later = 0;
    for (size_t i = 0; i < n; i++) sched_add(s, v[i].msg, v[i].path);
    free(v);
}

sched *sched_new(sl_ctx *ctx, const deliv_programs *progs)
{
    sched *s = xcalloc(1, sizeof *s);
    s->ctx = ctx;
    s->progs = progs;
    s->ev_later = event_new(ctx->base, -1, 0, later_drain, s);
    qadmin_replies_load(ctx->conf->opt.queue_dir, &s->replies); /* the replies known at the last stop */
    sched_metrics_register(s);
    return s;
}

qent *sched_qent_add(sched *s, qmsg *msg, char *path)
{
    qent *e = xcalloc(1, sizeof *e);
    e->msg = msg;
    e->path = path;
    e->cq = chanq_get(s, msg->channel);
    e->last_reply = qadmin_replies_take(&s->replies, msg->channel, msg->id, &e->reply_at);
    e->next = s->all;
    if (s->all) s->all->prev = e;
    s->all = e;
    s->count++;
    body_keep(s, msg);
    qent_requeue(e);
    sched_kick(e->cq);
    return e;
}

void sched_add(sched *s, qmsg *msg, char *path)
{
    sched_qent_add(s, msg, path);
}

void sched_add_later(sched *s, qmsg *msg, char *path)
{
    if (s->n_later == s->cap_later) {
        s->cap_later = s->cap_later ? s->cap_later * 2 : 16;
        s->later = xrealloc(s->later, s->cap_later * sizeof *s->later);
    }
    s->later[s->n_later++] = (sched_later){msg, path};
    event_active(s->ev_later, EV_TIMEOUT, 1);
}

void sched_start(sched *s)
{
    s->running = true;
    for (size_t i = 0; i < s->n_chans; i++) sched_kick(s->chans[i]);
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

void sched_reconf(sched *s)
{
    sched_shape_reconf(s);
    if (!s->running) return;
    for (size_t i = 0; i < s->n_chans; i++) sched_kick(s->chans[i]);
}

int sched_idle(const sched *s)
{
    return s->busy == 0;
}

size_t sched_count(const sched *s)
{
    return s->count;
}

/* reply_still_held - a saved reply whose message waits in QUEUE/.held or QUEUE/.return. */
static bool reply_still_held(void *arg, const char *channel, const char *id)
{
    sched *s = arg;
    const char *qdir = s->ctx->conf->opt.queue_dir;
    char *held = qadmin_held_path(qdir, channel, id), *ret = qadmin_return_path(qdir, channel, id);
    bool keep = access(held, F_OK) == 0 || access(ret, F_OK) == 0;
    free(held);
    free(ret);
    return keep;
}

const char *sched_reply_of(const sched *s, const char *channel, const char *id, int64_t *at)
{
    return qadmin_replies_find(&s->replies, channel, id, at);
}

void sched_recovery(sched *s, bool running, size_t found, double secs)
{
    s->recovering = running;
    s->recovered = found;
    s->recover_secs = secs;
    if (!running) qadmin_replies_keep(&s->replies, reply_still_held, s); /* recovered messages took theirs */
}

/* reply_line - one saved reply into the text of QUEUE/replies. */
static void reply_line(void *arg, const char *channel, const char *id, int64_t at, const char *reply)
{
    qadmin_replies_line(arg, channel, id, at, reply);
}

void sched_replies_save(const sched *s)
{
    strbuf text = {0};
    for (const qent *e = s->all; e; e = e->next)
        if (e->last_reply) qadmin_replies_line(&text, e->msg->channel, e->msg->id, e->reply_at, e->last_reply);
    qadmin_replies_each(&s->replies, reply_line, &text);
    if (qadmin_replies_save(s->ctx->conf->opt.queue_dir, &text) < 0)
        log_warn(NULL, "replies_save_failed", "error=\"%s\"", strerror(errno));
    sb_free(&text);
}

/* chanq_free - free a channel's waiting messages, heap and timer. */
static void chanq_free(chanq *cq)
{
    for (size_t k = 0; k < cq->heap.n; k++) sched_qent_free(qent_of(dueheap_at(&cq->heap, k)));
    dueheap_free(&cq->heap);
    event_free(cq->timer);
    free(cq->name);
    free(cq);
}

void sched_free(sched *s)
{
    if (!s) return;
    metric_gauge_unregister(s);
    for (qent *e = s->all, *next; e; e = next) { /* held back by traffic shaping: in no heap */
        next = e->next;
        if (!e->wait) continue;
        sched_shape_unwait(e);
        sched_qent_free(e);
    }
    sched_shape_free(s);
    for (size_t i = 0; i < s->n_chans; i++) chanq_free(s->chans[i]);
    free(s->chans);
    for (size_t i = 0; i < s->n_pools; i++) {
        free(s->pools[i]->name);
        free(s->pools[i]);
    }
    free(s->pools);
    for (size_t i = 0; i < s->n_later; i++) {
        qmsg_free(s->later[i].msg);
        free(s->later[i].msg);
        free(s->later[i].path);
    }
    free(s->later);
    event_free(s->ev_later);
    qadmin_replies_free(&s->replies);
    free(s);
}

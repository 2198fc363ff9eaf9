/*
 * sched_admin.c - the scheduler's administration (see sched.h): listings, the typed actions
 * hold, release, delete, return and retry, the statistics, and the start-up returns of files
 * left in QUEUE/.return. The text of `sluice queue` is cli/control_queue.c's business.
 *
 * An action request lives until its last file operation is done: it counts the operations in
 * flight (plus one while it is being issued) and reports the end with a NULL act. File moves
 * and removals run on the worker queue; the qents they concern leave the scheduler at once.
 */
#include "jobs/sched_int.h"
#include "conf/conf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/workq.h"
#include "queue/qadmin.h"
#include "queue/qwalk.h"
#include "queue/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- listings ---- */

/* entry_report - one qent to a listing callback. */
static void entry_report(const qent *e, sched_entry_cb cb, void *arg)
{
    sched_entry se = {e->msg, e->path, sched_qent_state(e), e->last_reply, e->reply_at};
    cb(arg, &se);
}

void sched_list(const sched *s, const char *channel, sched_entry_cb cb, void *arg)
{
    for (const qent *e = s->all; e; e = e->next)
        if (!channel || str_ieq(e->msg->channel, channel)) entry_report(e, cb, arg);
}

size_t sched_show(const sched *s, const char *id, sched_entry_cb cb, void *arg)
{
    size_t found = 0;
    for (const qent *e = s->all; e; e = e->next) {
        if (strcmp(e->msg->id, id) != 0) continue;
        entry_report(e, cb, arg);
        found++;
    }
    return found;
}

void sched_summary(const sched *s, qadmin_summary *sum)
{
    for (const qent *e = s->all; e; e = e->next) qadmin_summary_add(sum, e->msg);
}

void sched_stats(const sched *s, sched_counters *out)
{
    memset(out, 0, sizeof *out);
    out->messages = s->count;
    out->recovering = s->recovering;
    out->recovered = s->recovered;
    out->recover_secs = s->recover_secs;
    out->body_bytes = s->body_bytes;
    out->cache_size = s->ctx->conf->opt.queue_cache_size;
    out->heap_max = s->heap_max;
    out->heap_ops = s->heap_ops;
    out->heap_ns = s->heap_ns;
    out->decisions = s->decisions;
    out->decide_ns = s->decide_ns;
}

/* ---- metrics ---- */

/* metrics_tally - count the messages and the oldest arrival of every channel into its scratch fields. */
static void metrics_tally(sched *s)
{
    for (size_t i = 0; i < s->n_chans; i++) {
        s->chans[i]->m_count = 0;
        s->chans[i]->m_oldest = 0;
    }
    for (const qent *e = s->all; e; e = e->next) {
        chanq *cq = e->cq;
        if (!cq->m_count++ || e->msg->arrival < cq->m_oldest) cq->m_oldest = e->msg->arrival;
    }
}

/* metrics_depth - gauge: messages per channel. The walk over the queue (in memory, no file:
 * O(messages) per scrape) is shared with metrics_oldest, rendered next in the same scrape. */
static void metrics_depth(void *arg, metric_emit *em)
{
    sched *s = arg;
    metrics_tally(s);
    s->m_tallied = true;
    for (size_t i = 0; i < s->n_chans; i++)
        metric_emit_value(em, (const char *const[]){s->chans[i]->name}, (double)s->chans[i]->m_count);
}

/* metrics_oldest - gauge: the age of each channel's oldest message (0 when empty). */
static void metrics_oldest(void *arg, metric_emit *em)
{
    sched *s = arg;
    if (!s->m_tallied) metrics_tally(s);
    s->m_tallied = false;
    int64_t now = now_unix();
    for (size_t i = 0; i < s->n_chans; i++) {
        const chanq *cq = s->chans[i];
        double age = cq->m_count && now > cq->m_oldest ? (double)(now - cq->m_oldest) : 0;
        metric_emit_value(em, (const char *const[]){cq->name}, age);
    }
}

void sched_metrics_register(sched *s)
{
    metric_gauge_register(&METRIC_QUEUE_MESSAGES, metrics_depth, s);
    metric_gauge_register(&METRIC_QUEUE_OLDEST, metrics_oldest, s);
}

/* ---- action requests ---- */

typedef struct {
    sched *s;
    char action[16];
    int pending; /* file operations in flight, plus one while issuing */
    sched_act_cb cb;
    void *arg;
} admin_req;

/* admin_begin - a request for action; ended by admin_end. */
static admin_req *admin_begin(sched *s, const char *action, sched_act_cb cb, void *arg)
{
    admin_req *r = xcalloc(1, sizeof *r);
    r->s = s;
    snprintf(r->action, sizeof r->action, "%s", action);
    r->pending = 1;
    r->cb = cb;
    r->arg = arg;
    return r;
}

/* admin_end - one part of the request is over; after the last, the end is reported and r freed. */
static void admin_end(admin_req *r)
{
    if (--r->pending > 0) return;
    r->cb(r->arg, NULL);
    free(r);
}

/* admin_report - tell the caller what happened to one message. */
static void admin_report(admin_req *r, const char *id, const char *channel, sched_act_status st, const char *state,
                         int err)
{
    sched_act act = {r->action, id, channel, st, state, err};
    r->cb(r->arg, &act);
}

/* admin_done - a message was acted on: logged and reported. */
static void admin_done(admin_req *r, const char *id, const char *channel)
{
    admin_report(r, id, channel, SCHED_ACT_DONE, NULL, 0);
    log_info(id, "admin", "action=%s channel=%s", r->action, channel);
}

/* admin_take - take a waiting qent out of its heap; false (reported busy) when a job has it. */
static bool admin_take(admin_req *r, qent *e)
{
    sched_qent_unshape(e);
    if (!e->hn.queued) {
        admin_report(r, e->msg->id, e->msg->channel, SCHED_ACT_BUSY, sched_qent_state(e), 0);
        return false;
    }
    sched_heap_remove(e);
    return true;
}

/* ---- file operations (worker queue) ---- */

typedef struct {
    admin_req *req;
    char *from, *to; /* rename (to == NULL: unlink) */
    char id[32], channel[64];
    int err;
    bool load;    /* release: read the moved file back for the scheduler */
    qmsg *loaded; /* ... the decoded file */
} admin_op;

/* mkdir_parents - create the directory of path and its parent (the channel and subdir levels). */
static char *mkdir_parents(const char *path)
{
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    char *parent = xstrdup(dir);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = '\0';
    mkdir(parent, 0700);
    mkdir(dir, 0700);
    free(parent);
    return dir;
}

/* admin_move - rename op->from to op->to durably (the target directory fsync'd). */
static void admin_move(admin_op *op)
{
    char *dir = mkdir_parents(op->to);
    if (rename(op->from, op->to) < 0) op->err = errno;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) < 0 && !op->err) op->err = errno;
        close(fd);
    }
    free(dir);
}

/* admin_load - decode the released file for the scheduler. */
static void admin_load(admin_op *op)
{
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

/* admin_file_run - on a worker: move or remove the file (and read a released one back). */
static void admin_file_run(void *arg)
{
    admin_op *op = arg;
    op->err = 0;
    if (op->to) admin_move(op);
    else if (unlink(op->from) < 0) op->err = errno;
    if (!op->err && op->load) admin_load(op);
}

/* admin_file_done - on the loop: report, and schedule a released message. */
static void admin_file_done(void *arg)
{
    admin_op *op = arg;
    admin_req *r = op->req;
    if (op->err) {
        admin_report(r, op->id, op->channel, SCHED_ACT_FAILED, NULL, op->err);
    } else {
        admin_done(r, op->id, op->channel);
        if (op->loaded) sched_add(r->s, op->loaded, xstrdup(op->to));
    }
    free(op->from);
    free(op->to);
    free(op);
    admin_end(r);
}

/* admin_file_op - move from to `to` (NULL: remove from) on a worker; load: schedule the result. */
static void admin_file_op(admin_req *r, const char *id, const char *channel, const char *from, char *to, bool load)
{
    admin_op *op = xcalloc(1, sizeof *op);
    op->req = r;
    op->from = xstrdup(from);
    op->to = to;
    op->load = load;
    snprintf(op->id, sizeof op->id, "%s", id);
    snprintf(op->channel, sizeof op->channel, "%s", channel);
    if (load) store_claim(r->s->ctx->store, op->id); /* a background recovery scan must not add it too */
    r->pending++;
    workq_submit(r->s->ctx->wq, admin_file_run, admin_file_done, op);
}

/* ---- actions ---- */

/* admin_drop - hold (to QUEUE/.held) or delete a waiting qent: it leaves the scheduler now. */
static void admin_drop(admin_req *r, qent *e, bool hold)
{
    if (!admin_take(r, e)) return;
    const char *qdir = r->s->ctx->conf->opt.queue_dir;
    char *to = hold ? qadmin_held_path(qdir, e->msg->channel, e->msg->id) : NULL;
    if (hold && e->last_reply) /* kept while the message is aside, for the listings and its release */
        qadmin_replies_put(&r->s->replies, e->msg->channel, e->msg->id, e->reply_at, e->last_reply);
    admin_file_op(r, e->msg->id, e->msg->channel, e->path, to, false);
    r->s->count--;
    sched_qent_free(e);
}

/* admin_return_now - put a waiting qent ahead of everything, to run the return program (also in a hold channel). */
static void admin_return_now(qent *e)
{
    e->return_now = true;
    e->hn.due = -1;
    sched_heap_push(e);
}

/* admin_retry_now - make e's pending recipients due now, durably when it is waiting. */
static void admin_retry_now(sched *s, qent *e)
{
    for (size_t i = 0; i < e->msg->n_rcpts; i++)
        if (e->msg->rcpts[i].status == QR_PENDING) e->msg->rcpts[i].next_attempt = 0;
    sched_qent_unshape(e);
    if (!e->hn.queued) return; /* a job has it: its outcome writes the states */
    sched_heap_remove(e);
    e->hn.due = 0;
    sched_heap_push(e);
    store_update_states(s->ctx->store, e->path, e->msg, NULL, NULL);
}

/* etrn_rcpt_matches - whether recipient r is for node: "domain" (its address's domain), "@domain"
 * (that domain or a subdomain of it). */
static bool etrn_rcpt_matches(const qrcpt *r, const char *node)
{
    const char *at = strrchr(r->addr, '@');
    if (!at) return false;
    const char *dom = at + 1;
    if (node[0] != '@') return str_ieq(dom, node);
    const char *want = node + 1;
    size_t dl = strlen(dom), wl = strlen(want);
    return str_ieq(dom, want) || (dl > wl && dom[dl - wl - 1] == '.' && str_ieq(dom + dl - wl, want));
}

/* etrn_qent - make e's pending recipients for node due now (every one for "#channel"); whether any was. */
static bool etrn_qent(sched *s, qent *e, const char *node)
{
    bool any = false;
    for (size_t i = 0; i < e->msg->n_rcpts; i++) {
        qrcpt *r = &e->msg->rcpts[i];
        if (r->status != QR_PENDING) continue;
        if (node[0] != '#' && !etrn_rcpt_matches(r, node)) continue;
        r->next_attempt = 0;
        any = true;
    }
    if (any) sched_qent_unshape(e);
    if (!any || !e->hn.queued) return any; /* a job has it: it is being delivered now */
    sched_heap_remove(e);
    e->hn.due = 0;
    sched_heap_push(e);
    store_update_states(s->ctx->store, e->path, e->msg, NULL, NULL);
    return true;
}

int sched_etrn(sched *s, const char *node)
{
    if (!s->running) return -1;
    int n = 0;
    for (qent *e = s->all; e; e = e->next) {
        if (e->removing) continue;
        if (node[0] == '#' && !str_ieq(e->msg->channel, node + 1)) continue;
        const sl_channel *ch = conf_channel_by_name(s->ctx->conf, e->msg->channel);
        if (ch && ch->type == CHAN_HOLD) continue; /* held until an administrator releases it */
        if (etrn_qent(s, e, node)) n++;
    }
    for (size_t i = 0; i < s->n_chans; i++) sched_kick(s->chans[i]);
    return n;
}

/* admin_act_one - the action of r on one matching qent. */
static void admin_act_one(admin_req *r, qent *e)
{
    if (!strcmp(r->action, "hold") || !strcmp(r->action, "delete")) {
        admin_drop(r, e, !strcmp(r->action, "hold"));
    } else if (!strcmp(r->action, "return")) {
        if (!admin_take(r, e)) return;
        admin_return_now(e);
        admin_done(r, e->msg->id, e->msg->channel);
        sched_kick(e->cq);
    } else { /* retry */
        admin_retry_now(r->s, e);
        admin_done(r, e->msg->id, e->msg->channel);
        sched_kick(e->cq);
    }
}

/* admin_by_id - act on every qent with queue id id (for retry also every qent of channel id). */
static void admin_by_id(sched *s, const char *action, const char *id, sched_act_cb cb, void *arg)
{
    admin_req *r = admin_begin(s, action, cb, arg);
    bool by_channel = !strcmp(action, "retry");
    qent *e = s->all;
    while (e) {
        qent *next = e->next; /* e may be freed */
        if (!strcmp(e->msg->id, id) || (by_channel && str_ieq(e->msg->channel, id))) admin_act_one(r, e);
        e = next;
    }
    admin_end(r);
}

void sched_act_select(sched *s, const char *action, sched_match_fn match, void *marg, sched_act_cb cb, void *arg)
{
    admin_req *r = admin_begin(s, action, cb, arg);
    qent *e = s->all;
    while (e) {
        qent *next = e->next; /* e may be freed */
        if (match(marg, e->msg, e->last_reply)) admin_act_one(r, e);
        e = next;
    }
    admin_end(r);
}

void sched_hold(sched *s, const char *id, sched_act_cb cb, void *arg)
{
    admin_by_id(s, "hold", id, cb, arg);
}

void sched_delete(sched *s, const char *id, sched_act_cb cb, void *arg)
{
    admin_by_id(s, "delete", id, cb, arg);
}

void sched_return(sched *s, const char *id, sched_act_cb cb, void *arg)
{
    admin_by_id(s, "return", id, cb, arg);
}

void sched_retry(sched *s, const char *id, sched_act_cb cb, void *arg)
{
    admin_by_id(s, "retry", id, cb, arg);
}

/* queue_path_of - where channel's file of id lives in the queue (caller frees). */
static char *queue_path_of(const sched *s, const char *channel, const char *id)
{
    const sl_channel *ch = conf_channel_by_name(s->ctx->conf, channel);
    return store_queue_path(s->ctx->conf->opt.queue_dir, channel, ch && ch->subdirs ? ch->subdirs : 1, id);
}

/* held_release_one - move the held file name (<channel>.<id> in held) back into the queue. */
static void held_release_one(admin_req *r, const char *held, const char *name, const char *dot, const char *id)
{
    char *chan = xstrndup(name, (size_t)(dot - name));
    char *from = xasprintf("%s/%s", held, name);
    admin_file_op(r, id, chan, from, queue_path_of(r->s, chan, id), true);
    free(from);
    free(chan);
}

void sched_release_select(sched *s, sched_match_fn match, void *marg, sched_act_cb cb, void *arg)
{
    admin_req *r = admin_begin(s, "release", cb, arg);
    qadmin_files held = {0};
    qadmin_files_load(s->ctx->conf->opt.queue_dir, ".held", "held", &held); /* on the loop: held files are few */
    for (size_t i = 0; i < held.n; i++) {
        const qmsg *m = held.ents[i].msg;
        if (!match(marg, m, NULL)) continue;
        admin_file_op(r, m->id, m->channel, held.paths[i], queue_path_of(s, m->channel, m->id), true);
    }
    qadmin_files_free(&held);
    admin_end(r);
}

void sched_release(sched *s, const char *id, sched_act_cb cb, void *arg)
{
    admin_req *r = admin_begin(s, "release", cb, arg);
    char *held = xasprintf("%s/.held", s->ctx->conf->opt.queue_dir);
    strvec names = {0};
    qwalk_list(held, &names);
    for (size_t i = 0; i < names.n; i++) {
        const char *dot = strrchr(names.v[i], '.');
        if (!dot || strcmp(dot + 1, id) != 0) continue;
        held_release_one(r, held, names.v[i], dot, id);
    }
    sv_free(&names);
    free(held);
    admin_end(r);
}

/* ---- start-up returns ---- */

/* return_read - decode the file at from into a new qmsg; NULL with err set. */
static qmsg *return_read(const char *from, char *err, size_t errlen)
{
    strbuf sb = {0};
    file_read(from, &sb);
    qmsg *m = xcalloc(1, sizeof *m);
    int rc = qfile_decode(sb.data ? sb.data : "", sb.len, m, err, errlen);
    sb_free(&sb);
    if (rc == 0) return m;
    qmsg_free(m);
    free(m);
    return NULL;
}

/* return_load_one - move QUEUE/.return/<channel>.<id> back into the queue and return it at once. */
static void return_load_one(sched *s, const char *rdir, const char *name, const char *dot)
{
    char *from = xasprintf("%s/%s", rdir, name);
    char *chan = xstrndup(name, (size_t)(dot - name));
    char *to = queue_path_of(s, chan, dot + 1);
    free(mkdir_parents(to));
    char err[256] = "unreadable";
    store_claim(s->ctx->store, dot + 1);
    qmsg *m = return_read(from, err, sizeof err);
    if (m && rename(from, to) == 0) {
        qent *e = sched_qent_add(s, m, xstrdup(to));
        sched_qent_unshape(e);
        if (e->hn.queued) sched_heap_remove(e);
        admin_return_now(e);
        log_info(m->id, "admin", "action=return channel=%s when=start-up", chan);
    } else {
        log_error(name, "return_failed", "path=%s error=\"%s\"", from, err);
        if (m) qmsg_free(m);
        free(m);
    }
    free(to);
    free(chan);
    free(from);
}

void sched_load_returns(sched *s)
{
    char *rdir = xasprintf("%s/.return", s->ctx->conf->opt.queue_dir);
    strvec names = {0};
    qwalk_list(rdir, &names);
    for (size_t i = 0; i < names.n; i++) {
        const char *dot = strrchr(names.v[i], '.');
        if (dot) return_load_one(s, rdir, names.v[i], dot);
    }
    sv_free(&names);
    free(rdir);
}

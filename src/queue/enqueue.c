/*
 * enqueue.c - one queue file per destination channel (see enqueue.h).
 * The qmsg for each file is built before the commit and handed to the sink after it, so the
 * scheduler's view is exactly what is on disk.
 */
#include "queue/enqueue.h"
#include "conf/conf.h"
#include "core/log.h"
#include "queue/store.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    sl_ctx *ctx;
    qmsg **msgs;
    size_t n;
    enqueue_cb cb;
    void *arg;
} enq_job;

void enqueue_add_rcpt(enq_msg *m, const char *addr, const char *orig, const char *orcpt, const char *channel,
                      const char *host, unsigned notify)
{
    m->rcpts = xrealloc(m->rcpts, (m->n_rcpts + 1) * sizeof *m->rcpts);
    qrcpt_init(&m->rcpts[m->n_rcpts++], addr, orig, orcpt, channel, host, notify);
}

void enqueue_msg_free(enq_msg *m)
{
    for (size_t i = 0; i < m->n_rcpts; i++) qrcpt_clear(&m->rcpts[i]);
    free(m->rcpts);
    free(m->sender);
    free(m->envid);
    free(m->src_channel);
    free(m->client);
    qbody_unref(m->content);
    memset(m, 0, sizeof *m);
}

/* build_qmsg - the queue message for one channel: the envelope and that channel's recipients. */
static qmsg *build_qmsg(const enq_msg *m, const char *channel)
{
    qmsg *q = xcalloc(1, sizeof *q);
    snprintf(q->id, sizeof q->id, "%s", m->id);
    q->channel = xstrdup(channel);
    q->src_channel = xstrdup(m->src_channel ? m->src_channel : "");
    q->sender = xstrdup(m->sender ? m->sender : "");
    q->envid = xstrdup(m->envid);
    q->ret = m->ret;
    q->body = m->body;
    q->smtputf8 = m->smtputf8;
    q->is_notification = m->is_notification;
    q->is_postmaster_copy = m->is_postmaster_copy;
    q->arrival = m->arrival;
    q->client = xstrdup(m->client ? m->client : "");
    for (size_t i = 0; i < m->n_rcpts; i++) {
        const qrcpt *r = &m->rcpts[i];
        if (strcmp(r->channel, channel) != 0) continue;
        qmsg_add_rcpt(q, r->addr, r->orig, r->orcpt, r->host, r->notify)->folder = xstrdup(r->folder);
    }
    qmsg_set_content(q, qbody_ref(m->content)); /* shared, not copied */
    return q;
}

void enqueue_set_sink(sl_ctx *ctx, enqueue_sink_fn fn, void *arg)
{
    ctx->enqueue_sink = fn;
    ctx->enqueue_sink_arg = arg;
}

/* enqueue_hand_over - give a committed file to the sink, or forget it when nobody listens. */
static void enqueue_hand_over(sl_ctx *ctx, qmsg *msg, char *path)
{
    if (ctx->enqueue_sink) {
        ctx->enqueue_sink(ctx->enqueue_sink_arg, msg, path);
        return;
    }
    qmsg_free(msg);
    free(msg);
    free(path);
}

/* enqueue_committed - the files are durable (or none is): hand them over, then answer. */
static void enqueue_committed(void *arg, sl_result res, const char *err, store_file *files, size_t n)
{
    enq_job *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        if (res == SL_OK) {
            log_info(j->msgs[i]->id, "queued", "channel=%s nrcpt=%zu path=%s", j->msgs[i]->channel,
                     j->msgs[i]->n_rcpts, files[i].path);
            enqueue_hand_over(j->ctx, j->msgs[i], xstrdup(files[i].path));
        } else {
            qmsg_free(j->msgs[i]);
            free(j->msgs[i]);
        }
    }
    (void)n;
    j->cb(j->arg, res, err);
    free(j->msgs);
    free(j);
}

void enqueue_submit(sl_ctx *ctx, enq_msg *m, enqueue_cb cb, void *arg)
{
    strvec chans = {0};
    for (size_t i = 0; i < m->n_rcpts; i++)
        if (!sv_contains_ci(&chans, m->rcpts[i].channel)) sv_push(&chans, m->rcpts[i].channel);
    enq_job *j = xcalloc(1, sizeof *j);
    j->ctx = ctx;
    j->cb = cb;
    j->arg = arg;
    j->n = chans.n;
    j->msgs = xcalloc(chans.n, sizeof *j->msgs);
    store_file *files = xcalloc(chans.n, sizeof *files);
    for (size_t i = 0; i < chans.n; i++) {
        const sl_channel *ch = conf_channel_by_name(ctx->conf, chans.v[i]);
        j->msgs[i] = build_qmsg(m, chans.v[i]);
        files[i].channel = xstrdup(chans.v[i]);
        files[i].subdirs = ch && ch->subdirs ? ch->subdirs : 1;
        snprintf(files[i].id, sizeof files[i].id, "%s", m->id);
        sb_init(&files[i].data);
        files[i].content = qbody_ref(m->content);
        qfile_encode_split(j->msgs[i], &files[i].data, &files[i].tail);
    }
    sv_free(&chans);
    /* a notification waits behind the messages clients are waiting for (a bounce storm must not
       delay their 250) */
    store_commit_bg(ctx->store, files, j->n, !m->is_notification, enqueue_committed, j);
}

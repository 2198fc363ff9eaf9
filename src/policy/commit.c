/*
 * commit.c - the end of data: one queue file per destination channel, durable before the 250
 * (queue/enqueue.c). Recipients whose size limit (from the directory, checked at RCPT only when
 * the client declared SIZE) the message exceeds are not queued: they get a DSN (5.3.4), queued
 * before the 250 like the message, and the others are delivered; when every recipient is over
 * its limit, the message is refused instead. Never a silent truncation.
 */
#include "conf/conf.h"
#include "core/log.h"
#include "dsn/bounce.h"
#include "policy/decide.h"
#include "policy/fleet.h"
#include "queue/enqueue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OVERSIZE_DIAG "smtp; 552 5.3.4 Message size exceeds the recipient's limit"

/* commit_answer - the end of data is answered; the session may be gone on return. */
static void commit_answer(policy_sess *ps, sl_result res, const char *err)
{
    smtp_sess_commit_done(ps->s, res, err);
}

/* oversize_free - the DSN's message, once the DSN is queued (or not). */
static void oversize_free(policy_sess *ps)
{
    qmsg *q = ps->oversize;
    ps->oversize = NULL;
    if (!q) return;
    qmsg_free(q);
    free(q);
}

/* oversize_bounced - the DSN for the oversized recipients is durable (or failed: logged). */
static void oversize_bounced(void *arg, sl_result res, const char *err)
{
    policy_sess *ps = arg;
    (void)res, (void)err; /* bounce.c logged it; the message itself is queued, so the answer is 250 */
    oversize_free(ps);
    commit_answer(ps, SL_OK, NULL);
}

/* oversize_bounce - queue the DSN about the recipients the message was too big for. */
static void oversize_bounce(policy_sess *ps)
{
    qmsg *q = ps->oversize;
    dsn_report *reps = xcalloc(q->n_rcpts, sizeof *reps);
    for (size_t i = 0; i < q->n_rcpts; i++) {
        q->rcpts[i].status = QR_FAILED;
        reps[i] = (dsn_report){&q->rcpts[i], "failed", "5.3.4", OVERSIZE_DIAG, NULL};
        log_info(q->id, "failed", "to=<%s> status=5.3.4 reason=\"over the recipient's size limit\"", q->rcpts[i].addr);
    }
    bounce_submit(ps->p->ctx, q, reps, q->n_rcpts, oversize_bounced, ps);
    free(reps);
}

static void commit_done(void *arg, sl_result res, const char *err)
{
    policy_sess *ps = arg;
    enq_msg *m = ps->pending;
    ps->pending = NULL;
    if (res == SL_OK)
        log_info(m->id, "accepted", "session=%s client=[%s] from=<%s> size=%zu nrcpt=%zu", ps->s->id,
                 ps->s->client_ip, m->sender, m->content->len, m->n_rcpts);
    enqueue_msg_free(m);
    free(m);
    if (res == SL_OK && ps->oversize) return oversize_bounce(ps);
    oversize_free(ps);
    commit_answer(ps, res, err); /* may free the session and ps */
}

/* oversize_msg - the queue message a DSN about s's oversized recipients is built from. */
static qmsg *oversize_msg(const smtp_sess *s, const enq_msg *m)
{
    qmsg *q = xcalloc(1, sizeof *q);
    snprintf(q->id, sizeof q->id, "%s", m->id);
    q->channel = xstrdup(s->src_channel);
    q->sender = xstrdup(m->sender);
    q->envid = xstrdup(m->envid);
    q->ret = m->ret;
    q->body = m->body;
    q->smtputf8 = m->smtputf8;
    q->arrival = m->arrival;
    q->client = xstrdup(m->client);
    qmsg_set_content(q, qbody_ref(m->content));
    return q;
}

/* add_rcpts - the recipients of s into m (one copy per final address); the ones whose limit the
 * message exceeds into *over instead. */
static void add_rcpts(const smtp_sess *s, enq_msg *m, size_t msg_len, qmsg **over)
{
    for (size_t i = 0; i < s->n_rcpts; i++) {
        const qrcpt *r = &s->rcpts[i];
        bool dup = false; /* one copy per final address, as with alias and group overlap */
        for (size_t k = 0; k < i && !dup; k++)
            dup = str_ieq(s->rcpts[k].addr, r->addr) && str_ieq(s->rcpts[k].channel, r->channel);
        if (dup) continue;
        if (r->max_size && msg_len > r->max_size) {
            if (!*over) *over = oversize_msg(s, m);
            qmsg_add_rcpt(*over, r->addr, r->orig, r->orcpt, r->host, r->notify);
        } else {
            enqueue_add_rcpt(m, r->addr, r->orig, r->orcpt, r->channel, r->host, r->notify);
        }
    }
}

/* refuse_oversize - every recipient is over its limit: refuse the message. */
static void refuse_oversize(policy_sess *ps, enq_msg *m)
{
    verdict v = verdict_refuse(VERDICT_RCPT_SIZE, false, NULL);
    fleet_apply_now(ps->s->conf, &v);
    strbuf line = {0};
    verdict_reply(&v, ps->s->conf->opt.hostname, &line);
    enqueue_msg_free(m);
    free(m);
    oversize_free(ps);
    verdict_free(&v);
    smtp_sess_commit_refused(ps->s, line.data); /* may free the session and ps */
    sb_free(&line);
}

void policy_commit(policy_sess *ps, smtp_sess *s)
{
    enq_msg *m = xcalloc(1, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", s->qid);
    m->sender = xstrdup(s->sender);
    m->envid = xstrdup(s->envid);
    m->ret = (uint8_t)s->ret;
    m->body = (uint8_t)s->body;
    m->smtputf8 = s->smtputf8;
    m->arrival = now_unix();
    m->src_channel = xstrdup(s->src_channel);
    m->client = xasprintf("%s [%s]", s->helo ? s->helo : "unknown", s->client_ip);
    size_t len = s->data.len, msg_len = s->data.len - s->hdr_len;
    m->content = qbody_adopt(sb_steal(&s->data), len); /* the session's buffer, not a copy */
    qmsg *over = NULL;
    add_rcpts(s, m, msg_len, &over);
    ps->oversize = over;
    if (m->n_rcpts == 0) return refuse_oversize(ps, m);
    ps->pending = m;
    enqueue_submit(ps->p->ctx, m, commit_done, ps);
}

void policy_commit_abandon(policy_sess *ps)
{
    enq_msg *m = ps->pending; /* the store's callback will not run any more */
    enqueue_msg_free(m);
    free(m);
    ps->pending = NULL;
    oversize_free(ps);
}

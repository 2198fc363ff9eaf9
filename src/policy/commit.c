/*
 * commit.c - the end of data: one queue file per destination channel, durable before the 250
 * (queue/enqueue.c). Recipients whose size limit (from the directory, checked at RCPT only when
 * the client declared SIZE) the message exceeds are not queued: they get a DSN (5.3.4), queued
 * before the 250 like the message, and the others are delivered; when every recipient is over
 * its limit, the message is refused instead. Never a silent truncation.
 *
 * When content scanners or Sieve filters apply (policy/scan_stage.c), the stage hands over a
 * commit plan instead: one or more messages (one per distinct content: a header edited for some
 * recipients only), and the recipients that get a DSN (a Sieve reject). The parts are queued
 * one after the other, then the DSN, then the answer.
 */
#include "conf/conf.h"
#include "core/log.h"
#include "dsn/bounce.h"
#include "policy/commit.h"
#include "policy/complete.h"
#include "policy/decide.h"
#include "policy/dkim_stage.h"
#include "policy/fleet.h"
#include "policy/milter_stage.h"
#include "policy/scan_stage.h"
#include "queue/enqueue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OVERSIZE_DIAG "smtp; 552 5.3.4 Message size exceeds the recipient's limit"

/* commit_plan_free - release p and everything it holds. */
void commit_plan_free(commit_plan *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_msgs; i++) {
        enqueue_msg_free(p->msgs[i]);
        free(p->msgs[i]);
    }
    free(p->msgs);
    if (p->failed) {
        qmsg_free(p->failed);
        free(p->failed);
    }
    sv_free(&p->fail_status);
    sv_free(&p->fail_diag);
    free(p);
}

/* commit_answer - the end of data is answered; the session may be gone on return. */
static void commit_answer(policy_sess *ps, sl_result res, const char *err)
{
    commit_plan_free(ps->pending);
    ps->pending = NULL;
    smtp_sess_commit_done(ps->s, res, err);
}

/* failed_bounced - the DSN for the recipients that were not queued is durable (or failed: logged). */
static void failed_bounced(void *arg, sl_result res, const char *err)
{
    policy_sess *ps = arg;
    (void)res, (void)err; /* bounce.c logged it; the message itself is queued, so the answer is 250 */
    commit_answer(ps, SL_OK, NULL);
}

/* failed_bounce - queue the DSN about the recipients the plan does not deliver. */
static void failed_bounce(policy_sess *ps)
{
    commit_plan *p = ps->pending;
    qmsg *q = p->failed;
    dsn_report *reps = xcalloc(q->n_rcpts, sizeof *reps);
    for (size_t i = 0; i < q->n_rcpts; i++) {
        q->rcpts[i].status = QR_FAILED;
        reps[i] = (dsn_report){&q->rcpts[i], "failed", p->fail_status.v[i], p->fail_diag.v[i], NULL};
        log_info(q->id, "failed", "to=<%s> status=%s reason=\"%s\"", q->rcpts[i].addr, p->fail_status.v[i],
                 p->fail_diag.v[i]);
    }
    bounce_submit(ps->p->ctx, q, reps, q->n_rcpts, failed_bounced, ps);
    free(reps);
}

static void part_done(void *arg, sl_result res, const char *err);

/* commit_next - queue the plan's next part; after the last, the DSN, then the answer. */
static void commit_next(policy_sess *ps)
{
    commit_plan *p = ps->pending;
    if (p->next < p->n_msgs) {
        enq_msg *m = p->msgs[p->next++];
        enqueue_submit(ps->p->ctx, m, part_done, ps);
        return;
    }
    if (p->failed && p->failed->n_rcpts) return failed_bounce(ps);
    commit_answer(ps, SL_OK, NULL);
}

static void part_done(void *arg, sl_result res, const char *err)
{
    policy_sess *ps = arg;
    commit_plan *p = ps->pending;
    enq_msg *m = p->msgs[p->next - 1];
    if (res != SL_OK) {
        if (p->next > 1) /* an earlier part is queued: a retry of the client may deliver it twice */
            log_warn(m->id, "commit_partial", "parts_queued=%zu parts=%zu error=\"%s\"", p->next - 1, p->n_msgs,
                     err ? err : "");
        return commit_answer(ps, res, err); /* may free the session and ps */
    }
    log_info(m->id, "accepted", "session=%s client=[%s] from=<%s> size=%zu nrcpt=%zu%s%s%s", ps->s->id,
             ps->s->client_ip, m->sender, m->content->len, m->n_rcpts, ps->s->auth_user ? " auth=<" : "",
             ps->s->auth_user ? ps->s->auth_user : "", ps->s->auth_user ? ">" : "");
    commit_next(ps);
}

void policy_commit_plan(policy_sess *ps, commit_plan *p)
{
    ps->pending = p;
    dkim_stage_sign(ps, p, commit_next); /* after every header edit: what is signed is what is queued */
}

/* commit_failed_msg - the queue message a DSN about s's refused recipients is built from. */
static qmsg *commit_failed_msg(const smtp_sess *s, const char *id, const qbody *content)
{
    qmsg *q = xcalloc(1, sizeof *q);
    snprintf(q->id, sizeof q->id, "%s", id);
    q->channel = xstrdup(s->src_channel);
    q->sender = xstrdup(s->sender ? s->sender : "");
    q->envid = xstrdup(s->envid);
    q->ret = (uint8_t)s->ret;
    q->body = (uint8_t)s->body;
    q->smtputf8 = s->smtputf8;
    q->arrival = now_unix();
    q->client = xasprintf("%s [%s]", s->helo ? s->helo : "unknown", s->client_ip);
    qmsg_set_content(q, qbody_ref((qbody *)content));
    return q;
}

enq_msg *commit_msg_new(const smtp_sess *s, const char *id, qbody *content)
{
    enq_msg *m = xcalloc(1, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", id);
    m->sender = xstrdup(s->sender);
    m->envid = xstrdup(s->envid);
    m->ret = (uint8_t)s->ret;
    m->body = (uint8_t)s->body;
    m->smtputf8 = s->smtputf8;
    m->arrival = now_unix();
    m->src_channel = xstrdup(s->src_channel);
    m->client = xasprintf("%s [%s]", s->helo ? s->helo : "unknown", s->client_ip);
    m->content = content;
    return m;
}

void commit_plan_fail(commit_plan *p, const smtp_sess *s, const qbody *content, const qrcpt *r, const char *status,
                      const char *diag)
{
    if (!p->failed) p->failed = commit_failed_msg(s, s->qid, content);
    qmsg_add_rcpt(p->failed, r->addr, r->orig, r->orcpt, r->host, r->notify);
    sv_push(&p->fail_status, status);
    sv_push(&p->fail_diag, diag);
}

bool commit_rcpt_dup(const smtp_sess *s, size_t i)
{
    const qrcpt *r = &s->rcpts[i];
    for (size_t k = 0; k < i; k++) /* one copy per final address, as with alias and group overlap */
        if (str_ieq(s->rcpts[k].addr, r->addr) && str_ieq(s->rcpts[k].channel, r->channel)) return true;
    return false;
}

/* add_notes - header lines after our Received: line (the first) of s's message. */
static void add_notes(smtp_sess *s, const strvec *notes)
{
    strbuf b;
    sb_init(&b);
    sb_append(&b, s->data.data, s->hdr_len);
    for (size_t i = 0; i < notes->n; i++) sb_printf(&b, "%s\r\n", notes->v[i]);
    sb_append(&b, s->data.data + s->hdr_len, s->data.len - s->hdr_len);
    smtp_sess_set_content(s, &b);
}

static void commit_scanned(policy_sess *ps, smtp_sess *s);
static void commit_verified(policy_sess *ps, smtp_sess *s);

/* after_milters - the milters' verdict on the message: refuse, discard, hold, or go on. */
static void after_milters(policy_sess *ps, milter_outcome *o)
{
    smtp_sess *s = ps->s;
    if (o->v.cls != VERDICT_OK) {
        verdict v = o->v;
        o->v = verdict_ok();
        milter_outcome_free(o);
        return policy_commit_refuse(ps, NULL, &v);
    }
    if (o->discard) { /* accepted, then dropped: a 250 and nothing queued */
        log_info(s->qid, "discarded", "nrcpt=%zu by=milter", s->n_rcpts);
        milter_outcome_free(o);
        return policy_commit_plan(ps, xcalloc(1, sizeof(commit_plan)));
    }
    if (o->notes.n) add_notes(s, &o->notes);
    const sl_channel *hold = o->quarantine ? conf_channel_by_name(s->conf, "hold") : NULL;
    for (size_t i = 0; hold && i < s->n_rcpts; i++) { /* quarantine: every copy waits in hold */
        free(s->rcpts[i].channel);
        s->rcpts[i].channel = xstrdup(hold->name);
    }
    if (o->quarantine)
        log_info(s->qid, "quarantined", "reason=\"%s\" channel=%s", o->quarantine, hold ? hold->name : "(none: delivered)");
    milter_outcome_free(o);
    if (s->n_rcpts == 0) { /* every recipient was removed */
        log_info(s->qid, "discarded", "nrcpt=0 by=milter");
        return policy_commit_plan(ps, xcalloc(1, sizeof(commit_plan)));
    }
    commit_scanned(ps, s);
}

/* from_address - the address in the From: field of s's message (lower-case compared by the caller), or NULL. */
static char *from_address(const smtp_sess *s)
{
    const char *d = s->data.data + s->hdr_len, *end = s->data.data + s->data.len;
    for (const char *p = d; p < end && !(p[0] == '\r' && p + 1 < end && p[1] == '\n');) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        if (nl - p > 5 && strncasecmp(p, "From:", 5) == 0) {
            const char *lt = memchr(p, '<', (size_t)(nl - p)), *gt = lt ? memchr(lt, '>', (size_t)(nl - lt)) : NULL;
            if (lt && gt) return xstrndup(lt + 1, (size_t)(gt - lt - 1));
            const char *v = p + 5;
            while (v < nl && (*v == ' ' || *v == '\t')) v++;
            const char *e = nl;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
            return xstrndup(v, (size_t)(e - v));
        }
        p = nl + 1;
    }
    return NULL;
}

/* auth_sender - "authrewrite 1" on the source channel: a Sender: naming the authenticated user
 * when the From: address is another one (Messaging Server's authrewrite). */
static void auth_sender(smtp_sess *s)
{
    const sl_channel *src = conf_channel_by_name(s->conf, s->src_channel);
    if (!src || src->authrewrite != 1 || !s->auth_user || !strchr(s->auth_user, '@')) return;
    char *from = from_address(s);
    bool same = from && str_ieq(from, s->auth_user);
    free(from);
    if (same) return;
    strvec note = {0};
    sv_push_owned(&note, xasprintf("Sender: <%s>", s->auth_user));
    add_notes(s, &note);
    sv_free(&note);
    log_info(s->qid, "auth_sender", "sender=<%s>", s->auth_user);
}

void policy_commit(policy_sess *ps, smtp_sess *s)
{
    auth_sender(s);
    if (ps->dnsbl_note) { /* DNS_VERIFY_ACTION=score: the listing goes with the message */
        strvec note = {0};
        sv_push(&note, ps->dnsbl_note);
        add_notes(s, &note);
        sv_free(&note);
    }
    dkim_stage_verify(ps, s, commit_verified);
}

/* commit_verified - the message after DKIM verification: header addresses completed (policy/complete.c),
 * then the milters, the scanners, the queue. */
static void commit_verified(policy_sess *ps, smtp_sess *s)
{
    complete_headers(s);
    if (ps->milters) return milters_message(ps, after_milters); /* also notes the milters lost */
    commit_scanned(ps, s);
}

/* commit_scanned - the message after the milters: the other scanners and Sieve, or queued as it is. */
static void commit_scanned(policy_sess *ps, smtp_sess *s)
{
    if (scan_stage_wanted(ps, s)) return scan_stage_start(ps, s);
    size_t msg_len = s->data.len - s->hdr_len;
    size_t len = s->data.len;
    commit_plan *p = xcalloc(1, sizeof *p);
    enq_msg *m = commit_msg_new(s, s->qid, qbody_adopt(sb_steal(&s->data), len)); /* the session's buffer, not a copy */
    p->msgs = xcalloc(1, sizeof *p->msgs);
    p->msgs[p->n_msgs++] = m;
    for (size_t i = 0; i < s->n_rcpts; i++) {
        const qrcpt *r = &s->rcpts[i];
        if (commit_rcpt_dup(s, i)) continue;
        if (r->max_size && msg_len > r->max_size)
            commit_plan_fail(p, s, m->content, r, "5.3.4", OVERSIZE_DIAG);
        else
            enqueue_add_rcpt(m, r->addr, r->orig, r->orcpt, r->channel, r->host, r->notify);
    }
    if (m->n_rcpts == 0) {
        verdict v = verdict_refuse(VERDICT_RCPT_SIZE, false, NULL);
        return policy_commit_refuse(ps, p, &v);
    }
    policy_commit_plan(ps, p);
}

void policy_commit_refuse(policy_sess *ps, commit_plan *p, verdict *v)
{
    fleet_apply_now(ps->s->conf, v);
    strbuf line = {0};
    verdict_reply(v, ps->s->conf->opt.hostname, &line);
    commit_plan_free(p);
    verdict_free(v);
    smtp_sess_commit_refused(ps->s, line.data); /* may free the session and ps */
    sb_free(&line);
}

void policy_commit_abandon(policy_sess *ps)
{
    dkim_stage_sign_abandon(ps); /* before the plan it signs goes */
    commit_plan_free(ps->pending); /* the store's callback will not run any more */
    ps->pending = NULL;
    scan_stage_abandon(ps);
}

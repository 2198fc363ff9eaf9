/*
 * policy.c - the decider's entry points (see policy.h): session state, the connect, HELO and
 * MAIL decisions, and the commit of a finished message through enqueue. RCPT and AUTH have
 * files of their own (rcpt.c, auth.c).
 */
#include "policy/policy.h"
#include "conf/conf.h"
#include "core/log.h"
#include "dir/dir.h"
#include "policy/access.h"
#include "policy/decide.h"
#include "policy/fleet.h"
#include "queue/enqueue.h"
#include "queue/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

policy *policy_new(sl_ctx *ctx)
{
    policy *p = xcalloc(1, sizeof *p);
    p->ctx = ctx;
    p->fleet = fleet_new(ctx);
    return p;
}

void policy_free(policy *p)
{
    if (!p) return;
    fleet_free(p->fleet);
    free(p);
}

void policy_answer(policy_sess *ps, verdict *v)
{
    smtp_sess *s = ps->s;
    strbuf line = {0}, why = {0};
    bool ok = v->cls == VERDICT_OK;
    if (!ok) {
        verdict_reply(v, s->conf->opt.hostname, &line);
        verdict_why(v, &why);
    }
    smtp_answer a = {verdict_code(v), ok ? NULL : line.data, v->delay_ms, v->disconnect, ok ? NULL : why.data};
    verdict_free(v);
    smtp_sess_answer(s, &a); /* may free the session and ps */
    sb_free(&line);
    sb_free(&why);
}

void policy_sess_flags(const smtp_sess *s, char buf[8])
{
    char *p = buf;
    if (s->tls_active) *p++ = 'T';
    if (s->auth_user) *p++ = 'A';
    if (s->esmtp) *p++ = 'E';
    *p = '\0';
}

/* access_facts - the connection fields of the access-table probes. */
static access_conn access_facts(const smtp_sess *s)
{
    access_conn ac = {s->server_ip, s->server_port, s->client_ip, s->client_port};
    return ac;
}

/* service_of - the dispatcher service of the session, or NULL. */
static const sl_service *service_of(const smtp_sess *s)
{
    for (size_t i = 0; i < s->conf->n_services; i++)
        if (str_ieq(s->conf->services[i].name, s->service)) return &s->conf->services[i];
    return NULL;
}

/* decide_connect - the service's connection limits, then PORT_ACCESS. */
static void decide_connect(policy_sess *ps, smtp_sess *s)
{
    const sl_service *svc = service_of(s);
    verdict v = verdict_ok();
    if (svc && s->conns_service >= svc->max_conns) {
        v = verdict_refuse(VERDICT_CONN_LIMIT, true, NULL);
    } else if (svc && s->conns_client >= svc->max_per_client && !s->client_internal) {
        v = verdict_refuse(VERDICT_CONN_LIMIT, true, NULL);
        verdict_set_text(&v, "Too many connections from your address");
    } else {
        access_conn ac = access_facts(s);
        char *probe = access_port_probe(&ac);
        access_check(s->conf->mappings, "PORT_ACCESS", probe, "", 554, "Connection refused by access policy", &v);
        free(probe);
    }
    if (v.cls != VERDICT_OK) v.disconnect = true;
    policy_answer(ps, &v);
}

/* decide_mail - required TLS or AUTH, the declared size, then FROM_ACCESS. */
static void decide_mail(policy_sess *ps, smtp_sess *s, const smtp_cmd *cmd)
{
    verdict v = verdict_ok();
    if (s->tls_required && !s->tls_active) {
        v = verdict_refuse(VERDICT_TLS_REQUIRED, false, NULL);
    } else if (s->auth_required && !s->auth_user) {
        v = verdict_refuse(VERDICT_AUTH_REQUIRED, false, NULL);
    } else if (cmd->has_size && cmd->size > s->conf->opt.max_message_size) {
        v = verdict_refuse(VERDICT_SIZE, false, NULL);
    } else {
        char flags[8];
        policy_sess_flags(s, flags);
        char *from = cmd->path.is_null ? xstrdup("") : smtp_addr_format(&cmd->path);
        access_conn ac = access_facts(s);
        char *probe = access_from_probe(&ac, s->src_channel, from, s->auth_user);
        access_check(s->conf->mappings, "FROM_ACCESS", probe, flags, 550, "Sender address rejected", &v);
        free(probe);
        free(from);
    }
    fleet_apply_now(s->conf, &v);
    policy_answer(ps, &v);
}

static void ops_decide(void *ctx, smtp_sess *s, const smtp_ask *q)
{
    policy_sess *ps = ctx;
    verdict ok = verdict_ok();
    switch (q->stage) {
    case SMTP_STAGE_CONNECT: decide_connect(ps, s); break;
    case SMTP_STAGE_HELO: policy_answer(ps, &ok); break;
    case SMTP_STAGE_MAIL: decide_mail(ps, s, q->cmd); break;
    case SMTP_STAGE_RCPT: policy_decide_rcpt(ps, q->cmd); break;
    case SMTP_STAGE_AUTH: policy_decide_auth(ps, q->user, q->pass); break;
    }
}

static void *ops_open(void *arg, smtp_sess *s)
{
    policy_sess *ps = xcalloc(1, sizeof *ps);
    ps->p = arg;
    ps->s = s;
    ps->dir = dir_ref(ps->p->ctx->dir);
    return ps;
}

/* commit_abandon - the session ends (shutdown) while its message is being committed: the
 * store's callback will not run any more, so the message is let go here. */
static void commit_abandon(policy_sess *ps)
{
    enq_msg *m = ps->pending;
    enqueue_msg_free(m);
    free(m);
    ps->pending = NULL;
}

static void ops_close(void *ctx)
{
    policy_sess *ps = ctx;
    if (ps->pending) commit_abandon(ps);
    if (ps->auth) policy_auth_abandon(ps);
    if (ps->rcpt) policy_rcpt_abandon(ps);
    dir_unref(ps->dir);
    free(ps);
}

static void ops_new_id(void *ctx, char *buf, size_t len)
{
    policy_sess *ps = ctx;
    store_new_id(ps->p->ctx->store, buf, len);
}

static void ops_date(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    rfc5322_date(now_unix(), buf, len);
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
    smtp_sess_commit_done(ps->s, res, err); /* may free the session and ps */
}

/* ops_commit - one queue file per destination channel, durable before the 250. */
static void ops_commit(void *ctx, smtp_sess *s)
{
    policy_sess *ps = ctx;
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
    for (size_t i = 0; i < s->n_rcpts; i++) {
        qrcpt *r = &s->rcpts[i];
        bool dup = false; /* one copy per final address, as with alias and group overlap */
        for (size_t k = 0; k < i && !dup; k++)
            dup = str_ieq(s->rcpts[k].addr, r->addr) && str_ieq(s->rcpts[k].channel, r->channel);
        if (!dup) enqueue_add_rcpt(m, r->addr, r->orig, r->orcpt, r->channel, r->host, r->notify);
    }
    size_t len = s->data.len;
    m->content = qbody_adopt(sb_steal(&s->data), len); /* the session's buffer, not a copy */
    ps->pending = m;
    enqueue_submit(ps->p->ctx, m, commit_done, ps);
}

static const smtp_server_ops policy_ops = {ops_open, ops_close, ops_decide, ops_commit, ops_new_id, ops_date};

const smtp_server_ops *policy_smtp_ops(void)
{
    return &policy_ops;
}

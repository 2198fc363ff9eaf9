/*
 * policy.c - the decider's entry points (see policy.h): session state, the connect, HELO and
 * MAIL decisions. RCPT, AUTH and the commit have files of their own (rcpt.c, auth.c, commit.c).
 */
#include "policy/policy.h"
#include "conf/conf.h"
#include "core/log.h"
#include "dir/dir.h"
#include "policy/access.h"
#include "policy/decide.h"
#include "policy/dkim_stage.h"
#include "policy/fleet.h"
#include "policy/dnsbl.h"
#include "policy/milter_stage.h"
#include "policy/scan_stage.h"
#include "rewrite/mapping.h"
#include "spf/spf.h"
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
    scan_cache_free(p);
    dnsbl_cache_free(p);
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
    /* the transaction's SPF result, once checked (sender-checks.md): P pass, F fail, S softfail,
     * N neutral or none, X temperror or permerror */
    const policy_sess *ps = s->ops == policy_smtp_ops() ? s->ops_ctx : NULL;
    if (ps && ps->spf_result >= 0) {
        static const char letters[] = {[SPF_NONE] = 'N',      [SPF_NEUTRAL] = 'N',   [SPF_PASS] = 'P',
                                       [SPF_FAIL] = 'F',      [SPF_SOFTFAIL] = 'S',  [SPF_TEMPERROR] = 'X',
                                       [SPF_PERMERROR] = 'X'};
        if ((size_t)ps->spf_result < sizeof letters && letters[ps->spf_result]) *p++ = letters[ps->spf_result];
    }
    *p = '\0';
}

/* access_facts - the connection fields of the access-table probes. */
static access_conn access_facts(const smtp_sess *s)
{
    access_conn ac = {s->server_ip, s->server_port, s->client_ip, s->client_port, s->helo};
    return ac;
}

/* service_of - the dispatcher service of the session, or NULL. */
static const sl_service *service_of(const smtp_sess *s)
{
    for (size_t i = 0; i < s->conf->n_services; i++)
        if (str_ieq(s->conf->services[i].name, s->service)) return &s->conf->services[i];
    return NULL;
}

/* connect_milters_done - the milters' answer to the connection (a refusal closes it). */
static void connect_milters_done(policy_sess *ps, verdict *v)
{
    if (v->cls != VERDICT_OK) v->disconnect = true;
    if (v->cls != VERDICT_OK && v->temp) v->code = 421; /* RFC 5321 3.8: a greeting that turns away for now */
    policy_answer(ps, v);
}

/* connect_lists_done - the DNS lists' answer, then the milters'. */
static void connect_lists_done(policy_sess *ps, verdict *v)
{
    if (v->cls != VERDICT_OK) {
        v->disconnect = true;
        return policy_answer(ps, v);
    }
    if (milters_wanted(ps->s)) return milters_connect(ps, connect_milters_done);
    policy_answer(ps, v);
}

/* milters_answered - a milter chain's answer to HELO, RCPT: the command's answer. */
static void milters_answered(policy_sess *ps, verdict *v)
{
    policy_answer(ps, v);
}

/* internal_switch - "switchchannel" on the receiving channel: a client the INTERNAL_IP mapping
 * says $Y for continues on the channel the entry names (its output; tcp_intranet when empty),
 * when that channel says "allowswitchchannel" (Messaging Server's tcp_local -> tcp_intranet). */
static void internal_switch(smtp_sess *s)
{
    const sl_channel *src = conf_channel_by_name(s->conf, s->src_channel);
    if (!src || !src->switchchannel || !mappings_has_table(s->conf->mappings, "INTERNAL_IP")) return;
    mapping_result r;
    memset(&r, 0, sizeof r);
    if (mapping_probe(s->conf->mappings, "INTERNAL_IP", s->client_ip, "", &r) == SL_OK && r.matched && r.ok_flag &&
        !r.no_flag) {
        const char *name = r.output && *r.output ? r.output : "tcp_intranet";
        const sl_channel *to = conf_channel_by_name(s->conf, name);
        if (to && to->allowswitchchannel) {
            log_info(s->id, "channel_switch", "from=%s to=%s client=[%s] reason=INTERNAL_IP", s->src_channel, to->name,
                     s->client_ip);
            smtp_sess_set_channel(s, to->name);
        } else {
            log_warn(s->id, "channel_switch_refused", "from=%s to=%s client=[%s] reason=\"%s\"", s->src_channel, name,
                     s->client_ip, to ? "no allowswitchchannel on the target" : "no such channel");
        }
    }
    mapping_result_free(&r);
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
    if (v.cls != VERDICT_OK) {
        v.disconnect = true;
        return policy_answer(ps, &v);
    }
    verdict_free(&v);
    internal_switch(s);
    policy_dnsbl_check(ps, svc, connect_lists_done);
}

/* mail_milters_done - the milters' answer to MAIL FROM. */
static void mail_milters_done(policy_sess *ps, verdict *v)
{
    v->delay_ms = ps->mail_delay; /* an access table's $D on an accepted sender */
    policy_answer(ps, v);
}

/* mail_accept - MAIL FROM is accepted (the sender is known, as far as the directory knows it);
 * the milters have the last word. */
static void mail_accept(policy_sess *ps)
{
    milters_mail(ps, &ps->s->ask_cmd, mail_milters_done);
}

/* mail_sender - SPF let MAIL through: learn about the sender from the directory. */
static void mail_sender(policy_sess *ps)
{
    const smtp_cmd *cmd = &ps->s->ask_cmd;
    char *from = cmd->path.is_null ? xstrdup("") : smtp_addr_format(&cmd->path);
    policy_sender_lookup(ps, from, mail_accept);
    free(from);
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
    } else if (policy_solicit_refused(s, cmd, &v)) {
        /* RFC 3865: the refusal is in v */
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
    if (v.cls != VERDICT_OK) return policy_answer(ps, &v);
    ps->mail_delay = v.delay_ms;
    char *from = cmd->path.is_null ? xstrdup("") : smtp_addr_format(&cmd->path);
    policy_spf_check(ps, from, mail_sender); /* may answer (and free ps) before it returns */
    free(from);
}

static void ops_decide(void *ctx, smtp_sess *s, const smtp_ask *q)
{
    policy_sess *ps = ctx;
    verdict ok = verdict_ok();
    switch (q->stage) {
    case SMTP_STAGE_CONNECT: decide_connect(ps, s); break;
    case SMTP_STAGE_HELO: (void)ok, milters_helo(ps, q->cmd->arg, milters_answered); break;
    case SMTP_STAGE_MAIL: decide_mail(ps, s, q->cmd); break;
    case SMTP_STAGE_RCPT: policy_decide_rcpt(ps, q->cmd); break;
    case SMTP_STAGE_AUTH: policy_decide_auth(ps, q->user, q->pass); break;
    case SMTP_STAGE_ETRN: policy_decide_etrn(ps, q->cmd); break;
    }
}

static void *ops_open(void *arg, smtp_sess *s)
{
    policy_sess *ps = xcalloc(1, sizeof *ps);
    ps->p = arg;
    ps->s = s;
    ps->dir = dir_ref(ps->p->ctx->dir);
    ps->spf_result = -1;
    return ps;
}

static void ops_close(void *ctx)
{
    policy_sess *ps = ctx;
    if (ps->pending || ps->scan) policy_commit_abandon(ps);
    milters_close(ps);
    policy_dnsbl_abandon(ps);
    free(ps->dnsbl_note);
    if (ps->auth) policy_auth_abandon(ps);
    if (ps->rcpt) policy_rcpt_abandon(ps);
    if (ps->sender_req) policy_sender_abandon(ps);
    if (ps->spf_job) policy_spf_abandon(ps);
    if (ps->dkim_job) dkim_stage_abandon(ps);
    policy_sender_clear(ps);
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

static void ops_commit(void *ctx, smtp_sess *s)
{
    policy_commit(ctx, s);
}

static const smtp_server_ops policy_ops = {ops_open, ops_close, ops_decide, ops_commit, ops_new_id, ops_date};

const smtp_server_ops *policy_smtp_ops(void)
{
    return &policy_ops;
}

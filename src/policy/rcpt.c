/*
 * rcpt.c - the RCPT TO decision: the recipient limit, ORIG_SEND_ACCESS/ORIG_MAIL_ACCESS on the
 * address as given, the directory for local domains (users, aliases, groups, statuses), relay
 * control for the others, then rewriting and SEND_ACCESS/MAIL_ACCESS for every final address.
 * An address that expands to several is accepted all or nothing. The directory may answer later:
 * the decision is a chain of callbacks (domain, then expansion) that ends in rcpt_finish.
 */
#include "conf/conf.h"
#include "core/log.h"
#include "dir/dir.h"
#include "policy/access.h"
#include "policy/decide.h"
#include "rewrite/mapping.h"
#include "rewrite/rewrite.h"
#include "rewrite/route.h"

#include <stdlib.h>
#include <string.h>

/* One RCPT decision in progress. */
typedef struct rcpt_req {
    policy_sess *ps; /* NULL once the session is gone (its answer is dropped) */
    smtp_sess *s;
    smtp_cmd *cmd;   /* the session's copy of the command (valid until the answer) */
    char *addr;      /* the recipient as given (<Postmaster> completed) */
    bool postmaster; /* RCPT TO:<Postmaster>: RFC 5321 4.5.1 says it is always accepted */
    unsigned delay;  /* the longest $D delay met */
    access_verdict orig; /* ORIG_SEND_ACCESS / ORIG_MAIL_ACCESS */
} rcpt_req;

/* rcpt_access - SEND_ACCESS then MAIL_ACCESS (orig: the ORIG_ variants) for one routed address. */
static access_verdict rcpt_access(rcpt_req *q, bool orig, const char *dst, const char *to, verdict *v)
{
    smtp_sess *s = q->s;
    char flags[8];
    policy_sess_flags(s, flags);
    const char *from = s->sender ? s->sender : "";
    const char *deny = "Recipient address rejected by access policy";
    char *p1 = access_send_probe(s->src_channel, from, dst, to);
    access_verdict a = access_check(s->conf->mappings, orig ? "ORIG_SEND_ACCESS" : "SEND_ACCESS", p1, flags, 550,
                                    deny, v);
    free(p1);
    if (v->delay_ms > q->delay) q->delay = v->delay_ms;
    if (a == ACCESS_REJECT || a == ACCESS_TEMP) return a;
    verdict_free(v);
    access_conn ac = {s->server_ip, s->server_port, s->client_ip, s->client_port};
    char *p2 = access_mail_probe(&ac, s->src_channel, from, dst, to);
    access_verdict a2 = access_check(s->conf->mappings, orig ? "ORIG_MAIL_ACCESS" : "MAIL_ACCESS", p2, flags, 550,
                                     deny, v);
    free(p2);
    if (v->delay_ms > q->delay) q->delay = v->delay_ms;
    return a2 != ACCESS_NONE ? a2 : a;
}

/* route_one - rewrite one final address and add it to the transaction. */
static verdict route_one(rcpt_req *q, const char *addr)
{
    smtp_sess *s = q->s;
    rw_result rw;
    memset(&rw, 0, sizeof rw);
    sl_result rc = rewrite_address(s->conf, addr, s->src_channel, &rw, NULL);
    verdict v = verdict_ok();
    if (rc != SL_OK) {
        v = verdict_refuse(VERDICT_ROUTE, rc != SL_PERM, q->addr);
        verdict_set_status(&v, rw.status);
        if (rw.error) verdict_set_text(&v, rw.error);
        rw_result_free(&rw);
        return v;
    }
    access_verdict a = rcpt_access(q, false, rw.channel->name, rw.addr, &v);
    if (a != ACCESS_REJECT && a != ACCESS_TEMP) {
        verdict_free(&v);
        v = verdict_ok();
        char *dest = route_dest_host(&rw);
        smtp_sess_add_rcpt(s, rw.addr, q->addr, q->cmd->orcpt, rw.channel->name, dest, q->cmd->notify);
        free(dest);
    }
    rw_result_free(&rw);
    return v;
}

/* orig_access - ORIG_SEND_ACCESS / ORIG_MAIL_ACCESS: the address as given, with the channel it routes to. */
static access_verdict orig_access(rcpt_req *q, verdict *v)
{
    const sl_conf *conf = q->s->conf;
    *v = verdict_ok();
    if (!mappings_has_table(conf->mappings, "ORIG_SEND_ACCESS") && !mappings_has_table(conf->mappings, "ORIG_MAIL_ACCESS"))
        return ACCESS_NONE;
    rw_result orw;
    memset(&orw, 0, sizeof orw);
    const char *odst = rewrite_address(conf, q->addr, q->s->src_channel, &orw, NULL) == SL_OK ? orw.channel->name : "";
    access_verdict a = rcpt_access(q, true, odst, q->addr, v);
    rw_result_free(&orw);
    return a;
}

/* local_recipient - a recipient in one of our domains: the directory's expansion, each routed. */
static verdict local_recipient(rcpt_req *q, sl_result rc, strvec targets, const char *err)
{
    if (rc == SL_PERM && str_has_prefix_ci(q->addr, "postmaster@")) { /* RFC 5321: always accepted */
        sv_push(&targets, q->addr);
        rc = SL_OK;
    }
    verdict v = verdict_ok();
    if (rc == SL_TEMP) {
        v = verdict_refuse(VERDICT_LOOKUP_FAILED, true, q->addr);
        char *text = xasprintf("<%s>: Recipient address lookup failed, try again later", q->addr);
        verdict_set_text(&v, text);
        free(text);
    } else if (rc != SL_OK) {
        bool disabled = strstr(err, "disabled") != NULL;
        v = verdict_refuse(disabled ? VERDICT_MAILBOX_STATUS : VERDICT_UNKNOWN_USER, false, q->addr);
    }
    size_t before = q->s->n_rcpts;
    for (size_t i = 0; v.cls == VERDICT_OK && i < targets.n; i++) v = route_one(q, targets.v[i]);
    if (v.cls != VERDICT_OK) smtp_sess_truncate_rcpts(q->s, before); /* all or nothing */
    sv_free(&targets);
    return v;
}

/* rcpt_finish - log the decision, answer the session and let the request go. */
static void rcpt_finish(rcpt_req *q, verdict *v)
{
    policy_sess *ps = q->ps;
    if (!ps) { /* the session ended while the directory was asked */
        verdict_free(v);
        free(q->addr);
        free(q);
        return;
    }
    ps->rcpt = NULL;
    if (q->delay > v->delay_ms) v->delay_ms = q->delay;
    if (v->cls == VERDICT_OK)
        log_info(q->s->id, "rcpt", "to=<%s> code=250", q->addr);
    else
        log_info(q->s->id, "rcpt_rejected", "to=<%s> code=%d class=%s", q->addr, verdict_code(v),
                 verdict_class_name(v->cls));
    char *addr = q->addr; /* v->subject points into it until the answer is made */
    free(q);
    policy_answer(ps, v);
    free(addr);
}

/* rcpt_expanded - the directory's expansion of a local recipient. */
static void rcpt_expanded(void *arg, sl_result rc, strvec targets, const char *why)
{
    rcpt_req *q = arg;
    verdict v = q->ps ? local_recipient(q, rc, targets, why) : verdict_ok();
    if (!q->ps) sv_free(&targets);
    rcpt_finish(q, &v);
}

/* rcpt_domain_known - whether the recipient's domain is ours: expand it, or relay control. */
static void rcpt_domain_known(void *arg, sl_result rc)
{
    rcpt_req *q = arg;
    smtp_sess *s = q->s;
    verdict v = verdict_ok();
    if (!q->ps) {
        rcpt_finish(q, &v);
    } else if (rc == SL_OK) {
        dir_expand(q->ps->dir, q->addr, rcpt_expanded, q);
    } else if (rc == SL_TEMP) {
        v = verdict_refuse(VERDICT_LOOKUP_FAILED, true, q->addr);
        char *text = xasprintf("<%s>: Recipient domain lookup failed, try again later", q->addr);
        verdict_set_text(&v, text);
        free(text);
        rcpt_finish(q, &v);
    } else {
        if (!s->client_internal && !s->auth_user && q->orig != ACCESS_ALLOW && !q->postmaster) /* no open relay */
            v = verdict_refuse(VERDICT_RELAY_DENIED, false, q->addr);
        else
            v = route_one(q, q->addr);
        rcpt_finish(q, &v);
    }
}

void policy_decide_rcpt(policy_sess *ps, const smtp_cmd *cmd)
{
    smtp_sess *s = ps->s;
    rcpt_req *q = xcalloc(1, sizeof *q);
    q->ps = ps;
    q->s = s;
    q->cmd = &s->ask_cmd;
    (void)cmd; /* the same command, kept by the session until the answer */
    q->postmaster = !q->cmd->path.domain || !q->cmd->path.domain[0];
    q->addr = q->postmaster ? conf_postmaster(&s->conf->opt) : smtp_addr_format(&q->cmd->path);
    ps->rcpt = q;
    verdict v;
    if (s->n_rcpts >= s->conf->opt.max_recipients) {
        v = verdict_refuse(VERDICT_RCPT_LIMIT, true, q->addr);
        return rcpt_finish(q, &v);
    }
    q->orig = orig_access(q, &v);
    if (q->orig == ACCESS_REJECT || q->orig == ACCESS_TEMP) return rcpt_finish(q, &v);
    verdict_free(&v);
    dir_domain(ps->dir, strrchr(q->addr, '@') + 1, rcpt_domain_known, q);
}

void policy_rcpt_abandon(policy_sess *ps)
{
    ps->rcpt->ps = NULL;
    ps->rcpt = NULL;
}

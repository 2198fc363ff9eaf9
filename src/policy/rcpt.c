/*
 * rcpt.c - the RCPT TO decision: the recipient limit, ORIG_SEND_ACCESS/ORIG_MAIL_ACCESS on the
 * address as given, the directory for local domains (users, aliases, groups, statuses), relay
 * control for the others, then rewriting and SEND_ACCESS/MAIL_ACCESS for every final address.
 * An address that expands to several is accepted all or nothing.
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
typedef struct {
    policy_sess *ps;
    smtp_sess *s;
    const smtp_cmd *cmd;
    char *addr;      /* the recipient as given (<Postmaster> completed) */
    bool postmaster; /* RCPT TO:<Postmaster>: RFC 5321 4.5.1 says it is always accepted */
    unsigned delay;  /* the longest $D delay met */
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
static verdict local_recipient(rcpt_req *q)
{
    const sl_directory *dir = q->s->conf->directory;
    strvec targets = {0};
    char err[256] = "";
    sl_result rc = dir_expand(dir, q->addr, &targets, err, sizeof err);
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

/* recipient_verdict - the decision for q->addr, recipients added on acceptance. */
static verdict recipient_verdict(rcpt_req *q)
{
    smtp_sess *s = q->s;
    verdict v;
    if (s->n_rcpts >= s->conf->opt.max_recipients) return verdict_refuse(VERDICT_RCPT_LIMIT, true, q->addr);
    access_verdict ov = orig_access(q, &v);
    if (ov == ACCESS_REJECT || ov == ACCESS_TEMP) return v;
    verdict_free(&v);
    const char *domain = strrchr(q->addr, '@') + 1;
    if (dir_domain_is_local(s->conf->directory, domain)) return local_recipient(q);
    if (!s->client_internal && !s->auth_user && ov != ACCESS_ALLOW && !q->postmaster) /* no open relay */
        return verdict_refuse(VERDICT_RELAY_DENIED, false, q->addr);
    return route_one(q, q->addr);
}

void policy_decide_rcpt(policy_sess *ps, const smtp_cmd *cmd)
{
    smtp_sess *s = ps->s;
    rcpt_req q = {ps, s, cmd, NULL, false, 0};
    q.postmaster = !cmd->path.domain || !cmd->path.domain[0];
    q.addr = q.postmaster ? conf_postmaster(&s->conf->opt) : smtp_addr_format(&cmd->path);
    verdict v = recipient_verdict(&q);
    if (q.delay > v.delay_ms) v.delay_ms = q.delay;
    if (v.cls == VERDICT_OK)
        log_info(s->id, "rcpt", "to=<%s> code=250", q.addr);
    else
        log_info(s->id, "rcpt_rejected", "to=<%s> code=%d class=%s", q.addr, verdict_code(&v),
                 verdict_class_name(v.cls));
    char *addr = q.addr; /* v.subject points into it until the answer is made */
    policy_answer(ps, &v);
    free(addr);
}

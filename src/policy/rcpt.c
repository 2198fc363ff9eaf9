/*
 * rcpt.c - the RCPT TO decision: the recipient limit, ORIG_SEND_ACCESS/ORIG_MAIL_ACCESS on the
 * address as given, the directory for local domains (users, aliases, groups, statuses), relay
 * control for the others, then rewriting and SEND_ACCESS/MAIL_ACCESS for every final address.
 * For a local domain: the domain's status, the entry's status (Messaging Server's rules,
 * policy/status.h), the size limits of domain and entry (SIZE= refused at once, otherwise
 * checked per recipient at the end of data), then the expansion. An address that expands to
 * several is accepted all or nothing. The directory may answer later: the decision is a chain
 * of callbacks (domain, entry, the group's LDAP URL broadcaster lists if any, expansion) that
 * ends in rcpt_finish.
 */
#include "conf/conf.h"
#include "core/log.h"
#include "dir/dir.h"
#include "policy/access.h"
#include "policy/decide.h"
#include "policy/fleet.h"
#include "policy/group.h"
#include "policy/milter_stage.h"
#include "policy/status.h"
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
    uint64_t max_size;   /* the smallest size limit met (0 = none) */
    verdict v;           /* the decision, kept while the reject mode may ask DNS */
    bool hold;           /* a status says: accept, then hold */
    char *optin[DIR_OPTINS]; /* scanner opt-ins of the domain, then the entry (which wins) */
    char *sieve;             /* the entry's own Sieve filter */
    struct {             /* a group whose broadcaster lists hold LDAP URLs, while the directory is asked */
        dir_entry *entry;
        strvec urls, addrs;
        char *dn;
        sl_result *rc;
        struct url_ask *asks;
        size_t pending;
    } grp;
} rcpt_req;

/* One LDAP URL question of a group stage. */
struct url_ask {
    rcpt_req *q;
    size_t i;
};

/* rcpt_req_free - release q. */
static void rcpt_req_free(rcpt_req *q)
{
    for (size_t i = 0; i < DIR_OPTINS; i++) free(q->optin[i]);
    free(q->sieve);
    free(q->addr);
    free(q);
}

/* take_optins - the directory's opt-ins of one level (domain, then entry) into q. */
static void take_optins(rcpt_req *q, char *optin[DIR_OPTINS])
{
    for (size_t i = 0; i < DIR_OPTINS; i++) {
        if (!optin[i]) continue;
        free(q->optin[i]);
        q->optin[i] = optin[i];
        optin[i] = NULL;
    }
}

/* optins_line - q's opt-ins as the session keeps them ("N\tSTRING\n" lines), or NULL. */
static char *optins_line(const rcpt_req *q)
{
    strbuf b;
    sb_init(&b);
    for (size_t i = 0; i < DIR_OPTINS; i++)
        if (q->optin[i]) sb_printf(&b, "%zu\t%s\n", i + 1, q->optin[i]);
    return b.len ? sb_steal(&b) : (sb_free(&b), NULL);
}

static void rcpt_finish(rcpt_req *q, verdict *v);

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
    access_conn ac = {s->server_ip, s->server_port, s->client_ip, s->client_port, s->helo};
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

/* rcpts_settle - the recipients added since before take the size limit, and go to the hold
 * channel when a status said hold. */
static verdict rcpts_settle(rcpt_req *q, size_t before)
{
    smtp_sess *s = q->s;
    const sl_channel *hold = q->hold ? conf_channel_by_name(s->conf, "hold") : NULL;
    if (q->hold && !hold) {
        log_error(s->id, "hold_channel_missing", "to=<%s> note=\"a status says hold, but sluice.cnf has no channel hold\"",
                  q->addr);
        verdict v = verdict_refuse(VERDICT_MAILBOX_STATUS, true, q->addr);
        verdict_set_text(&v, "mailbox on hold");
        return v;
    }
    for (size_t i = before; i < s->n_rcpts; i++) {
        s->rcpts[i].max_size = q->max_size;
        s->rcpts[i].optins = optins_line(q);
        s->rcpts[i].sieve = xstrdup(q->sieve);
        if (!hold) continue;
        free(s->rcpts[i].channel);
        s->rcpts[i].channel = xstrdup(hold->name);
    }
    return verdict_ok();
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
        log_warn(q->s->id, "rcpt_expand_failed", "to=<%s> backend=%s error=\"%s\"", q->addr, dir_backend_name(q->ps->dir),
                 err && *err ? err : "lookup failed");
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
    if (v.cls == VERDICT_OK) v = rcpts_settle(q, before);
    if (v.cls != VERDICT_OK) smtp_sess_truncate_rcpts(q->s, before); /* all or nothing */
    sv_free(&targets);
    return v;
}

/* rcpt_milters_done - the milters' answer to an accepted recipient: a refusal takes back the
 * addresses it added. */
static void rcpt_milters_done(policy_sess *ps, verdict *v)
{
    if (v->cls != VERDICT_OK) smtp_sess_truncate_rcpts(ps->s, ps->rcpt_before);
    policy_answer(ps, v);
}

/* rcpt_answer - log the decision, answer the session and let the request go. */
static void rcpt_answer(void *arg, verdict *v)
{
    rcpt_req *q = arg;
    policy_sess *ps = q->ps;
    if (!ps) { /* the session ended while the directory or DNS was asked */
        verdict_free(v);
        rcpt_req_free(q);
        return;
    }
    ps->rcpt = NULL;
    if (q->delay > v->delay_ms) v->delay_ms = q->delay;
    if (q->max_size || q->hold)
        log_debug(q->s->id, "rcpt_limits", "to=<%s> max_size=%llu hold=%s", q->addr, (unsigned long long)q->max_size,
                  q->hold ? "yes" : "no");
    if (v->cls == VERDICT_OK)
        log_info(q->s->id, "rcpt", "to=<%s> code=250", q->addr);
    else
        log_info(q->s->id, "rcpt_rejected", "to=<%s> code=%d class=%s", q->addr, verdict_code(v),
                 verdict_class_name(v->cls));
    char *addr = q->addr; /* the verdict's subject points into it until the answer is made */
    verdict answer = *v;  /* v may live in q */
    q->addr = NULL;
    rcpt_req_free(q);
    if (answer.cls == VERDICT_OK && milters_active(ps)) { /* the milters have the last word */
        verdict_free(&answer);
        milters_rcpt(ps, addr, &ps->s->ask_cmd, rcpt_milters_done);
    } else {
        policy_answer(ps, &answer);
    }
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

/* lookup_failed - a directory lookup that could not answer: always temporary. */
static verdict lookup_failed(rcpt_req *q, const char *what)
{
    verdict v = verdict_refuse(VERDICT_LOOKUP_FAILED, true, q->addr);
    char *text = xasprintf("<%s>: Recipient %s lookup failed, try again later", q->addr, what);
    verdict_set_text(&v, text);
    free(text);
    return v;
}

/* status_verdict - a non-active status of class cls (domain or mailbox); hold only marks q. */
static verdict status_verdict(rcpt_req *q, char *const values[2], verdict_class cls, const char *reject_text)
{
    const char *word;
    enum entry_status st = status_of(values, &word);
    if (st == STATUS_HOLD) q->hold = true;
    if (st == STATUS_ACTIVE || st == STATUS_HOLD) return verdict_ok();
    verdict v = verdict_refuse(cls, st == STATUS_TEMP, q->addr);
    char *text = xasprintf("%s %s", cls == VERDICT_DOMAIN_STATUS ? "domain" : "mailbox", word);
    verdict_set_text(&v, reject_text ? reject_text : text);
    free(text);
    return v;
}

/* limit_blocks - lower q's size limit to blocks of block_size bytes (0 = no limit). */
static void limit_blocks(rcpt_req *q, uint64_t blocks, uint64_t bytes)
{
    uint64_t bs = q->s->conf->opt.block_size;
    uint64_t lim = blocks ? (blocks > UINT64_MAX / bs ? UINT64_MAX : blocks * bs) : 0;
    if (bytes && (!lim || bytes < lim)) lim = bytes;
    if (lim && (!q->max_size || lim < q->max_size)) q->max_size = lim;
}

/* size_verdict - a declared SIZE over the recipient's limit is refused at once. */
static verdict size_verdict(rcpt_req *q)
{
    smtp_sess *s = q->s;
    if (!q->max_size || q->max_size >= s->conf->opt.max_message_size) q->max_size = 0; /* the global limit rules */
    if (!q->max_size || !s->mail_size || s->mail_size <= q->max_size) return verdict_ok();
    return verdict_refuse(VERDICT_RCPT_SIZE, false, q->addr);
}

/* group_verdict - the group's submission rules for this sender (policy/group.h), with the
 * answers about its LDAP URL lists in q->grp; on refusal *v is the reply (mailRejectText when the
 * group has one). */
static enum group_decision group_verdict(rcpt_req *q, const dir_entry *g, verdict *v)
{
    smtp_sess *s = q->s;
    group_sender who = {s->sender ? s->sender : "", s->auth_user, q->ps->sender.dn, &q->grp.urls, q->grp.rc};
    const char *why;
    enum group_decision d = group_decide(g, &who, &why);
    if (d == GROUP_TEMP) {
        log_warn(s->id, "group_unknown", "to=<%s> from=<%s> reason=\"%s\"", q->addr, who.from, why);
        *v = lookup_failed(q, "group authorisation");
    } else if (d != GROUP_ALLOW) {
        log_info(s->id, "group_refused", "to=<%s> from=<%s> reason=\"%s\" action=%s", q->addr, who.from, why,
                 d == GROUP_MODERATE ? "moderator" : "reject");
    }
    if (d == GROUP_REFUSE) {
        *v = verdict_refuse(VERDICT_GROUP_AUTH, false, q->addr);
        if (g->reject_text) verdict_set_text(v, g->reject_text);
    }
    return d;
}

/* group_stage_free - forget the group stage's state (the entry is freed by whoever holds it). */
static void group_stage_free(rcpt_req *q)
{
    sv_free(&q->grp.urls);
    sv_free(&q->grp.addrs);
    free(q->grp.dn);
    free(q->grp.rc);
    free(q->grp.asks);
    memset(&q->grp, 0, sizeof q->grp);
}

/* entry_decided - status and size are settled (v): the group's rules, then the moderators or the
 * expansion; e is freed here. */
static void entry_decided(rcpt_req *q, dir_entry *e, verdict v)
{
    enum group_decision g = v.cls == VERDICT_OK && e->is_group ? group_verdict(q, e, &v) : GROUP_ALLOW;
    group_stage_free(q); /* before anything that may answer (and free q) */
    if (g == GROUP_MODERATE) { /* the moderators get it instead of the members */
        strvec mods = {0};
        for (size_t i = 0; i < e->moderators.n; i++) sv_push(&mods, e->moderators.v[i]);
        v = local_recipient(q, SL_OK, mods, "");
    } else if (v.cls == VERDICT_OK) {
        dir_entry_free(e);
        free(e);
        dir_expand(q->ps->dir, q->addr, rcpt_expanded, q);
        return;
    }
    dir_entry_free(e);
    free(e);
    rcpt_finish(q, &v);
}

/* group_stage_done - every URL of the group is answered (or the session is gone). */
static void group_stage_done(rcpt_req *q)
{
    dir_entry *e = q->grp.entry;
    q->grp.entry = NULL;
    if (!q->ps) {
        group_stage_free(q);
        dir_entry_free(e);
        free(e);
        verdict ok = verdict_ok();
        return rcpt_finish(q, &ok);
    }
    entry_decided(q, e, verdict_ok());
}

/* group_url_known - the directory's answer about one LDAP URL broadcaster list. */
static void group_url_known(void *arg, sl_result rc, const char *why)
{
    struct url_ask *a = arg;
    rcpt_req *q = a->q;
    q->grp.rc[a->i] = rc;
    if (rc == SL_TEMP && q->ps)
        log_warn(q->s->id, "group_url_failed", "to=<%s> url=\"%s\" backend=%s error=\"%s\"", q->addr,
                 q->grp.urls.v[a->i], dir_backend_name(q->ps->dir), why && *why ? why : "lookup failed");
    if (--q->grp.pending == 0) group_stage_done(q);
}

/* group_stage_start - ask the directory about each LDAP URL of group e (urls, taken) for this
 * sender; the decision goes on in group_stage_done. */
static void group_stage_start(rcpt_req *q, dir_entry *e, strvec urls)
{
    smtp_sess *s = q->s;
    q->grp.entry = e;
    q->grp.urls = urls;
    if (s->sender && *s->sender) sv_push(&q->grp.addrs, s->sender);
    if (s->auth_user && strchr(s->auth_user, '@') && !sv_contains_ci(&q->grp.addrs, s->auth_user))
        sv_push(&q->grp.addrs, s->auth_user);
    q->grp.dn = q->ps->sender.dn ? xstrdup(q->ps->sender.dn) : NULL;
    q->grp.rc = xcalloc(urls.n, sizeof *q->grp.rc);
    q->grp.asks = xcalloc(urls.n, sizeof *q->grp.asks);
    q->grp.pending = urls.n + 1; /* answers may come before dir_url_match returns */
    dir_who who = {&q->grp.addrs, q->grp.dn};
    sl_dir *dir = q->ps->dir;
    for (size_t i = 0; i < urls.n; i++) {
        q->grp.asks[i] = (struct url_ask){q, i};
        dir_url_match(dir, q->grp.urls.v[i], &who, group_url_known, &q->grp.asks[i]);
    }
    if (--q->grp.pending == 0) group_stage_done(q);
}

/* rcpt_entry_known - the recipient's entry: its status and limits, a group's rules, then its
 * expansion. */
static void rcpt_entry_known(void *arg, sl_result rc, dir_entry *e)
{
    rcpt_req *q = arg;
    verdict v = verdict_ok();
    if (q->ps && rc == SL_TEMP) {
        v = lookup_failed(q, "address");
    } else if (q->ps && rc == SL_PERM) {
        v = str_has_prefix_ci(q->addr, "postmaster@") ? verdict_ok() : verdict_refuse(VERDICT_UNKNOWN_USER, false, q->addr);
        if (v.cls == VERDICT_OK) { /* RFC 5321: the postmaster is always accepted */
            strvec one = {0};
            sv_push(&one, q->addr);
            v = local_recipient(q, SL_OK, one, "");
        }
    } else if (q->ps) {
        log_debug(q->s->id, "rcpt_entry", "to=<%s> dn=\"%s\" kind=%s status=%s/%s max_blocks=%llu", q->addr, e->dn,
                  e->is_group ? "group" : "user", e->status[0] ? e->status[0] : "-", e->status[1] ? e->status[1] : "-",
                  (unsigned long long)e->msg_max_blocks);
        v = status_verdict(q, e->status, VERDICT_MAILBOX_STATUS, e->reject_text);
        take_optins(q, e->optin);
        free(q->sieve);
        q->sieve = e->sieve;
        e->sieve = NULL;
        limit_blocks(q, e->msg_max_blocks, e->msg_max_bytes);
        if (v.cls == VERDICT_OK) v = size_verdict(q);
        dir_entry *mine = xmalloc(sizeof *mine); /* the answer is ours until a later stage frees it */
        *mine = *e;
        strvec urls = {0};
        if (v.cls == VERDICT_OK && e->is_group) group_urls(e, &urls);
        if (urls.n) return group_stage_start(q, mine, urls);
        return entry_decided(q, mine, v);
    }
    if (rc == SL_OK) dir_entry_free(e);
    rcpt_finish(q, &v);
}

/* rcpt_domain_known - whether the recipient's domain is ours (its status and limits, then the
 * entry), or relay control. */
static void rcpt_domain_known(void *arg, sl_result rc, dir_domain_info *info)
{
    rcpt_req *q = arg;
    smtp_sess *s = q->s;
    verdict v = verdict_ok();
    if (!q->ps) {
        dir_domain_info_free(info);
        rcpt_finish(q, &v);
    } else if (rc == SL_OK) {
        if (info) {
            log_debug(s->id, "rcpt_domain", "domain=%s local=yes status=%s/%s max_blocks=%llu", info->name,
                      info->status[0] ? info->status[0] : "-", info->status[1] ? info->status[1] : "-",
                      (unsigned long long)info->msg_max_blocks);
            v = status_verdict(q, info->status, VERDICT_DOMAIN_STATUS, NULL);
            limit_blocks(q, info->msg_max_blocks, 0);
            take_optins(q, info->optin);
            dir_domain_info_free(info);
        }
        if (v.cls == VERDICT_OK) dir_lookup(q->ps->dir, q->addr, rcpt_entry_known, q);
        else rcpt_finish(q, &v);
    } else if (rc == SL_TEMP) {
        log_debug(s->id, "rcpt_domain", "domain=%s local=unknown", strrchr(q->addr, '@') + 1);
        v = lookup_failed(q, "domain");
        rcpt_finish(q, &v);
    } else {
        if (!s->client_internal && !s->auth_user && q->orig != ACCESS_ALLOW && !q->postmaster) /* no open relay */
            v = verdict_refuse(VERDICT_RELAY_DENIED, false, q->addr);
        else
            v = route_one(q, q->addr);
        rcpt_finish(q, &v);
    }
}

/* recipient_limits - max_recipients, then the sender's recipient limit and cutoff (from the
 * directory, policy/sender.c); true with *v set when this RCPT is refused for them. */
static bool recipient_limits(rcpt_req *q, verdict *v)
{
    policy_sess *ps = q->ps;
    smtp_sess *s = q->s;
    const sender_info *si = &ps->sender;
    ps->rcpt_attempts++;
    if (!ps->cutoff_hit && si->rcpt_cutoff && ps->rcpt_attempts > si->rcpt_cutoff) {
        ps->cutoff_hit = true; /* the transaction is refused: nothing accepted so far is kept */
        smtp_sess_truncate_rcpts(s, 0);
        log_info(s->id, "rcpt_cutoff", "from=<%s> cutoff=%u", s->sender ? s->sender : "", si->rcpt_cutoff);
    }
    if (ps->cutoff_hit) *v = verdict_refuse(VERDICT_RCPT_CUTOFF, false, q->addr);
    else if (s->n_rcpts >= s->conf->opt.max_recipients || (si->rcpt_limit && s->n_rcpts >= si->rcpt_limit))
        *v = verdict_refuse(VERDICT_RCPT_LIMIT, true, q->addr);
    else return false;
    return true;
}

/* rcpt_finish - the decision is made: the reject mode (policy/fleet.h) has the last word. */
static void rcpt_finish(rcpt_req *q, verdict *v)
{
    q->v = *v;
    if (!q->ps) return rcpt_answer(q, &q->v);
    fleet_apply(q->ps->p->fleet, q->s->conf, &q->v, strrchr(q->addr, '@') + 1, rcpt_answer, q);
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
    ps->rcpt_before = s->n_rcpts;
    verdict v;
    if (recipient_limits(q, &v)) return rcpt_finish(q, &v);
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

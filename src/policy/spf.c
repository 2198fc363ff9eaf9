/*
 * spf.c - SPF (RFC 7208) at MAIL FROM: when option.dat spf_check is on, the client's address,
 * HELO name and the envelope sender are checked (spf/spf.h) before the sender is looked up in
 * the directory. The result is kept on the session, logged ("spf" event) and written into the
 * message as a Received-SPF: field above our Received:. With spf_fail_action=reject a fail is
 * refused (550 5.7.23 with the domain's explanation) and a temperror deferred (451 4.7.24,
 * never a 5xx); every other result, and every result with spf_fail_action=none, is recorded
 * only. An Authentication-Results: field (RFC 8601, authserv-id = host_name) with the spf=
 * clause goes with it. Local submissions, authenticated clients and clients inside internal_networks are not
 * checked (they are ours, not strangers speaking for a domain). Loop thread only.
 */
#include "conf/conf.h"
#include "core/log.h"
#include "policy/decide.h"
#include "spf/spf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* One check in progress (ps->spf_job). */
typedef struct spf_job {
    policy_sess *ps;
    spf_req *req;
    void (*done)(policy_sess *ps);
    spf_query q;
    char *from, *helo;
} spf_job;

/* job_free - release j. */
static void job_free(spf_job *j)
{
    free(j->from);
    free(j->helo);
    free(j);
}

/* spf_log - the "spf" log line of a result. */
static void spf_log(const smtp_sess *s, const spf_result *r, const char *from)
{
    log_info(s->id, "spf", "result=%s identity=%s from=<%s> client=%s domain=\"%s\" mechanism=\"%s\" problem=\"%s\"",
             spf_res_name(r->result), r->identity, from, s->client_ip, r->domain ? r->domain : "",
             r->mechanism ? r->mechanism : "", r->problem ? r->problem : "");
}

/* spf_done - the result: record it, then refuse or go on. */
static void spf_done(void *arg, const spf_result *r)
{
    spf_job *j = arg;
    policy_sess *ps = j->ps;
    ps->spf_job = NULL;
    smtp_sess *s = ps->s;
    ps->spf_result = (int)r->result;
    spf_log(s, r, j->from);
    strbuf hdr;
    sb_init(&hdr);
    spf_received_header(r, &j->q, &hdr);
    sb_printf(&hdr, "Authentication-Results: %s;\r\n\t", s->conf->opt.hostname);
    spf_auth_results(r, &j->q, &hdr);
    sb_puts(&hdr, "\r\n");
    smtp_sess_set_trace(s, hdr.data);
    sb_free(&hdr);
    void (*done)(policy_sess *) = j->done;
    if (s->conf->opt.spf_fail_action == SPF_ACTION_REJECT &&
        (r->result == SPF_FAIL || r->result == SPF_TEMPERROR)) {
        char *subject = j->from; /* the verdict borrows it until answered */
        j->from = NULL;
        verdict v = verdict_refuse(r->result == SPF_FAIL ? VERDICT_SPF_FAIL : VERDICT_SPF_TEMP, false, subject);
        if (r->result == SPF_FAIL && r->explanation) verdict_set_text(&v, r->explanation);
        smtp_sess_set_trace(s, NULL);
        job_free(j);
        policy_answer(ps, &v); /* may free the session */
        free(subject);
        return;
    }
    job_free(j);
    done(ps);
}

/* client_addr - the session's client address as a sockaddr; false when it does not parse. */
static bool client_addr(const smtp_sess *s, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, s->client_ip, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s->client_ip, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return true;
    }
    return false;
}

void policy_spf_check(policy_sess *ps, const char *from, void (*done)(policy_sess *ps))
{
    smtp_sess *s = ps->s;
    ps->spf_result = -1;
    smtp_sess_set_trace(s, NULL);
    struct sockaddr_storage ip;
    if (!s->conf->opt.spf_check || s->local || s->auth_user || s->client_internal || !ps->p->ctx->dns ||
        !client_addr(s, &ip))
        return done(ps);
    spf_job *j = xcalloc(1, sizeof *j);
    j->ps = ps;
    j->done = done;
    j->from = xstrdup(from);
    j->helo = xstrdup(s->helo ? s->helo : "");
    j->q = (spf_query){.ip = ip, .mail_from = j->from, .helo = j->helo, .receiver = s->conf->opt.hostname,
                       .now = now_unix()};
    /* an answer that needs no DNS runs spf_done inside spf_check (NULL back; ps may be gone) */
    ps->spf_job = j;
    spf_req *req = spf_check(ps->p->ctx->dns, &j->q, spf_done, j);
    if (req) j->req = req;
}

void policy_spf_abandon(policy_sess *ps)
{
    spf_job *j = ps->spf_job;
    spf_cancel(j->req); /* spf_done will not run */
    job_free(j);
    ps->spf_job = NULL;
}

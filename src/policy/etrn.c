/*
 * etrn.c - the two RFC decisions of the SMTP server that are not about a recipient (decide.h):
 * ETRN (RFC 1985), allowed by the ETRN_ACCESS mapping table and carried out by the scheduler
 * through the hook the daemon registers in sl_ctx (queue_run), and NO-SOLICITING (RFC 3865),
 * MAIL FROM's SOLICIT= keywords against the source channel's sourcenosolicit list.
 * Loop thread only.
 */
#include "conf/conf.h"
#include "core/log.h"
#include "policy/access.h"
#include "policy/decide.h"
#include "rewrite/mapping.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* etrn_allowed - ETRN_ACCESS on the session and node; without the table only clients inside
 * internal_networks may start a queue. A refusal is left in *v. */
static bool etrn_allowed(const smtp_sess *s, const char *node, verdict *v)
{
    if (!s->conf->mappings || !mappings_has_table(s->conf->mappings, "ETRN_ACCESS")) {
        if (s->client_internal) return true;
        *v = verdict_refuse(VERDICT_ETRN_DENIED, false, node);
        return false;
    }
    access_conn ac = {s->server_ip, s->server_port, s->client_ip, s->client_port, s->helo};
    char *probe = access_etrn_probe(&ac, s->src_channel, node);
    verdict t;
    access_verdict r = access_check(s->conf->mappings, "ETRN_ACCESS", probe, "", 459, "access denied", &t);
    free(probe);
    if (r == ACCESS_NONE || r == ACCESS_ALLOW) {
        verdict_free(&t);
        return true;
    }
    *v = verdict_refuse(t.cls == VERDICT_LOOKUP_FAILED ? VERDICT_ETRN_FAILED : VERDICT_ETRN_DENIED, false, node);
    if (t.text) verdict_set_text(v, t.text);
    v->delay_ms = t.delay_ms;
    v->table = t.table;
    verdict_free(&t);
    return false;
}

void policy_decide_etrn(policy_sess *ps, const smtp_cmd *cmd)
{
    smtp_sess *s = ps->s;
    sl_ctx *ctx = ps->p->ctx;
    const char *node = cmd->arg;
    verdict v = verdict_ok();
    if (etrn_allowed(s, node, &v)) {
        int n = ctx->queue_run && !ctx->stopping ? ctx->queue_run(ctx->queue_run_arg, node) : -1;
        log_info(s->id, "etrn", "client=[%s] node=\"%s\" messages=%d", s->client_ip, node, n);
        if (n < 0) {
            v = verdict_refuse(VERDICT_ETRN_FAILED, true, node);
        } else if (n == 0) {
            v = verdict_refuse(VERDICT_ETRN_NONE, false, node);
        } else {
            char num[24];
            snprintf(num, sizeof num, "%d", n);
            v = verdict_refuse(VERDICT_ETRN_STARTED, false, node);
            verdict_set_text(&v, num);
        }
    }
    policy_answer(ps, &v);
}

/* solicit_match - the first of the comma-separated keywords of solicit that a glob of list matches, into out. */
static bool solicit_match(const strvec *list, const char *solicit, char *out, size_t outlen)
{
    char *copy = xstrdup(solicit), *save = NULL;
    bool hit = false;
    for (char *w = strtok_r(copy, ",", &save); w && !hit; w = strtok_r(NULL, ",", &save))
        for (size_t i = 0; i < list->n && !hit; i++)
            if (fnmatch(list->v[i], w, FNM_CASEFOLD) == 0) {
                snprintf(out, outlen, "%s", w);
                hit = true;
            }
    free(copy);
    return hit;
}

bool policy_solicit_refused(const smtp_sess *s, const smtp_cmd *cmd, verdict *v)
{
    if (!cmd->solicit) return false;
    const sl_channel *ch = conf_channel_by_name(s->conf, s->src_channel);
    char kw[SMTP_SOLICIT_MAX + 1];
    if (!ch || !ch->nosolicit.n || !solicit_match(&ch->nosolicit, cmd->solicit, kw, sizeof kw)) return false;
    *v = verdict_refuse(VERDICT_SOLICIT, false, NULL);
    log_info(s->id, "solicit_refused", "client=[%s] solicit=\"%s\" keyword=\"%s\"", s->client_ip, cmd->solicit, kw);
    return true;
}

/*
 * milter_stage.c - the session's milter chain (see milter_stage.h).
 */
#include "policy/milter_stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/log.h"
#include "rewrite/rewrite.h"
#include "rewrite/route.h"
#include "scan/milter_io.h"

/* One milter of the session. */
typedef struct {
    struct milter_set *set;
    unsigned n;            /* scanner index, 0-based */
    milter_conn *conn;     /* NULL: never opened, or dropped */
    bool gone;             /* failed or closed: not asked again in this session */
    bool session_done;     /* accepted at connect or HELO: nothing more in this session */
    bool txn_done;         /* accepted or discarded in this transaction */
} milter_link;

typedef struct milter_set {
    policy_sess *ps;
    milter_link *l;
    size_t n, cur;
    enum milter_stage stage;
    /* the stage's arguments (copies) */
    char *arg;
    strvec args;
    milter_done_fn done;
    void (*msg_done)(policy_sess *ps, milter_outcome *o);
    milter_outcome out;    /* the message stage's outcome so far; .v for every stage */
    strbuf msg;            /* the message as the chain changes it */
    bool msg_changed;
    bool busy;             /* a stage is going through the chain */
    strvec notes;          /* X-Sluice-Scan lines of the optional milters lost in this session */
    char macro_i[40];      /* the queue id macro value */
} milter_set;

bool milters_wanted(const smtp_sess *s)
{
    const sl_channel *src = conf_channel_by_name(s->conf, s->src_channel);
    for (unsigned n = 0; src && n < SL_SCANNERS; n++)
        if (s->conf->opt.scanners[n].kind == SL_SCANNER_MILTER && src->src_scan[n]) return true;
    return false;
}

/* set_new - the session's chain, one link per milter its source channel opts into. */
static milter_set *set_new(policy_sess *ps)
{
    smtp_sess *s = ps->s;
    milter_set *ms = xcalloc(1, sizeof *ms);
    ms->ps = ps;
    const sl_channel *src = conf_channel_by_name(s->conf, s->src_channel);
    for (unsigned n = 0; src && n < SL_SCANNERS; n++) {
        if (s->conf->opt.scanners[n].kind != SL_SCANNER_MILTER || !src->src_scan[n]) continue;
        ms->l = xrealloc(ms->l, (ms->n + 1) * sizeof *ms->l);
        memset(&ms->l[ms->n], 0, sizeof ms->l[ms->n]);
        ms->l[ms->n].set = ms;
        ms->l[ms->n++].n = n;
    }
    return ms;
}

bool milters_active(const policy_sess *ps)
{
    const milter_set *ms = ps->milters;
    for (size_t i = 0; ms && i < ms->n; i++)
        if (!ms->l[i].gone && !ms->l[i].session_done && !ms->l[i].txn_done) return true;
    return false;
}

/* ---- macros ---- */

/* macros - the Sendmail macros of a stage (values borrowed from the session). */
static size_t macros(const milter_set *ms, enum milter_stage st, milter_macro *out, size_t cap)
{
    const smtp_sess *s = ms->ps->s;
    size_t n = 0;
#define M(k, v)                                                                                                        \
    do {                                                                                                               \
        if (n < cap && (v)) out[n++] = (milter_macro){k, v};                                                           \
    } while (0)
    switch (st) {
    case MILTER_STAGE_CONNECT:
        M("j", s->conf->opt.hostname);
        M("{daemon_name}", s->service);
        M("{client_addr}", s->client_ip);
        M("{client_name}", s->client_ip);
        M("{if_addr}", s->server_ip);
        break;
    case MILTER_STAGE_HELO: M("{tls_version}", s->tls_active ? s->tls_info : NULL); break;
    case MILTER_STAGE_MAIL:
        M("{auth_authen}", s->auth_user);
        M("{mail_addr}", ms->arg);
        break;
    case MILTER_STAGE_RCPT: M("{rcpt_addr}", ms->arg); break;
    default: M("i", ms->macro_i); break;
    }
#undef M
    return n;
}

/* ---- walking the chain ---- */

static void chain_next(milter_set *ms);

/* link_usable - whether link l takes part in the current stage. */
static bool link_usable(const milter_link *l, enum milter_stage st)
{
    if (l->gone || l->session_done) return false;
    if (st == MILTER_STAGE_RCPT || st == MILTER_STAGE_MESSAGE) return !l->txn_done;
    return true;
}

/* chain_end - the stage went through the chain (or stopped at a refusal): tell the caller. */
static void chain_end(milter_set *ms)
{
    policy_sess *ps = ms->ps;
    ms->busy = false;
    free(ms->arg);
    ms->arg = NULL;
    sv_free(&ms->args);
    if (ms->stage == MILTER_STAGE_MESSAGE) {
        milter_outcome *o = xcalloc(1, sizeof *o);
        *o = ms->out;
        memset(&ms->out, 0, sizeof ms->out);
        for (size_t i = 0; i < ms->notes.n; i++) sv_push(&o->notes, ms->notes.v[i]);
        if (ms->msg_changed) smtp_sess_set_content(ps->s, &ms->msg);
        sb_free(&ms->msg);
        ms->msg_changed = false;
        return ms->msg_done(ps, o);
    }
    verdict v = ms->out.v;
    memset(&ms->out, 0, sizeof ms->out);
    ms->done(ps, &v);
}

/* refuse - a milter refused the stage: the reply from its action (and its own reply line). */
static void refuse(milter_set *ms, const milter_link *l, const milter_reply *r)
{
    bool temp = r->action == MILTER_TEMPFAIL;
    verdict v = verdict_refuse(VERDICT_MILTER, temp, NULL);
    if (r->action == MILTER_REPLYCODE && r->line) {
        int code = atoi(r->line);
        const char *p = r->line + 3;
        while (*p == ' ' || *p == '-') p++;
        char status[12] = "";
        int used = 0;
        unsigned a, b, c;
        if (sscanf(p, "%1u.%3u.%3u%n", &a, &b, &c, &used) == 3 && (p[used] == ' ' || !p[used])) {
            snprintf(status, sizeof status, "%u.%u.%u", a, b, c);
            p += used;
            while (*p == ' ') p++;
        }
        v.temp = code / 100 == 4;
        v.code = code;
        verdict_set_status(&v, status);
        const char *crlf = strstr(p, "\r\n"); /* one line of the milter's text */
        char *text = crlf ? xstrndup(p, (size_t)(crlf - p)) : xstrdup(p);
        if (*text) verdict_set_text(&v, text);
        free(text);
    }
    static const char *const stages[] = {"optneg", "connect", "helo", "mail", "rcpt", "message"};
    log_info(ms->ps->s->id, "milter_refused", "scanner=%u stage=%s action=%s reply=\"%s\"", l->n + 1,
             stages[ms->stage], milter_action_name(r->action), r->line ? r->line : "");
    verdict_free(&ms->out.v);
    ms->out.v = v;
    ms->cur = ms->n; /* the chain stops here */
}

/* link_failed - the milter cannot be asked: optional ones are skipped for the session, a required
 * one refuses with 451 4.7.1. */
static void link_failed(milter_set *ms, milter_link *l, const char *reason)
{
    const sl_scanner *sc = &ms->ps->s->conf->opt.scanners[l->n];
    char *why = xstrdup(reason); /* the reason lives in the connection closed below */
    l->gone = true;
    if (l->conn) milter_conn_close(l->conn);
    l->conn = NULL;
    log_warn(ms->ps->s->id, "milter_unavailable", "scanner=%u optional=%s error=\"%s\"", l->n + 1,
             sc->optional ? "yes" : "no", why ? why : "");
    if (sc->optional) {
        sv_push_owned(&ms->notes, xasprintf("X-Sluice-Scan: spamfilter%u not scanned (%s)", l->n + 1,
                                                why ? why : "failed"));
        free(why);
        return;
    }
    free(why);
    verdict_free(&ms->out.v);
    ms->out.v = verdict_refuse(VERDICT_SCAN_FAILED, true, NULL);
    ms->cur = ms->n;
}

/* unbracket - an address as a milter sends it ("<a@b>" or "a@b") without its brackets; caller frees. */
static char *unbracket(const char *a)
{
    char *s = xstrdup(a + (a[0] == '<'));
    size_t n = strlen(s);
    if (n && s[n - 1] == '>') s[n - 1] = '\0';
    return s;
}

/* apply_mods - the message stage's changes to the message, recipients and sender. */
static void apply_mods(milter_set *ms, const milter_link *l, const milter_mods *mods)
{
    smtp_sess *s = ms->ps->s;
    if (mods->n_hdr || mods->body_replaced) {
        strbuf out;
        sb_init(&out);
        const char *cur = ms->msg_changed ? ms->msg.data : s->data.data;
        size_t len = ms->msg_changed ? ms->msg.len : s->data.len;
        milter_mods_apply(cur, len, mods, &out);
        sb_free(&ms->msg);
        ms->msg = out;
        ms->msg_changed = true;
        log_info(s->qid, "milter_changed", "scanner=%u headers=%zu body=%s", l->n + 1, mods->n_hdr,
                 mods->body_replaced ? "replaced" : "kept");
    }
    for (size_t i = 0; i < mods->del_rcpts.n; i++) {
        char *addr = unbracket(mods->del_rcpts.v[i]);
        for (size_t k = s->n_rcpts; k-- > 0;)
            if (str_ieq(s->rcpts[k].orig, addr) || str_ieq(s->rcpts[k].addr, addr)) smtp_sess_remove_rcpt(s, k);
        log_info(s->qid, "milter_delrcpt", "scanner=%u to=<%s>", l->n + 1, addr);
        free(addr);
    }
    for (size_t i = 0; i < mods->add_rcpts.n; i++) {
        char *addr = unbracket(mods->add_rcpts.v[i]);
        rw_result rw;
        memset(&rw, 0, sizeof rw);
        if (rewrite_address(s->conf, addr, s->src_channel, &rw, NULL) == SL_OK) {
            char *dest = route_dest_host(&rw);
            smtp_sess_add_rcpt(s, rw.addr, addr, NULL, rw.channel->name, dest, 0);
            free(dest);
            log_info(s->qid, "milter_addrcpt", "scanner=%u to=<%s> channel=%s", l->n + 1, addr, rw.channel->name);
        } else {
            log_warn(s->qid, "milter_addrcpt_failed", "scanner=%u to=<%s> error=\"%s\"", l->n + 1, addr,
                     rw.error ? rw.error : "");
        }
        rw_result_free(&rw);
        free(addr);
    }
    if (mods->chgfrom) {
        char *from = unbracket(mods->chgfrom);
        log_info(s->qid, "milter_chgfrom", "scanner=%u from=<%s>", l->n + 1, from);
        smtp_sess_set_sender(s, from);
        free(from);
    }
}

/* on_answer - one milter answered the current stage. */
static void on_answer(void *arg, const milter_reply *r)
{
    milter_link *l = arg;
    milter_set *ms = l->set;
    switch (r->action) {
    case MILTER_CONTINUE: break;
    case MILTER_ACCEPT:
        if (ms->stage == MILTER_STAGE_CONNECT || ms->stage == MILTER_STAGE_HELO) l->session_done = true;
        else if (ms->stage != MILTER_STAGE_RCPT) l->txn_done = true;
        break;
    case MILTER_DISCARD:
        l->txn_done = true;
        ms->out.discard = true;
        break;
    case MILTER_QUARANTINE:
        free(ms->out.quarantine);
        ms->out.quarantine = xstrdup(r->reason ? r->reason : "milter");
        break;
    case MILTER_REJECT:
    case MILTER_TEMPFAIL:
    case MILTER_REPLYCODE: refuse(ms, l, r); break;
    default: link_failed(ms, l, r->reason); break;
    }
    if (ms->stage == MILTER_STAGE_MESSAGE && r->mods && ms->out.v.cls == VERDICT_OK && r->action != MILTER_DISCARD)
        apply_mods(ms, l, r->mods);
    if (ms->cur < ms->n) ms->cur++;
    chain_next(ms);
}

/* on_open - the connection is negotiated (or not): send CONNECT. */
static void on_open(void *arg, const milter_reply *r)
{
    milter_link *l = arg;
    milter_set *ms = l->set;
    if (r->action != MILTER_CONTINUE) {
        link_failed(ms, l, r->reason ? r->reason : "negotiation failed");
        if (ms->cur < ms->n) ms->cur++;
        return chain_next(ms);
    }
    smtp_sess *s = ms->ps->s;
    milter_macro mac[8];
    size_t n = macros(ms, MILTER_STAGE_CONNECT, mac, 8);
    milter_conn_connect(l->conn, s->client_ip, s->client_ip, s->client_port, mac, n, on_answer, l);
}

/* ask - send the current stage to link l. */
static void ask(milter_set *ms, milter_link *l)
{
    smtp_sess *s = ms->ps->s;
    milter_macro mac[8];
    size_t n = macros(ms, ms->stage, mac, 8);
    const char *const *args = (const char *const *)ms->args.v;
    switch (ms->stage) {
    case MILTER_STAGE_CONNECT: {
        scan_target t;
        const sl_scanner *sc = &s->conf->opt.scanners[l->n];
        memset(&t, 0, sizeof t);
        t.kind = SCAN_MILTER;
        t.host = sc->host;
        t.port = sc->port;
        t.unix_path = sc->unix_path;
        t.timeout = sc->timeout;
        l->conn = milter_conn_open(ms->ps->p->ctx->base, &t, s->id, on_open, l);
        break;
    }
    case MILTER_STAGE_HELO: milter_conn_helo(l->conn, ms->arg, mac, n, on_answer, l); break;
    case MILTER_STAGE_MAIL: milter_conn_mail(l->conn, ms->arg, args, ms->args.n, mac, n, on_answer, l); break;
    case MILTER_STAGE_RCPT: milter_conn_rcpt(l->conn, ms->arg, args, ms->args.n, mac, n, on_answer, l); break;
    case MILTER_STAGE_MESSAGE: {
        const char *msg = ms->msg_changed ? ms->msg.data : s->data.data;
        size_t len = ms->msg_changed ? ms->msg.len : s->data.len;
        milter_conn_message(l->conn, msg, len, NULL, 0, mac, n, mac, n, on_answer, l);
        break;
    }
    default: break;
    }
}

static void chain_next(milter_set *ms)
{
    while (ms->cur < ms->n && !link_usable(&ms->l[ms->cur], ms->stage)) ms->cur++;
    if (ms->cur >= ms->n) return chain_end(ms);
    milter_link *l = &ms->l[ms->cur];
    if (ms->stage != MILTER_STAGE_CONNECT && !l->conn) { /* not opened (the chain stopped at connect) */
        l->gone = true;
        ms->cur++;
        return chain_next(ms);
    }
    ask(ms, l);
}

/* chain_start - send stage st through the chain from its first milter. */
static void chain_start(policy_sess *ps, enum milter_stage st, const char *arg, milter_done_fn done)
{
    milter_set *ms = ps->milters;
    ms->stage = st;
    ms->cur = 0;
    ms->done = done;
    ms->busy = true;
    ms->arg = xstrdup(arg);
    ms->out.v = verdict_ok();
    chain_next(ms);
}

/* answer_now - no milter takes part: the stage is accepted as it is. */
static void answer_now(policy_sess *ps, milter_done_fn done)
{
    verdict v = verdict_ok();
    done(ps, &v);
}

void milters_connect(policy_sess *ps, milter_done_fn done)
{
    if (!milters_wanted(ps->s)) return answer_now(ps, done);
    if (!ps->milters) ps->milters = set_new(ps);
    chain_start(ps, MILTER_STAGE_CONNECT, NULL, done);
}

void milters_helo(policy_sess *ps, const char *helo, milter_done_fn done)
{
    if (!ps->milters) return answer_now(ps, done);
    chain_start(ps, MILTER_STAGE_HELO, helo, done);
}

/* esmtp_args - the ESMTP parameters of cmd as a milter sees them ("SIZE=100"). */
static void esmtp_args(const smtp_cmd *cmd, strvec *out)
{
    static const char *const bodies[] = {NULL, "7BIT", "8BITMIME", "BINARYMIME"};
    if (cmd->has_size) sv_push_owned(out, xasprintf("SIZE=%llu", (unsigned long long)cmd->size));
    if (cmd->body && cmd->body < 4) sv_push_owned(out, xasprintf("BODY=%s", bodies[cmd->body]));
    if (cmd->smtputf8) sv_push(out, "SMTPUTF8");
    if (cmd->ret) sv_push(out, cmd->ret == DSN_RET_FULL ? "RET=FULL" : "RET=HDRS");
}

void milters_mail(policy_sess *ps, const smtp_cmd *cmd, milter_done_fn done)
{
    milter_set *ms = ps->milters;
    if (!ms) return answer_now(ps, done);
    for (size_t i = 0; i < ms->n; i++) ms->l[i].txn_done = false; /* a new transaction */
    char *from = cmd->path.is_null ? xstrdup("<>") : NULL;
    if (!from) {
        char *a = smtp_addr_format(&cmd->path);
        from = xasprintf("<%s>", a);
        free(a);
    }
    snprintf(ms->macro_i, sizeof ms->macro_i, "%s", ps->s->qid);
    esmtp_args(cmd, &ms->args);
    chain_start(ps, MILTER_STAGE_MAIL, from, done);
    free(from);
}

void milters_rcpt(policy_sess *ps, const char *addr, const smtp_cmd *cmd, milter_done_fn done)
{
    milter_set *ms = ps->milters;
    if (!ms || !milters_active(ps)) return answer_now(ps, done);
    char *to = xasprintf("<%s>", addr);
    chain_start(ps, MILTER_STAGE_RCPT, to, done);
    (void)cmd;
    free(to);
}

void milters_message(policy_sess *ps, void (*done)(policy_sess *ps, milter_outcome *o))
{
    milter_set *ms = ps->milters;
    if (!ms || !milters_active(ps)) {
        milter_outcome *o = xcalloc(1, sizeof *o);
        o->v = verdict_ok();
        for (size_t i = 0; ms && i < ms->notes.n; i++) sv_push(&o->notes, ms->notes.v[i]);
        return done(ps, o);
    }
    ms->msg_done = done;
    snprintf(ms->macro_i, sizeof ms->macro_i, "%s", ps->s->qid);
    chain_start(ps, MILTER_STAGE_MESSAGE, NULL, NULL);
}

void milter_outcome_free(milter_outcome *o)
{
    if (!o) return;
    verdict_free(&o->v);
    free(o->quarantine);
    sv_free(&o->notes);
    free(o);
}

void milters_close(policy_sess *ps)
{
    milter_set *ms = ps->milters;
    if (!ms) return;
    for (size_t i = 0; i < ms->n; i++)
        if (ms->l[i].conn) milter_conn_close(ms->l[i].conn);
    free(ms->arg);
    sv_free(&ms->args);
    verdict_free(&ms->out.v);
    free(ms->out.quarantine);
    sv_free(&ms->out.notes);
    sv_free(&ms->notes);
    sb_free(&ms->msg);
    free(ms->l);
    free(ms);
    ps->milters = NULL;
}

/*
 * server.c - ESMTP server session engine (see server.h).
 *
 * Commands are handled by a table of verbs, each with a check of the session state and a
 * handler. DATA content goes through a byte scanner that only recognises CRLF "." CRLF as the
 * end, undoes dot-stuffing, and flags bare CR, bare LF, NUL, over-long lines and over-size
 * content; a flagged message is refused as a whole at the end, so nothing after a smuggled
 * end-of-data marker is ever read as a command.
 */
#include "smtp/server.h"
#include "core/log.h"
#include "core/metrics.h"
#include "smtp/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { D_LINE_START, D_DOT, D_DOT_CR, D_MID, D_CR };

static void txn_reset(smtp_sess *s);
static size_t smtp_sess_feed_all(smtp_sess *s, const char *buf, size_t len);
static void commit_reply(smtp_sess *s, sl_result res, const char *err);

smtp_sess *smtp_sess_new(const sl_conf *conf, const smtp_server_ops *ops, void *ops_arg, const smtp_sess_info *info)
{
    smtp_sess *s = xcalloc(1, sizeof *s);
    s->conf = conf;
    s->ops = ops;
    snprintf(s->id, sizeof s->id, "%s", info->id);
    s->service = xstrdup(info->service ? info->service : "");
    s->src_channel = xstrdup(info->src_channel);
    snprintf(s->client_ip, sizeof s->client_ip, "%s", info->client_ip);
    snprintf(s->server_ip, sizeof s->server_ip, "%s", info->server_ip ? info->server_ip : "");
    s->client_port = info->client_port;
    s->server_port = info->server_port;
    s->client_internal = info->client_internal;
    s->conns_service = info->conns_service;
    s->conns_client = info->conns_client;
    s->local = info->local;
    s->local_uid = info->local_uid;
    s->loop_token = info->loop_token && *info->loop_token ? xstrdup(info->loop_token) : NULL;
    s->tls_offered = info->tls_offered;
    s->tls_required = info->tls_required;
    s->auth_offered = info->auth_offered;
    s->auth_plain = info->auth_plain;
    s->auth_required = info->auth_required;
    s->state = SESS_CMD;
    s->ops_ctx = ops->open ? ops->open(ops_arg, s) : ops_arg;
    return s;
}

void smtp_sess_free(smtp_sess *s)
{
    if (!s) return;
    if (s->ops->close) s->ops->close(s->ops_ctx);
    txn_reset(s);
    smtp_cmd_free(&s->ask_cmd);
    free(s->ask_user);
    free(s->rcpts);
    free(s->service);
    free(s->src_channel);
    free(s->loop_token);
    free(s->helo);
    free(s->auth_user);
    free(s->auth_login_user);
    sb_free(&s->out);
    sb_free(&s->line);
    sb_free(&s->data);
    free(s);
}

void smtp_sess_reply(smtp_sess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&s->out, fmt, ap);
    va_end(ap);
    sb_puts(&s->out, "\r\n");
}

static void sess_close(smtp_sess *s)
{
    s->closing = true;
    s->state = SESS_CLOSED;
}

/* reject_count - count a refusal in the metrics: the verdict class from why ("class=NAME ...",
 * "protocol" when the engine refused by itself) and the enhanced status code of text (else its code). */
static void reject_count(const char *text, const char *why)
{
    char cls[32] = "protocol", code[16] = "";
    const char *c = why ? strstr(why, "class=") : NULL;
    if (c) snprintf(cls, sizeof cls, "%.*s", (int)strcspn(c + 6, " "), c + 6);
    const char *enh = strlen(text) > 4 ? text + 4 : "";
    size_t n = strspn(enh, "0123456789.");
    if (n >= 5 && n < sizeof code && enh[1] == '.' && (enh[n] == ' ' || !enh[n])) snprintf(code, sizeof code, "%.*s", (int)n, enh);
    else snprintf(code, sizeof code, "%.3s", text);
    metric_add(&METRIC_REJECTS, (const char *const[]){cls, code}, 1);
}

/* reply_refusal - a 4xx/5xx reply to a command, logged with why (NULL or "key=value ..."); counts
 * towards max_errors. */
static void reply_refusal(smtp_sess *s, const char *cmdname, const char *text, const char *why)
{
    smtp_sess_reply(s, "%s", text);
    reject_count(text, why);
    log_info(s->id, "reject", "client=[%s] cmd=%s%s%s reply=\"%s\"", s->client_ip, cmdname, why ? " " : "",
             why ? why : "", text);
    if (++s->errors >= s->conf->opt.max_errors && s->state != SESS_CLOSED) {
        smtp_sess_reply(s, "421 4.7.0 %s Too many errors, closing connection", s->conf->opt.hostname);
        log_info(s->id, "disconnect", "client=[%s] reason=too_many_errors", s->client_ip);
        sess_close(s);
    }
}

/* reply_error - a protocol error (or a refusal without a cause to log). */
static void reply_error(smtp_sess *s, const char *cmdname, const char *text)
{
    reply_refusal(s, cmdname, text, NULL);
}

void smtp_sess_add_rcpt(smtp_sess *s, const char *addr, const char *orig, const char *orcpt, const char *channel,
                        const char *host, unsigned notify)
{
    if (s->n_rcpts == s->cap_rcpts) {
        s->cap_rcpts = s->cap_rcpts ? s->cap_rcpts * 2 : 8;
        s->rcpts = xrealloc(s->rcpts, s->cap_rcpts * sizeof *s->rcpts);
    }
    qrcpt_init(&s->rcpts[s->n_rcpts++], addr, orig, orcpt, channel, host, notify);
}

void smtp_sess_truncate_rcpts(smtp_sess *s, size_t n)
{
    for (size_t i = n; i < s->n_rcpts; i++) qrcpt_clear(&s->rcpts[i]);
    if (n < s->n_rcpts) s->n_rcpts = n;
}

void smtp_sess_remove_rcpt(smtp_sess *s, size_t i)
{
    if (i >= s->n_rcpts) return;
    qrcpt_clear(&s->rcpts[i]);
    memmove(&s->rcpts[i], &s->rcpts[i + 1], (s->n_rcpts - i - 1) * sizeof *s->rcpts);
    s->n_rcpts--;
}

void smtp_sess_set_sender(smtp_sess *s, const char *sender)
{
    free(s->sender);
    s->sender = xstrdup(sender ? sender : "");
}

void smtp_sess_set_content(smtp_sess *s, strbuf *content)
{
    sb_free(&s->data);
    s->data = *content;
    memset(content, 0, sizeof *content);
}

static void txn_reset(smtp_sess *s)
{
    smtp_sess_truncate_rcpts(s, 0);
    free(s->sender);
    free(s->envid);
    s->sender = s->envid = NULL;
    s->has_mail = false;
    s->mail_size = 0;
    s->body = BODY_UNSET;
    s->smtputf8 = false;
    s->ret = DSN_RET_UNSET;
    s->qid[0] = '\0';
    free(s->trace);
    s->trace = NULL;
    sb_free(&s->data);
    s->hdr_len = 0;
    s->too_big = s->bare_eol = s->long_line = s->has_nul = false;
    s->bdat_left = 0;
    s->bdat_last = s->bdat_error = s->bdat_mode = false;
    s->bdat_prev_cr = 0;
}

/* ask - hand a decision to the decider; the engine takes no input until smtp_sess_answer.
 * The command (if any) moves into the session until then. */
static void ask(smtp_sess *s, enum smtp_stage stage, smtp_cmd *c, const char *user, const char *pass)
{
    s->state = SESS_DECIDE;
    s->ask_stage = stage;
    if (c) {
        s->ask_cmd = *c;
        memset(c, 0, sizeof *c);
        c->verb = s->ask_cmd.verb;
    }
    free(s->ask_user);
    s->ask_user = user ? xstrdup(user) : NULL;
    smtp_ask q = {stage, c ? &s->ask_cmd : NULL, user, pass};
    s->ops->decide(s->ops_ctx, s, &q);
}

void smtp_sess_connect(smtp_sess *s)
{
    bool outer = !s->in_engine;
    s->in_engine = true;
    ask(s, SMTP_STAGE_CONNECT, NULL, NULL, NULL);
    if (outer) s->in_engine = false;
}

void smtp_sess_greet(smtp_sess *s)
{
    s->greet_wanted = true;
    if (s->connect_ok && s->state != SESS_CLOSED) smtp_sess_reply(s, "220 %s ESMTP Sluice", s->conf->opt.hostname);
}

void smtp_sess_set_resume(smtp_sess *s, void (*fn)(void *), void *arg)
{
    s->resume = fn;
    s->resume_arg = arg;
}

void smtp_sess_pregreet(smtp_sess *s)
{
    smtp_sess_reply(s, "554 5.5.0 %s Protocol error: you spoke before the greeting", s->conf->opt.hostname);
    log_info(s->id, "reject", "client=[%s] cmd=pregreet reply=\"554 5.5.0\"", s->client_ip);
    sess_close(s);
}

void smtp_sess_timeout(smtp_sess *s)
{
    smtp_sess_reply(s, "421 4.4.2 %s Idle timeout, closing connection", s->conf->opt.hostname);
    log_info(s->id, "disconnect", "client=[%s] reason=timeout", s->client_ip);
    sess_close(s);
}

void smtp_sess_expire(smtp_sess *s, const char *reason)
{
    smtp_sess_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->conf->opt.hostname);
    log_info(s->id, "disconnect", "client=[%s] reason=%s", s->client_ip, reason);
    sess_close(s);
}

bool smtp_sess_in_content(const smtp_sess *s)
{
    return s->state == SESS_DATA || s->state == SESS_BDAT || (s->state == SESS_CMD && s->bdat_mode);
}

void smtp_sess_shutdown(smtp_sess *s)
{
    smtp_sess_reply(s, "421 4.3.2 %s Service shutting down", s->conf->opt.hostname);
    sess_close(s);
}

void smtp_sess_set_trace(smtp_sess *s, const char *lines)
{
    free(s->trace);
    s->trace = lines && *lines ? xstrdup(lines) : NULL;
}

/* begin_content - the transaction enters DATA or BDAT: allocate the id and write Received:. */
static void begin_content(smtp_sess *s)
{
    char date[64];
    s->ops->new_id(s->ops_ctx, s->qid, sizeof s->qid);
    s->ops->date(s->ops_ctx, date, sizeof date);
    sb_reset(&s->data);
    if (s->trace) sb_puts(&s->data, s->trace); /* RFC 7208 §9.1: Received-SPF above our Received: */
    char proto[16];
    snprintf(proto, sizeof proto, "%s%s%s", s->esmtp ? (s->smtputf8 ? "UTF8SMTP" : "ESMTP") : "SMTP",
             s->tls_active ? "S" : "", s->auth_user ? "A" : "");
    if (s->local) /* the uid comes from the kernel (SO_PEERCRED) or the pickup file's owner, not the client */
        sb_printf(&s->data, "Received: from local (uid %u)\r\n\tby %s (Sluice) via sendmail with %s id %s", s->local_uid,
                  s->conf->opt.hostname, proto, s->qid);
    else
        sb_printf(&s->data, "Received: from %s ([%s])\r\n\tby %s (Sluice) with %s id %s", s->helo ? s->helo : "unknown",
                  s->client_ip, s->conf->opt.hostname, proto, s->qid);
    if (s->tls_active) sb_printf(&s->data, "\r\n\t(%s)", s->tls_info);
    if (s->auth_user && !s->local) { /* the identity (printable ASCII only: no header injection) */
        sb_puts(&s->data, "\r\n\t(authenticated sender: ");
        for (const char *p = s->auth_user; *p && p - s->auth_user < 256; p++)
            sb_putc(&s->data, *p > ' ' && *p < 0x7f && *p != '(' && *p != ')' && *p != '\\' ? *p : '_');
        sb_putc(&s->data, ')');
    }
    if (s->n_rcpts == 1) sb_printf(&s->data, "\r\n\tfor <%s>", s->rcpts[0].orig);
    sb_printf(&s->data, ";\r\n\t%s\r\n", date);
    s->hdr_len = s->data.len;
    s->dstate = D_LINE_START;
    s->dline_real = true;
    s->dline_len = 0;
}

/* content_put - append message bytes unless the size limit is already exceeded. */
static void content_put(smtp_sess *s, const char *p, size_t n)
{
    if (s->too_big) return;
    if (s->data.len - s->hdr_len + n > s->conf->opt.max_message_size) {
        s->too_big = true;
        return;
    }
    sb_append(&s->data, p, n);
}

/* content_eol - a line ended (normalised to CRLF when it was bare). */
static void content_eol(smtp_sess *s, bool real)
{
    content_put(s, "\r\n", 2);
    s->dline_len = 0;
    s->dline_real = real;
    s->dstate = D_LINE_START;
    if (!real) s->bare_eol = true;
}

static void content_byte(smtp_sess *s, char c)
{
    if (c == '\0') s->has_nul = true;
    if (++s->dline_len > 998) s->long_line = true;
    content_put(s, &c, 1);
    s->dstate = D_MID;
}

/* content_run - ordinary bytes from buf[start] up to the next CR, LF or NUL, appended at once;
 * returns where the run ends. */
static size_t content_run(smtp_sess *s, const char *buf, size_t start, size_t len)
{
    size_t j = start;
    while (j < len && buf[j] != '\r' && buf[j] != '\n' && buf[j] != '\0') j++;
    s->dline_len += j - start;
    if (s->dline_len > 998) s->long_line = true;
    content_put(s, buf + start, j - start);
    s->dstate = D_MID;
    return j;
}

/* finish_content - the whole message is in: refuse it if flagged, else commit. */
static void finish_content(smtp_sess *s)
{
    const char *why = NULL;
    if (s->too_big)
        why = "552 5.3.4 Message size exceeds fixed maximum message size";
    else if (s->bare_eol && s->conf->opt.bare_eol == BARE_EOL_REJECT)
        why = "550 5.6.0 Message contains a bare CR or LF (RFC 5321 section 2.3.8)";
    else if (s->has_nul)
        why = "550 5.6.0 Message contains NUL characters";
    else if (s->long_line)
        why = "550 5.6.0 Message contains a line longer than 1000 octets";
    if (why) {
        s->state = SESS_CMD;
        reply_error(s, "DATA", why);
        txn_reset(s);
        return;
    }
    s->state = SESS_WAIT_COMMIT;
    s->ops->commit(s->ops_ctx, s);
}

/* feed_data - scan DATA content; returns bytes consumed (stops after the end marker). */
static size_t feed_data(smtp_sess *s, const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        char c = buf[i++];
        switch (s->dstate) {
        case D_LINE_START:
            if (c == '.' && s->dline_real) s->dstate = D_DOT;
            else if (c == '\r') s->dstate = D_CR;
            else if (c == '\n') content_eol(s, false);
            else if (c == '\0') content_byte(s, c);
            else i = content_run(s, buf, i - 1, len);
            break;
        case D_DOT:
            if (c == '\r') s->dstate = D_DOT_CR;
            else if (c == '\n') { /* "." then bare LF: not an end marker */
                content_byte(s, '.');
                content_eol(s, false);
            } else content_byte(s, c); /* dot-stuffing undone */
            break;
        case D_DOT_CR:
            if (c == '\n') {
                finish_content(s);
                return i;
            }
            content_byte(s, '.');
            content_eol(s, false); /* the CR was bare */
            i--;                   /* rescan c at a (soft) line start */
            break;
        case D_MID:
            if (c == '\r') s->dstate = D_CR;
            else if (c == '\n') content_eol(s, false);
            else if (c == '\0') content_byte(s, c);
            else i = content_run(s, buf, i - 1, len);
            break;
        case D_CR:
            if (c == '\n') content_eol(s, true);
            else {
                content_eol(s, false);
                i--;
            }
            break;
        }
    }
    return i;
}

/* bdat_scan - append BDAT bytes with every bare CR and bare LF made a CRLF, as in DATA (and flagged,
 * so that bare_lf=reject refuses the message); flag NUL and long lines. A CR goes in at once and
 * gets its LF added when the next byte, perhaps in the next chunk, is not one. */
static void bdat_scan(smtp_sess *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        bool after_cr = s->bdat_prev_cr;
        if (after_cr && c != '\n') { /* the CR before was bare */
            content_put(s, "\n", 1);
            s->bare_eol = true;
            s->dline_len = 0;
        }
        s->bdat_prev_cr = c == '\r';
        if (c == '\r') {
            content_put(s, "\r", 1);
            i++;
            continue;
        }
        if (c == '\n') {
            if (after_cr) {
                content_put(s, "\n", 1);
            } else { /* a bare LF */
                content_put(s, "\r\n", 2);
                s->bare_eol = true;
            }
            s->dline_len = 0;
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && p[j] != '\r' && p[j] != '\n') j++;
        if (memchr(p + i, '\0', j - i)) s->has_nul = true;
        s->dline_len += j - i;
        if (s->dline_len > 998) s->long_line = true;
        content_put(s, p + i, j - i);
        i = j;
    }
}

static size_t feed_bdat(smtp_sess *s, const char *buf, size_t len)
{
    size_t n = len < s->bdat_left ? len : (size_t)s->bdat_left;
    if (!s->bdat_error) bdat_scan(s, buf, n);
    s->bdat_left -= n;
    if (s->bdat_left) return n;
    s->state = SESS_CMD;
    if (s->bdat_error) {
        txn_reset(s);
        return n;
    }
    if (s->bdat_last) {
        if (s->bdat_prev_cr) { /* the message ends in a bare CR */
            content_put(s, "\n", 1);
            s->bare_eol = true;
        }
        if (s->data.len > s->hdr_len && s->data.data[s->data.len - 1] != '\n' && !s->too_big)
            content_put(s, "\r\n", 2); /* a message ends with a line end */
        finish_content(s);
    } else {
        smtp_sess_reply(s, "250 2.0.0 %zu octets received", s->data.len - s->hdr_len);
    }
    return n;
}

/* ---- command handlers ---- */

static void cmd_helo(smtp_sess *s, smtp_cmd *c)
{
    ask(s, SMTP_STAGE_HELO, c, NULL, NULL);
}

/* ehlo_nosolicit - "NO-SOLICITING [keywords]" (RFC 3865) when the source channel refuses
 * solicitation keywords (sourcenosolicit); the globs among them are not shown. */
static void ehlo_nosolicit(smtp_sess *s)
{
    const sl_channel *ch = conf_channel_by_name(s->conf, s->src_channel);
    if (!ch || !ch->nosolicit.n) return;
    strbuf kw = {0};
    for (size_t i = 0; i < ch->nosolicit.n; i++) {
        const char *w = ch->nosolicit.v[i];
        if (strpbrk(w, "*?")) continue;
        if (kw.len) sb_puts(&kw, ",");
        sb_puts(&kw, w);
    }
    if (kw.len) smtp_sess_reply(s, "250-NO-SOLICITING %s", kw.data);
    else smtp_sess_reply(s, "250-NO-SOLICITING");
    sb_free(&kw);
}

/* helo_accept - the decider let HELO/EHLO through: greet back and list the extensions. */
static void helo_accept(smtp_sess *s, const smtp_cmd *c)
{
    txn_reset(s);
    free(s->helo);
    s->helo = xstrdup(c->arg);
    s->greeted_client = true;
    s->esmtp = c->verb == SMTP_EHLO;
    if (!s->esmtp) {
        smtp_sess_reply(s, "250 %s", s->conf->opt.hostname);
        return;
    }
    smtp_sess_reply(s, "250-%s Hello %s [%s]", s->conf->opt.hostname, c->arg, s->client_ip);
    smtp_sess_reply(s, "250-PIPELINING");
    smtp_sess_reply(s, "250-SIZE %llu", (unsigned long long)s->conf->opt.max_message_size);
    smtp_sess_reply(s, "250-8BITMIME");
    smtp_sess_reply(s, "250-ENHANCEDSTATUSCODES");
    smtp_sess_reply(s, "250-DSN");
    smtp_sess_reply(s, "250-SMTPUTF8");
    if (s->tls_offered && !s->tls_active) smtp_sess_reply(s, "250-STARTTLS");
    if (s->auth_offered && (s->tls_active || s->auth_plain) && !s->auth_user) smtp_sess_reply(s, "250-AUTH PLAIN LOGIN");
    if (s->loop_token && *s->loop_token) smtp_sess_reply(s, "250-XLOOP %s", s->loop_token);
    smtp_sess_reply(s, "250-ETRN");
    ehlo_nosolicit(s);
    smtp_sess_reply(s, "250 CHUNKING");
}

static void cmd_mail(smtp_sess *s, smtp_cmd *c)
{
    if (!s->greeted_client) return reply_error(s, "MAIL", "503 5.5.1 Error: send HELO/EHLO first");
    if (s->has_mail) return reply_error(s, "MAIL", "503 5.5.1 Error: nested MAIL command");
    if (c->path.utf8 && !c->smtputf8)
        return reply_error(s, "MAIL", "553 5.6.7 Non-ASCII address requires SMTPUTF8");
    ask(s, SMTP_STAGE_MAIL, c, NULL, NULL);
}

/* mail_accept - the decider let MAIL through: the transaction begins. */
static void mail_accept(smtp_sess *s, smtp_cmd *c)
{
    s->has_mail = true;
    s->sender = c->path.is_null ? xstrdup("") : smtp_addr_format(&c->path);
    s->mail_size = c->size;
    s->body = c->body;
    s->smtputf8 = c->smtputf8;
    s->ret = c->ret;
    s->envid = c->envid;
    c->envid = NULL;
    smtp_sess_reply(s, "250 2.1.0 Ok");
}

static void cmd_rcpt(smtp_sess *s, smtp_cmd *c)
{
    if (!s->has_mail) return reply_error(s, "RCPT", "503 5.5.1 Error: need MAIL command");
    if (c->path.utf8 && !s->smtputf8)
        return reply_error(s, "RCPT", "553 5.6.7 Non-ASCII address requires SMTPUTF8");
    ask(s, SMTP_STAGE_RCPT, c, NULL, NULL);
}

static void cmd_data(smtp_sess *s, smtp_cmd *c)
{
    (void)c;
    if (!s->has_mail) return reply_error(s, "DATA", "503 5.5.1 Error: need MAIL command");
    if (s->bdat_mode) return reply_error(s, "DATA", "503 5.5.1 Error: DATA after BDAT");
    if (!s->n_rcpts) return reply_error(s, "DATA", "554 5.5.1 Error: no valid recipients");
    begin_content(s);
    s->state = SESS_DATA;
    smtp_sess_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void cmd_bdat(smtp_sess *s, smtp_cmd *c)
{
    s->bdat_left = c->bdat_size;
    s->bdat_last = c->bdat_last;
    s->state = SESS_BDAT;
    const char *err = NULL;
    if (!s->has_mail) err = "503 5.5.1 Error: need MAIL command";
    else if (!s->n_rcpts) err = "554 5.5.1 Error: no valid recipients";
    if (err) {
        /* The chunk still follows on the wire: swallow it, never parse it as commands. */
        s->bdat_error = true;
        reply_error(s, "BDAT", err);
        if (s->state == SESS_CLOSED) return;
        s->state = SESS_BDAT;
        return;
    }
    if (!s->bdat_mode) {
        begin_content(s);
        s->bdat_mode = true;
        s->dline_len = 0;
    }
}

static void cmd_rset(smtp_sess *s, smtp_cmd *c)
{
    (void)c;
    txn_reset(s);
    smtp_sess_reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(smtp_sess *s, smtp_cmd *c)
{
    (void)c;
    smtp_sess_reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(smtp_sess *s, smtp_cmd *c)
{
    (void)c;
    smtp_sess_reply(s, "221 2.0.0 Bye");
    sess_close(s);
}

/* cmd_etrn - ETRN (RFC 1985): outside a mail transaction, asked of the decider, which starts the
 * queue run and gives the 25x line. */
static void cmd_etrn(smtp_sess *s, smtp_cmd *c)
{
    if (!s->greeted_client) return reply_error(s, "ETRN", "503 5.5.1 Error: send HELO/EHLO first");
    if (s->has_mail) return reply_error(s, "ETRN", "503 5.5.1 Error: ETRN inside a mail transaction");
    ask(s, SMTP_STAGE_ETRN, c, NULL, NULL);
}

static void cmd_vrfy(smtp_sess *s, smtp_cmd *c)
{
    (void)c;
    smtp_sess_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_help(smtp_sess *s, smtp_cmd *c)
{
    (void)c;
    smtp_sess_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP ETRN");
}

static void cmd_starttls(smtp_sess *s, smtp_cmd *c)
{
    (void)c;
    if (s->tls_active) return reply_error(s, "STARTTLS", "503 5.5.1 Error: TLS already active");
    if (!s->tls_offered) return reply_error(s, "STARTTLS", "454 4.7.0 TLS not available");
    smtp_sess_reply(s, "220 2.0.0 Ready to start TLS");
    s->state = SESS_STARTTLS;
}

/* auth_result - a complete AUTH exchange: the decider checks the credentials (a missing user
 * name or password is asked about as empty, and refused there). */
static void auth_result(smtp_sess *s, const char *user, const char *pass)
{
    s->auth_mech = s->auth_step = 0;
    ask(s, SMTP_STAGE_AUTH, NULL, user ? user : "", pass ? pass : "");
}

/* auth_answer - the decider's verdict on the credentials. */
static void auth_answer(smtp_sess *s, const smtp_answer *a)
{
    const char *user = s->ask_user ? s->ask_user : "";
    if (a->code / 100 == 2) {
        s->auth_user = xstrdup(user);
        s->auth_failures = 0;
        log_info(s->id, "auth", "client=[%s] user=<%s> result=ok", s->client_ip, user);
        smtp_sess_reply(s, "%s", a->line ? a->line : "235 2.7.0 Authentication successful");
        return;
    }
    if (a->code / 100 == 4) {
        log_info(s->id, "auth", "client=[%s] user=<%s> result=tempfail", s->client_ip, user);
        reply_refusal(s, "AUTH", a->line, a->why);
        return;
    }
    s->auth_failures++;
    log_info(s->id, "auth", "client=[%s] user=<%s> result=failed failures=%u", s->client_ip, user, s->auth_failures);
    s->reply_delay_ms = 1000 * s->auth_failures; /* slow down guessing */
    if (s->auth_failures >= s->conf->opt.auth_max_failures) {
        smtp_sess_reply(s, "%s", a->line);
        smtp_sess_reply(s, "421 4.7.0 %s Too many authentication failures", s->conf->opt.hostname);
        sess_close(s);
        return;
    }
    reply_refusal(s, "AUTH", a->line, a->why);
}

/* auth_plain - "authzid NUL authcid NUL password" (RFC 4616). */
static void auth_plain(smtp_sess *s, const char *b64)
{
    strbuf raw = {0};
    if (b64_decode(b64, strlen(b64), &raw) < 0) {
        sb_free(&raw);
        s->state = SESS_CMD;
        return reply_error(s, "AUTH", "501 5.5.2 Error: malformed base64");
    }
    const char *authz = raw.data ? raw.data : "";
    const char *nul1 = raw.len ? memchr(raw.data, '\0', raw.len) : NULL;
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', raw.len - (size_t)(nul1 + 1 - raw.data)) : NULL;
    bool nul3 = nul2 && memchr(nul2 + 1, '\0', raw.len - (size_t)(nul2 + 1 - raw.data)) != NULL;
    if (!nul2 || nul3 || (*authz && strcmp(authz, nul1 + 1) != 0)) { /* no proxying as someone else */
        explicit_bzero(raw.data ? raw.data : (char *)"", raw.len);
        sb_free(&raw);
        auth_result(s, NULL, NULL);
        return;
    }
    char *user = xstrndup(nul1 + 1, (size_t)(nul2 - nul1 - 1));
    char *pass = xstrndup(nul2 + 1, raw.len - (size_t)(nul2 + 1 - raw.data));
    auth_result(s, user, pass);
    explicit_bzero(pass, strlen(pass));
    explicit_bzero(raw.data, raw.len);
    free(user);
    free(pass);
    sb_free(&raw);
}

/* auth_continue - one continuation line of an AUTH exchange ("*" cancels). */
static void auth_continue(smtp_sess *s, const char *line, size_t len)
{
    if (memchr(line, '\0', len)) { /* base64 never holds a NUL: a truncated line is not an answer */
        s->state = SESS_CMD;
        s->auth_mech = s->auth_step = 0;
        return reply_error(s, "AUTH", "501 5.5.2 Error: malformed base64");
    }
    if (!strcmp(line, "*")) {
        s->state = SESS_CMD;
        s->auth_mech = s->auth_step = 0;
        return reply_error(s, "AUTH", "501 5.0.0 Authentication cancelled");
    }
    if (s->auth_mech == 1) return auth_plain(s, line);
    strbuf raw = {0};
    if (b64_decode(line, strlen(line), &raw) < 0) {
        sb_free(&raw);
        s->state = SESS_CMD;
        return reply_error(s, "AUTH", "501 5.5.2 Error: malformed base64");
    }
    if (memchr(raw.data ? raw.data : "", '\0', raw.len)) { /* a NUL in a LOGIN name or password */
        explicit_bzero(raw.data, raw.len);
        sb_free(&raw);
        free(s->auth_login_user);
        s->auth_login_user = NULL;
        return auth_result(s, NULL, NULL);
    }
    if (s->auth_step == 0) { /* LOGIN: the user name, then the password */
        free(s->auth_login_user);
        s->auth_login_user = xstrndup(raw.data, raw.len);
        s->auth_step = 1;
        smtp_sess_reply(s, "334 UGFzc3dvcmQ6");
    } else {
        char *pass = xstrndup(raw.data, raw.len);
        auth_result(s, s->auth_login_user, pass);
        explicit_bzero(pass, strlen(pass));
        free(pass);
        free(s->auth_login_user);
        s->auth_login_user = NULL;
    }
    explicit_bzero(raw.data ? raw.data : (char *)"", raw.len);
    sb_free(&raw);
}

static void cmd_auth(smtp_sess *s, smtp_cmd *c)
{
    if (!s->auth_offered || !(s->tls_active || s->auth_plain))
        return reply_error(s, "AUTH", s->auth_offered ? "538 5.7.11 Encryption required for requested authentication mechanism"
                                                     : "502 5.5.1 Error: authentication not enabled");
    if (!s->esmtp) return reply_error(s, "AUTH", "503 5.5.1 Error: send EHLO first");
    if (s->auth_user) return reply_error(s, "AUTH", "503 5.5.1 Error: already authenticated");
    if (s->has_mail) return reply_error(s, "AUTH", "503 5.5.1 Error: AUTH not allowed during a mail transaction");
    strvec w = {0};
    str_split_ws(c->arg ? c->arg : "", &w);
    const char *mech = w.n ? w.v[0] : "";
    const char *initial = w.n > 1 ? w.v[1] : NULL;
    if (str_ieq(mech, "PLAIN")) {
        s->auth_mech = 1;
        s->state = SESS_AUTH;
        if (initial && strcmp(initial, "=") != 0) auth_plain(s, initial);
        else if (initial) auth_result(s, NULL, NULL);
        else smtp_sess_reply(s, "334 ");
    } else if (str_ieq(mech, "LOGIN")) {
        s->auth_mech = 2;
        s->auth_step = 0;
        s->state = SESS_AUTH;
        if (initial) auth_continue(s, initial, strlen(initial));
        else smtp_sess_reply(s, "334 VXNlcm5hbWU6");
    } else {
        reply_error(s, "AUTH", "504 5.5.4 Unrecognized authentication type");
    }
    sv_free(&w);
}

void smtp_sess_tls_started(smtp_sess *s, const char *info)
{
    /* RFC 3207: forget everything learnt before TLS, as if the connection had just started */
    txn_reset(s);
    free(s->helo);
    s->helo = NULL;
    s->greeted_client = s->esmtp = false;
    free(s->auth_user);
    s->auth_user = NULL;
    s->tls_active = true;
    snprintf(s->tls_info, sizeof s->tls_info, "%s", info);
    s->state = SESS_CMD;
    sb_reset(&s->line);
    s->skipping = false;
    log_info(s->id, "tls", "client=[%s] %s", s->client_ip, info);
}

static void cmd_unimplemented(smtp_sess *s, smtp_cmd *c)
{
    (void)c;
    reply_error(s, "UNIMPLEMENTED", "502 5.5.1 Error: command not implemented");
}

typedef struct {
    enum smtp_verb verb;
    const char *name;
    void (*handle)(smtp_sess *, smtp_cmd *);
    bool last_in_group; /* RFC 2920: nothing may be pipelined after it */
} verb_entry;

static const verb_entry verbs[] = {
    {SMTP_HELO, "HELO", cmd_helo, true},      {SMTP_EHLO, "EHLO", cmd_helo, true},
    {SMTP_MAIL, "MAIL", cmd_mail, false},     {SMTP_RCPT, "RCPT", cmd_rcpt, false},
    {SMTP_DATA, "DATA", cmd_data, true},      {SMTP_BDAT, "BDAT", cmd_bdat, false},
    {SMTP_RSET, "RSET", cmd_rset, false},     {SMTP_NOOP, "NOOP", cmd_noop, false},
    {SMTP_QUIT, "QUIT", cmd_quit, true},      {SMTP_VRFY, "VRFY", cmd_vrfy, false},
    {SMTP_HELP, "HELP", cmd_help, false},     {SMTP_STARTTLS, "STARTTLS", cmd_starttls, false},
    {SMTP_AUTH, "AUTH", cmd_auth, false},     {SMTP_EXPN, "EXPN", cmd_unimplemented, false},
    {SMTP_ETRN, "ETRN", cmd_etrn, false},
};

static const verb_entry *verb_find(enum smtp_verb v)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(verbs); i++)
        if (verbs[i].verb == v) return &verbs[i];
    return NULL;
}

/* handle_line - one complete command line (without its line end). */
static void handle_line(smtp_sess *s, const char *line, size_t len, bool more_input)
{
    smtp_cmd cmd;
    char reply[512];
    memset(&cmd, 0, sizeof cmd);
    int rc = smtp_cmd_parse(line, len, s->esmtp, &cmd, reply, sizeof reply);
    if (cmd.verb == SMTP_HOSTILE) {
        smtp_sess_reply(s, "554 5.5.0 %s Not an SMTP client, closing connection", s->conf->opt.hostname);
        log_info(s->id, "reject", "client=[%s] cmd=hostile reply=\"554 5.5.0\"", s->client_ip);
        sess_close(s);
    } else if (rc != 0) {
        reply_error(s, cmd.verb == SMTP_UNKNOWN ? "UNKNOWN" : (verb_find(cmd.verb) ? verb_find(cmd.verb)->name : "?"),
                    reply);
        if (cmd.verb == SMTP_BDAT && s->state != SESS_CLOSED) {
            /* the chunk that follows has no known size: none of it may be read as commands */
            log_info(s->id, "disconnect", "client=[%s] reason=bad_bdat", s->client_ip);
            sess_close(s);
        }
    } else {
        const verb_entry *v = verb_find(cmd.verb);
        bool forbidden = more_input && v && (v->last_in_group || !s->esmtp);
        if (forbidden) {
            smtp_sess_reply(s, "554 5.5.0 %s Improper command pipelining after %s", s->conf->opt.hostname, v->name);
            log_info(s->id, "reject", "client=[%s] cmd=%s reply=\"554 5.5.0 improper pipelining\"", s->client_ip,
                     v->name);
            sess_close(s);
        } else if (v) {
            v->handle(s, &cmd);
        } else {
            reply_error(s, "UNKNOWN", "500 5.5.1 Command unrecognized");
        }
    }
    smtp_cmd_free(&cmd);
}

/* feed_cmd - assemble one command line; returns bytes consumed. */
static size_t feed_cmd(smtp_sess *s, const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len);
    size_t take = nl ? (size_t)(nl - buf) + 1 : len;
    if (s->skipping) {
        if (nl) s->skipping = false;
        return take;
    }
    sb_append(&s->line, buf, nl ? take - 1 : take);
    if (s->line.len > SMTP_CMD_LINE_MAX - 2 + 1 /* a trailing CR */) {
        /* Refuse the line and discard it up to its end: its tail is never a command. */
        sb_reset(&s->line);
        s->skipping = nl == NULL;
        reply_error(s, "LONG", "500 5.5.2 Error: line too long");
        return take;
    }
    if (!nl) return take;
    bool crlf = s->line.len && s->line.data[s->line.len - 1] == '\r';
    if (crlf) s->line.data[--s->line.len] = '\0';
    bool bare_cr = memchr(s->line.data ? s->line.data : "", '\r', s->line.len) != NULL;
    if ((!crlf || bare_cr) && s->conf->opt.bare_eol == BARE_EOL_REJECT) {
        sb_reset(&s->line);
        reply_error(s, "BARE", "500 5.5.2 Error: bare CR or LF in command (use CRLF)");
        return take;
    }
    /* The copy keeps every byte (a NUL included) and its true length, so the parser sees what the
     * client sent and refuses it, and the wipe below covers exactly what was allocated. */
    size_t llen = s->line.len;
    char *line = xmemdup0(s->line.data ? s->line.data : "", llen);
    sb_reset(&s->line);
    if (bare_cr) /* normalise: a bare CR inside a command is not allowed either way */
        for (size_t i = 0; i < llen; i++)
            if (line[i] == '\r') line[i] = ' ';
    if (s->state == SESS_AUTH) auth_continue(s, line, llen);
    else handle_line(s, line, llen, take < len);
    explicit_bzero(line, llen);
    free(line);
    return take;
}

/* refusal - a refused command's reply (the decider always gives the line of a refusal). */
static void refusal(smtp_sess *s, const char *cmdname, const smtp_answer *a)
{
    reply_refusal(s, cmdname, a->line ? a->line : "451 4.3.0 Error: no reply from policy", a->why);
}

/* connect_answer - the connect decision: greet (when asked to) or refuse and close. */
static void connect_answer(smtp_sess *s, const smtp_answer *a)
{
    if (a->code / 100 == 2) {
        s->connect_ok = true;
        if (s->greet_wanted) smtp_sess_greet(s);
        return;
    }
    const char *line = a->line ? a->line : "421 4.3.0 Error: no reply from policy";
    smtp_sess_reply(s, "%s", line);
    reject_count(line, a->why);
    log_info(s->id, "reject", "client=[%s] cmd=connect%s%s reply=\"%s\"", s->client_ip, a->why ? " " : "",
             a->why ? a->why : "", line);
    sess_close(s);
}

void smtp_sess_answer(smtp_sess *s, const smtp_answer *a)
{
    if (s->state != SESS_DECIDE) return; /* nothing asked (a stale answer) */
    s->state = SESS_CMD;
    if (a->delay_ms > s->reply_delay_ms) s->reply_delay_ms = a->delay_ms;
    bool ok = a->code / 100 == 2;
    switch (s->ask_stage) {
    case SMTP_STAGE_CONNECT: connect_answer(s, a); break;
    case SMTP_STAGE_HELO: ok ? helo_accept(s, &s->ask_cmd) : refusal(s, s->ask_cmd.verb == SMTP_EHLO ? "EHLO" : "HELO", a); break;
    case SMTP_STAGE_MAIL: ok ? mail_accept(s, &s->ask_cmd) : refusal(s, "MAIL", a); break;
    case SMTP_STAGE_RCPT:
        if (ok) smtp_sess_reply(s, "%s", a->line ? a->line : "250 2.1.5 Ok");
        else refusal(s, "RCPT", a);
        break;
    case SMTP_STAGE_AUTH: auth_answer(s, a); break;
    case SMTP_STAGE_ETRN:
        if (ok) smtp_sess_reply(s, "%s", a->line ? a->line : "250 2.0.0 Queuing started");
        else refusal(s, "ETRN", a);
        break;
    }
    if (a->disconnect && s->state != SESS_CLOSED) sess_close(s);
    smtp_cmd_free(&s->ask_cmd);
    free(s->ask_user);
    s->ask_user = NULL;
    if (!s->in_engine && s->resume) s->resume(s->resume_arg); /* may free s: nothing after this */
}

size_t smtp_sess_feed(smtp_sess *s, const char *buf, size_t len)
{
    bool outer = !s->in_engine;
    s->in_engine = true;
    size_t used = smtp_sess_feed_all(s, buf, len);
    if (outer) s->in_engine = false;
    return used;
}

/* smtp_sess_feed_all - the body of smtp_sess_feed. */
static size_t smtp_sess_feed_all(smtp_sess *s, const char *buf, size_t len)
{
    size_t used = 0;
    while (used < len) {
        size_t n;
        switch (s->state) {
        case SESS_CMD:
        case SESS_AUTH: n = feed_cmd(s, buf + used, len - used); break;
        case SESS_DATA: n = feed_data(s, buf + used, len - used); break;
        case SESS_BDAT: n = feed_bdat(s, buf + used, len - used); break;
        default: return used;
        }
        used += n;
    }
    /* A zero-length BDAT chunk completes without any bytes following it. */
    if (s->state == SESS_BDAT && s->bdat_left == 0) feed_bdat(s, buf + used, 0);
    return used;
}

void smtp_sess_commit_done(smtp_sess *s, sl_result res, const char *err)
{
    if (s->state != SESS_WAIT_COMMIT) return;
    commit_reply(s, res, err);
    if (!s->in_engine && s->resume) s->resume(s->resume_arg); /* may free s */
}

void smtp_sess_commit_refused(smtp_sess *s, const char *line)
{
    if (s->state != SESS_WAIT_COMMIT) return;
    s->state = SESS_CMD;
    reply_error(s, "DATA", line);
    if (s->state != SESS_CLOSED) txn_reset(s);
    if (!s->in_engine && s->resume) s->resume(s->resume_arg); /* may free s */
}

/* commit_reply - the reply to the end of data, and a fresh transaction. */
static void commit_reply(smtp_sess *s, sl_result res, const char *err)
{
    s->state = SESS_CMD;
    if (res == SL_OK) {
        smtp_sess_reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
        metric_add(&METRIC_MESSAGES_RECEIVED, (const char *const[]){s->src_channel}, 1);
        metric_add(&METRIC_RCPTS_RECEIVED, (const char *const[]){s->src_channel}, s->n_rcpts);
    } else if (res == SL_PERM) {
        reply_error(s, "DATA", err && *err ? err : "554 5.0.0 Transaction failed");
    } else {
        log_error(s->id, "queue_error", "error=\"%s\"", err ? err : "");
        bool full = err && (strstr(err, "No space left") || strstr(err, "quota exceeded"));
        reply_error(s, "DATA", full ? "452 4.3.1 Error: insufficient system storage" : "451 4.3.0 Error: queue file write error");
    }
    if (s->state != SESS_CLOSED) txn_reset(s);
}

bool smtp_sess_accepts_input(const smtp_sess *s)
{
    return s->state == SESS_CMD || s->state == SESS_AUTH || s->state == SESS_DATA || s->state == SESS_BDAT;
}

bool smtp_sess_waiting(const smtp_sess *s)
{
    return s->state == SESS_DECIDE || s->state == SESS_WAIT_COMMIT;
}

const char *smtp_sess_output(const smtp_sess *s, size_t *len)
{
    *len = s->out.len;
    return s->out.len ? s->out.data : NULL;
}

void smtp_sess_output_clear(smtp_sess *s)
{
    sb_reset(&s->out);
}

unsigned smtp_sess_take_delay(smtp_sess *s)
{
    unsigned d = s->out.len ? s->reply_delay_ms : 0;
    if (d) s->reply_delay_ms = 0;
    return d;
}

bool smtp_sess_closing(const smtp_sess *s)
{
    return s->closing;
}

bool smtp_sess_closed(const smtp_sess *s)
{
    return s->state == SESS_CLOSED;
}

bool smtp_sess_wants_tls(const smtp_sess *s)
{
    return s->state == SESS_STARTTLS;
}

const char *smtp_sess_id(const smtp_sess *s)
{
    return s->id;
}

const char *smtp_sess_client_ip(const smtp_sess *s)
{
    return s->client_ip;
}

void smtp_sess_set_channel(smtp_sess *s, const char *channel)
{
    free(s->src_channel);
    s->src_channel = xstrdup(channel);
}

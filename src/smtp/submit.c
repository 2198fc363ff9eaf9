/*
 * submit.c - local submission envelope, pickup file and client engine (see submit.h).
 *
 * The engine is a table of steps, each with the handler of the reply to what it sent: the
 * greeting, EHLO, MAIL, the RCPTs, DATA, the content. Replies are read with the client's reply
 * parser (smtp/client.h), the content is dot-stuffed by its dot-stuffer.
 */
#include "smtp/submit.h"
#include "smtp/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBMIT_LINE_MAX 4096

/* ---- envelope ---- */

void submit_env_free(submit_env *env)
{
    free(env->sender);
    free(env->envid);
    sv_free(&env->rcpts);
    sb_free(&env->content);
    memset(env, 0, sizeof *env);
}

/* put_xtext - "key XTEXT\n". */
static void put_xtext(strbuf *out, const char *key, const char *value)
{
    char *x = xtext_encode(value);
    sb_printf(out, "%s %s\n", key, x);
    free(x);
}

void submit_env_encode(const submit_env *env, strbuf *out)
{
    sb_printf(out, "%s\n", SUBMIT_PICKUP_MAGIC);
    put_xtext(out, "from", env->sender ? env->sender : "");
    for (size_t i = 0; i < env->rcpts.n; i++) put_xtext(out, "rcpt", env->rcpts.v[i]);
    if (env->notify) sb_printf(out, "notify %u\n", env->notify);
    if (env->ret) sb_printf(out, "ret %s\n", env->ret == DSN_RET_FULL ? "full" : "hdrs");
    if (env->envid) put_xtext(out, "envid", env->envid);
    if (env->eight_bit) sb_puts(out, "8bit\n");
    sb_putc(out, '\n');
    if (env->content.len) sb_append(out, env->content.data, env->content.len);
}

/* decode_line - one header line "key [value]" into env; -1 with err when it is not valid. */
static int decode_line(const char *line, submit_env *env, bool *have_from, char *err, size_t errlen)
{
    const char *sp = strchr(line, ' ');
    size_t klen = sp ? (size_t)(sp - line) : strlen(line);
    const char *v = sp ? sp + 1 : "";
    char *text = NULL;
    uint64_t n;
    if (klen == 4 && !strncmp(line, "8bit", 4) && !sp) {
        env->eight_bit = true;
        return 0;
    }
    if (klen == 6 && !strncmp(line, "notify", 6) && parse_uint(v, 1, 15, &n) == 0) {
        env->notify = (unsigned)n;
        return 0;
    }
    if (klen == 3 && !strncmp(line, "ret", 3) && (!strcmp(v, "full") || !strcmp(v, "hdrs"))) {
        env->ret = !strcmp(v, "full") ? DSN_RET_FULL : DSN_RET_HDRS;
        return 0;
    }
    if (sp && (text = xtext_decode(v, strlen(v))) != NULL && !strpbrk(text, "\r\n<>")) {
        if (klen == 4 && !strncmp(line, "from", 4) && !*have_from) {
            env->sender = text;
            *have_from = true;
            return 0;
        }
        if (klen == 4 && !strncmp(line, "rcpt", 4) && *text) {
            sv_push_owned(&env->rcpts, text);
            return 0;
        }
        if (klen == 5 && !strncmp(line, "envid", 5) && !env->envid) {
            env->envid = text;
            return 0;
        }
    }
    free(text);
    snprintf(err, errlen, "bad pickup line '%.*s'", (int)(klen < 40 ? klen : 40), line);
    return -1;
}

int submit_env_decode(const char *buf, size_t len, submit_env *env, char *err, size_t errlen)
{
    memset(env, 0, sizeof *env);
    size_t pos = 0;
    bool have_from = false, magic = false;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl || (size_t)(nl - (buf + pos)) > SUBMIT_LINE_MAX) {
            snprintf(err, errlen, "truncated pickup header");
            goto bad;
        }
        size_t n = (size_t)(nl - (buf + pos));
        if (memchr(buf + pos, '\0', n)) {
            snprintf(err, errlen, "NUL in the pickup header");
            goto bad;
        }
        char *line = xstrndup(buf + pos, n);
        pos += n + 1;
        int rc = 0;
        if (!magic) {
            magic = !strcmp(line, SUBMIT_PICKUP_MAGIC);
            if (!magic) snprintf(err, errlen, "not a pickup file");
            rc = magic ? 0 : -1;
        } else if (!*line) {
            free(line);
            break;
        } else {
            rc = decode_line(line, env, &have_from, err, errlen);
        }
        free(line);
        if (rc < 0) goto bad;
    }
    if (!have_from || env->rcpts.n == 0) {
        snprintf(err, errlen, "pickup file without %s", have_from ? "recipients" : "sender");
        goto bad;
    }
    sb_append(&env->content, buf + pos, len - pos);
    return 0;
bad:
    submit_env_free(env);
    return -1;
}

int submit_notify_parse(const char *s, unsigned *out)
{
    strvec items = {0};
    unsigned bits = 0;
    int rc = 0;
    char *copy = xstrdup(s);
    for (char *p = copy; *p; p++)
        if (*p == ',') *p = ' ';
    str_split_ws(copy, &items);
    free(copy);
    for (size_t i = 0; i < items.n && rc == 0; i++) {
        const char *w = items.v[i];
        if (str_ieq(w, "never")) bits |= DSN_NOTIFY_NEVER;
        else if (str_ieq(w, "success")) bits |= DSN_NOTIFY_SUCCESS;
        else if (str_ieq(w, "failure")) bits |= DSN_NOTIFY_FAILURE;
        else if (str_ieq(w, "delay")) bits |= DSN_NOTIFY_DELAY;
        else rc = -1;
    }
    if (items.n == 0 || ((bits & DSN_NOTIFY_NEVER) && bits != DSN_NOTIFY_NEVER)) rc = -1;
    sv_free(&items);
    if (rc == 0) *out = bits;
    return rc;
}

/* ---- engine ---- */

enum submit_step { STEP_GREET, STEP_EHLO, STEP_MAIL, STEP_RCPT, STEP_DATA, STEP_CONTENT, STEP_QUIT };

struct submit {
    const submit_env *env;
    char *helo;
    enum submit_step step;
    size_t rcpt;          /* the RCPT being answered */
    size_t accepted;
    bool any_temp;        /* a recipient was refused with 4xx */
    submit_status status;
    strbuf partial;       /* an unfinished reply line */
    smtp_reply_parser parser;
    char **rcpt_reply;    /* one per recipient (NULL: not asked) */
    int *rcpt_code;
    char *reply;
    char queue_id[32];
};

submit *submit_new(const submit_env *env, const char *helo)
{
    submit *s = xcalloc(1, sizeof *s);
    s->env = env;
    s->helo = xstrdup(helo);
    s->rcpt_reply = xcalloc(env->rcpts.n + 1, sizeof *s->rcpt_reply);
    s->rcpt_code = xcalloc(env->rcpts.n + 1, sizeof *s->rcpt_code);
    smtp_reply_parser_init(&s->parser);
    return s;
}

void submit_free(submit *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->env->rcpts.n; i++) free(s->rcpt_reply[i]);
    free(s->rcpt_reply);
    free(s->rcpt_code);
    free(s->reply);
    free(s->helo);
    sb_free(&s->partial);
    smtp_reply_parser_free(&s->parser);
    free(s);
}

/* is_ascii - whether s has only 7-bit bytes. */
static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s & 0x80) return false;
    return true;
}

/* needs_utf8 - whether the envelope has a non-ASCII address (SMTPUTF8). */
static bool needs_utf8(const submit_env *env)
{
    if (env->sender && !is_ascii(env->sender)) return true;
    for (size_t i = 0; i < env->rcpts.n; i++)
        if (!is_ascii(env->rcpts.v[i])) return true;
    return false;
}

/* send_mail - MAIL FROM with the envelope's parameters. */
static void send_mail(submit *s, strbuf *out)
{
    const submit_env *e = s->env;
    sb_printf(out, "MAIL FROM:<%s>", e->sender ? e->sender : "");
    if (e->eight_bit) sb_puts(out, " BODY=8BITMIME");
    if (needs_utf8(e)) sb_puts(out, " SMTPUTF8");
    if (e->ret) sb_puts(out, e->ret == DSN_RET_FULL ? " RET=FULL" : " RET=HDRS");
    if (e->envid) {
        char *x = xtext_encode(e->envid);
        sb_printf(out, " ENVID=%s", x);
        free(x);
    }
    sb_puts(out, "\r\n");
}

/* send_rcpt - RCPT TO for recipient i. */
static void send_rcpt(submit *s, size_t i, strbuf *out)
{
    unsigned n = s->env->notify;
    sb_printf(out, "RCPT TO:<%s>", s->env->rcpts.v[i]);
    if (n) {
        sb_puts(out, " NOTIFY=");
        if (n & DSN_NOTIFY_NEVER) sb_puts(out, "NEVER");
        const char *names[] = {"SUCCESS", "FAILURE", "DELAY"};
        const unsigned bits[] = {DSN_NOTIFY_SUCCESS, DSN_NOTIFY_FAILURE, DSN_NOTIFY_DELAY};
        bool first = true;
        for (size_t k = 0; k < 3; k++) {
            if (!(n & bits[k])) continue;
            sb_printf(out, "%s%s", first ? "" : ",", names[k]);
            first = false;
        }
    }
    sb_puts(out, "\r\n");
}

/* emit_out - the dot-stuffer's output into a strbuf. */
static void emit_out(void *ctx, const void *p, size_t n)
{
    sb_append(ctx, p, n);
}

/* finish - the submission ends with status, r the deciding reply (NULL: keep the one recorded); QUIT. */
static void finish(submit *s, submit_status status, const smtp_reply *r, strbuf *out)
{
    s->status = status;
    if (r) {
        free(s->reply);
        s->reply = smtp_reply_text(r);
    }
    s->step = STEP_QUIT;
    sb_puts(out, "QUIT\r\n");
}

/* refusal_status - a reply that ends the submission: 4xx temporary, anything else permanent. */
static submit_status refusal_status(int code)
{
    return code / 100 == 4 ? SUBMIT_TEMP : SUBMIT_PERM;
}

/* rcpt_done - the last RCPT was answered: DATA when one was accepted, else the end. */
static void rcpt_done(submit *s, strbuf *out)
{
    if (s->accepted) {
        s->step = STEP_DATA;
        sb_puts(out, "DATA\r\n");
        return;
    }
    finish(s, s->any_temp ? SUBMIT_TEMP : SUBMIT_PERM, NULL, out);
}

/* on_rcpt - the reply to RCPT number s->rcpt. */
static void on_rcpt(submit *s, const smtp_reply *r, strbuf *out)
{
    s->rcpt_code[s->rcpt] = r->code;
    s->rcpt_reply[s->rcpt] = smtp_reply_text(r);
    if (r->code / 100 == 2) {
        s->accepted++;
    } else {
        if (r->code / 100 == 4) s->any_temp = true;
        free(s->reply);
        s->reply = smtp_reply_text(r);
    }
    if (++s->rcpt < s->env->rcpts.n) send_rcpt(s, s->rcpt, out);
    else rcpt_done(s, out);
}

/* on_content - the reply to the end of the content. */
static void on_content(submit *s, const smtp_reply *r, strbuf *out)
{
    if (r->code / 100 != 2) {
        finish(s, refusal_status(r->code), r, out);
        return;
    }
    const char *line = r->lines.n ? r->lines.v[0] : "";
    const char *q = strstr(line, "queued as ");
    if (q) snprintf(s->queue_id, sizeof s->queue_id, "%.*s", (int)strcspn(q + 10, " \t"), q + 10);
    finish(s, SUBMIT_QUEUED, r, out);
}

/* on_reply - one complete reply, to the command of the current step. */
static void on_reply(submit *s, const smtp_reply *r, strbuf *out)
{
    bool ok = r->code / 100 == 2;
    switch (s->step) {
    case STEP_GREET:
        if (!ok) return finish(s, refusal_status(r->code), r, out);
        s->step = STEP_EHLO;
        sb_printf(out, "EHLO %s\r\n", s->helo);
        return;
    case STEP_EHLO:
        if (!ok) return finish(s, refusal_status(r->code), r, out);
        s->step = STEP_MAIL;
        send_mail(s, out);
        return;
    case STEP_MAIL:
        if (!ok) return finish(s, refusal_status(r->code), r, out);
        s->step = STEP_RCPT;
        send_rcpt(s, 0, out);
        return;
    case STEP_RCPT: on_rcpt(s, r, out); return;
    case STEP_DATA:
        if (r->code != 354) return finish(s, refusal_status(r->code), r, out);
        s->step = STEP_CONTENT;
        smtp_client_dot_stuff(s->env->content.data ? s->env->content.data : "", s->env->content.len, emit_out, out);
        return;
    case STEP_CONTENT: on_content(s, r, out); return;
    case STEP_QUIT: return;
    }
}

/* feed_line - one reply line (without CRLF). */
static void feed_line(submit *s, const char *line, size_t len, strbuf *out)
{
    smtp_reply r;
    int rc = smtp_reply_parse_line(&s->parser, line, len, &r);
    if (rc < 0 && s->status == SUBMIT_RUNNING) {
        free(s->reply);
        s->reply = xasprintf("malformed reply from the server: %.*s", (int)(len < 80 ? len : 80), line);
        s->status = SUBMIT_TEMP;
        s->step = STEP_QUIT;
    }
    if (rc != 1) return;
    if (s->status == SUBMIT_RUNNING) on_reply(s, &r, out);
    smtp_reply_free(&r);
}

submit_status submit_feed(submit *s, const char *buf, size_t len, strbuf *out)
{
    sb_append(&s->partial, buf, len);
    size_t start = 0;
    for (;;) {
        const char *p = s->partial.data + start;
        const char *nl = memchr(p, '\n', s->partial.len - start);
        if (!nl) break;
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r') n--;
        feed_line(s, p, n, out);
        start = (size_t)(nl - s->partial.data) + 1;
    }
    size_t rest = s->partial.len - start;
    memmove(s->partial.data, s->partial.data + start, rest);
    s->partial.len = rest;
    s->partial.data[rest] = '\0';
    if (rest > SUBMIT_LINE_MAX && s->status == SUBMIT_RUNNING) {
        free(s->reply);
        s->reply = xstrdup("over-long reply line from the server");
        s->status = SUBMIT_TEMP;
        s->step = STEP_QUIT;
    }
    return s->status;
}

submit_status submit_eof(submit *s)
{
    if (s->status == SUBMIT_RUNNING) {
        s->status = SUBMIT_TEMP;
        if (!s->reply) s->reply = xstrdup("the server closed the connection");
    }
    return s->status;
}

submit_status submit_status_of(const submit *s)
{
    return s->status;
}

const char *submit_reply(const submit *s)
{
    return s->reply ? s->reply : "";
}

const char *submit_queue_id(const submit *s)
{
    return s->queue_id;
}

size_t submit_accepted(const submit *s)
{
    return s->accepted;
}

const char *submit_rcpt_reply(const submit *s, size_t i, int *code)
{
    if (i >= s->env->rcpts.n || !s->rcpt_reply[i]) {
        *code = 0;
        return "";
    }
    *code = s->rcpt_code[i];
    return s->rcpt_reply[i];
}

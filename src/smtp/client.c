/*
 * client.c - pure SMTP client pieces (see client.h): reply and capability parsing, command lines
 * with ESMTP parameters, dot-stuffing and the CRLF lines of BDAT content. The session engine
 * that uses them is client_sess.c.
 */
#include "smtp/client.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"

void smtp_reply_parser_init(smtp_reply_parser *p)
{
    memset(p, 0, sizeof *p);
}

void smtp_reply_parser_free(smtp_reply_parser *p)
{
    smtp_reply_free(&p->cur);
    p->active = false;
}

void smtp_reply_free(smtp_reply *r)
{
    sv_free(&r->lines);
    memset(r, 0, sizeof *r);
}

/* reply_code_parse - the three-digit code at the start of line, or -1. */
static int reply_code_parse(const char *line, size_t len)
{
    if (len < 3) return -1;
    for (int i = 0; i < 3; i++)
        if (!isdigit((unsigned char)line[i])) return -1;
    if (line[0] < '2' || line[0] > '5') return -1;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* digits_span - length of a run of 1..3 digits at s, or 0. */
static size_t digits_span(const char *s)
{
    size_t n = 0;
    while (n < 4 && isdigit((unsigned char)s[n])) n++;
    return n >= 1 && n <= 3 ? n : 0;
}

/* enh_parse - length of an enhanced status code "c.sss.ddd" of class cls at text, or 0. */
static size_t enh_parse(const char *text, int cls)
{
    if (text[0] != '0' + cls || text[1] != '.') return 0;
    size_t i = 2, n = digits_span(text + i);
    if (!n || text[i + n] != '.') return 0;
    i += n + 1;
    n = digits_span(text + i);
    if (!n) return 0;
    i += n;
    return text[i] == ' ' || text[i] == '\0' ? i : 0;
}

int smtp_reply_parse_line(smtp_reply_parser *p, const char *line, size_t len, smtp_reply *out)
{
    int code = reply_code_parse(line, len);
    bool last = len == 3 || (len > 3 && line[3] == ' ');
    bool cont = len > 3 && line[3] == '-';
    if (code < 0 || (!last && !cont) || memchr(line, '\0', len) ||
        (p->active && code != p->cur.code) || p->cur.lines.n >= SMTP_REPLY_MAX_LINES) {
        smtp_reply_parser_free(p);
        return -1;
    }
    char *text = xstrndup(len > 4 ? line + 4 : "", len > 4 ? len - 4 : 0);
    if (!p->active) {
        p->cur.code = code;
        size_t n = enh_parse(text, code / 100);
        if (n && n < sizeof p->cur.enh) {
            memcpy(p->cur.enh, text, n);
            p->cur.enh[n] = '\0';
        }
        p->active = true;
    }
    sv_push_owned(&p->cur.lines, text);
    if (cont) return 0;
    *out = p->cur;
    memset(&p->cur, 0, sizeof p->cur);
    p->active = false;
    return 1;
}

char *smtp_reply_text(const smtp_reply *r)
{
    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "%03d", r->code);
    size_t elen = strlen(r->enh);
    for (size_t i = 0; i < r->lines.n; i++) {
        const char *t = r->lines.v[i];
        /* Continuation lines usually repeat the enhanced code: say it once. */
        if (i > 0 && elen && strncmp(t, r->enh, elen) == 0 && (t[elen] == ' ' || t[elen] == '\0'))
            t += elen + (t[elen] == ' ');
        if (*t) sb_printf(&sb, " %s", t);
    }
    return sb_steal(&sb);
}

void smtp_reply_status(const smtp_reply *r, char *buf, size_t len)
{
    if (r->enh[0])
        snprintf(buf, len, "%s", r->enh);
    else
        snprintf(buf, len, "%d.0.0", r->code / 100);
}

void smtp_caps_parse(const smtp_reply *ehlo, smtp_caps *caps)
{
    memset(caps, 0, sizeof *caps);
    caps->esmtp = true;
    for (size_t i = 1; i < ehlo->lines.n; i++) {
        strvec w = {0};
        if (str_split_ws(ehlo->lines.v[i], &w) == 0) {
            sv_free(&w);
            continue;
        }
        const char *kw = w.v[0];
        if (str_ieq(kw, "PIPELINING")) caps->pipelining = true;
        else if (str_ieq(kw, "8BITMIME")) caps->eightbitmime = true;
        else if (str_ieq(kw, "DSN")) caps->dsn = true;
        else if (str_ieq(kw, "SMTPUTF8")) caps->smtputf8 = true;
        else if (str_ieq(kw, "ENHANCEDSTATUSCODES")) caps->enhancedstatuscodes = true;
        else if (str_ieq(kw, "STARTTLS")) caps->starttls = true;
        else if (str_ieq(kw, "CHUNKING")) caps->chunking = true;
        else if (str_ieq(kw, "XLOOP") && w.n > 1) snprintf(caps->xloop, sizeof caps->xloop, "%s", w.v[1]);
        else if (str_ieq(kw, "SIZE")) {
            uint64_t v;
            caps->size = true;
            caps->size_max = w.n > 1 && parse_uint(w.v[1], 0, UINT64_MAX, &v) == 0 ? v : 0;
        }
        sv_free(&w);
    }
}

/* sb_put_xtext - append " KEY=" and the xtext of value. */
static void sb_put_xtext(strbuf *sb, const char *key, const char *value)
{
    char *x = xtext_encode(value);
    sb_printf(sb, " %s=%s", key, x);
    free(x);
}

char *smtp_client_mail_line(const qmsg *m, const smtp_caps *caps)
{
    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "MAIL FROM:<%s>", m->sender ? m->sender : "");
    if (caps->size) sb_printf(&sb, " SIZE=%zu", m->data_len);
    if (m->body == BODY_8BITMIME && caps->eightbitmime) sb_puts(&sb, " BODY=8BITMIME");
    if (m->smtputf8 && caps->smtputf8) sb_puts(&sb, " SMTPUTF8");
    if (caps->dsn) {
        if (m->ret == DSN_RET_FULL) sb_puts(&sb, " RET=FULL");
        else if (m->ret == DSN_RET_HDRS) sb_puts(&sb, " RET=HDRS");
        if (m->envid) sb_put_xtext(&sb, "ENVID", m->envid);
    }
    sb_puts(&sb, "\r\n");
    return sb_steal(&sb);
}

/* notify_append - the NOTIFY= value for bits. */
static void notify_append(strbuf *sb, unsigned bits)
{
    if (bits & DSN_NOTIFY_NEVER) {
        sb_puts(sb, " NOTIFY=NEVER");
        return;
    }
    static const struct { unsigned bit; const char *name; } names[] = {
        {DSN_NOTIFY_SUCCESS, "SUCCESS"}, {DSN_NOTIFY_FAILURE, "FAILURE"}, {DSN_NOTIFY_DELAY, "DELAY"}};
    const char *sep = " NOTIFY=";
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++) {
        if (!(bits & names[i].bit)) continue;
        sb_printf(sb, "%s%s", sep, names[i].name);
        sep = ",";
    }
}

/* orcpt_append - " ORCPT=type;xtext(addr)" from a decoded "type;addr". */
static void orcpt_append(strbuf *sb, const char *orcpt)
{
    const char *semi = strchr(orcpt, ';');
    char *x = xtext_encode(semi ? semi + 1 : orcpt);
    if (semi)
        sb_printf(sb, " ORCPT=%.*s;%s", (int)(semi - orcpt), orcpt, x);
    else
        sb_printf(sb, " ORCPT=rfc822;%s", x);
    free(x);
}

char *smtp_client_folder_addr(const qrcpt *r, const char *tmpl)
{
    if (!r->folder || str_ieq(r->folder, "INBOX")) return NULL;
    const char *at = strrchr(r->addr, '@');
    size_t llen = at ? (size_t)(at - r->addr) : strlen(r->addr);
    strbuf sb;
    sb_init(&sb);
    for (const char *p = tmpl ? tmpl : "$U+$S@$D"; *p; p++) {
        if (p[0] == '$' && p[1] == 'U') sb_append(&sb, r->addr, llen), p++;
        else if (p[0] == '$' && p[1] == 'D') sb_puts(&sb, at ? at + 1 : ""), p++;
        else if (p[0] == '$' && p[1] == 'S') {
            for (const char *f = r->folder; *f; f++) /* an address-safe folder name */
                sb_putc(&sb, (*f > ' ' && *f < 0x7f && !strchr("<>@\\\"()[],;:", *f)) ? *f : '_');
            p++;
        } else sb_putc(&sb, *p);
    }
    return sb_steal(&sb);
}

char *smtp_client_rcpt_line(const qrcpt *r, const smtp_caps *caps)
{
    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "RCPT TO:<%s>", r->addr);
    if (caps->dsn) {
        if (r->notify) notify_append(&sb, r->notify);
        if (r->orcpt && *r->orcpt) orcpt_append(&sb, r->orcpt);
    }
    sb_puts(&sb, "\r\n");
    return sb_steal(&sb);
}

/* next_lf - the index of the first LF in data[pos, len), or len. */
static size_t next_lf(const char *data, size_t pos, size_t len)
{
    const char *lf = memchr(data + pos, '\n', len - pos);
    return lf ? (size_t)(lf - data) : len;
}

/* content_emit - data with CRLF lines for the wire; stuff: double leading dots and end with ".". */
static void content_emit(const char *data, size_t len, bool stuff, smtp_emit_fn emit, void *ctx)
{
    size_t seg = 0, pos = 0, lf = next_lf(data, 0, len);
    bool open = false; /* the data ends inside a line */
    while (pos < len) {
        /* pos is the start of a line */
        if (stuff && data[pos] == '.') {
            if (pos > seg) emit(ctx, data + seg, pos - seg);
            emit(ctx, ".", 1);
            seg = pos; /* the original dot goes out with the next piece */
        }
        if (lf < pos) lf = next_lf(data, pos, len);
        const char *cr = memchr(data + pos, '\r', lf - pos);
        size_t eol = cr ? (size_t)(cr - data) : lf; /* the line's first CR or LF */
        if (eol == len) {
            open = true;
            break;
        }
        if (cr && eol + 1 == lf && lf < len) { /* CRLF */
            pos = lf + 1;
            continue;
        }
        /* a bare CR or bare LF (RFC 5321 2.3.8): CRLF goes out in its place */
        if (eol > seg) emit(ctx, data + seg, eol - seg);
        emit(ctx, "\r\n", 2);
        seg = pos = eol + 1;
    }
    if (len > seg) emit(ctx, data + seg, len - seg);
    if (open) emit(ctx, "\r\n", 2);
    if (stuff) emit(ctx, ".\r\n", 3);
}

void smtp_client_dot_stuff(const char *data, size_t len, smtp_emit_fn emit, void *ctx)
{
    content_emit(data, len, true, emit, ctx);
}

void smtp_client_crlf_lines(const char *data, size_t len, smtp_emit_fn emit, void *ctx)
{
    content_emit(data, len, false, emit, ctx);
}

/*
 * spf_header.c - the Received-SPF: header field (RFC 7208 §9.1) and the spf= clause of
 * Authentication-Results: (RFC 8601 §2.7.2) for a result (see spf.h). Pure.
 *
 * Everything that came from the client or from DNS is made safe for a header: a comment loses
 * parentheses, backslashes and control bytes; a key=value value is written as a dot-atom when it
 * is one, else as a quoted-string.
 */
#include "spf/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* comment_safe - s for a comment: printable ASCII but ( ) \, anything else "?". */
static void comment_safe(const char *s, strbuf *out)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        sb_putc(out, c >= 0x20 && c < 0x7f && c != '(' && c != ')' && c != '\\' ? (char)c : '?');
    }
}

/* is_atext - an RFC 5322 atext character. */
static bool is_atext(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* is_dot_atom - whether s is an RFC 5322 dot-atom. */
static bool is_dot_atom(const char *s)
{
    if (!*s || *s == '.') return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (p[1] == '.' || p[1] == '\0') return false;
        } else if (!is_atext((unsigned char)*p))
            return false;
    }
    return true;
}

/* value_safe - s as a dot-atom or a quoted-string. */
static void value_safe(const char *s, strbuf *out)
{
    if (is_dot_atom(s)) {
        sb_puts(out, s);
        return;
    }
    sb_putc(out, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_putc(out, '\\');
        sb_putc(out, c >= 0x20 && c < 0x7f ? (char)c : '?');
    }
    sb_putc(out, '"');
}

/* client_ip - the client's address as text. */
static void client_ip(const spf_query *q, char *buf, size_t len)
{
    const void *a = q->ip.ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)&q->ip)->sin_addr
                                               : (const void *)&((const struct sockaddr_in6 *)&q->ip)->sin6_addr;
    if (!inet_ntop(q->ip.ss_family, a, buf, (socklen_t)len)) snprintf(buf, len, "unknown");
}

/* comment_text - the human-readable comment of §9.1 for r. */
static void comment_text(const spf_result *r, const spf_query *q, const char *ip, strbuf *out)
{
    const char *who = q->mail_from && *q->mail_from ? q->mail_from : q->helo ? q->helo : "";
    strbuf w;
    sb_init(&w);
    comment_safe(who, &w);
    const char *x = w.data ? w.data : "";
    switch (r->result) {
    case SPF_PASS: sb_printf(out, "domain of %s designates %s as permitted sender", x, ip); break;
    case SPF_FAIL: sb_printf(out, "domain of %s does not designate %s as permitted sender", x, ip); break;
    case SPF_SOFTFAIL:
        sb_printf(out, "domain of transitioning %s does not designate %s as permitted sender", x, ip);
        break;
    case SPF_NEUTRAL: sb_printf(out, "%s is neither permitted nor denied by domain of %s", ip, x); break;
    case SPF_NONE: sb_printf(out, "domain of %s does not designate permitted sender hosts", x); break;
    case SPF_TEMPERROR: sb_printf(out, "error in processing during lookup of %s", x); break;
    case SPF_PERMERROR: sb_printf(out, "permanent error in processing domain of %s", x); break;
    }
    sb_free(&w);
}

/* fold_add - append " token", or a fold and the token when the line would pass 78 octets. */
static void fold_add(strbuf *out, size_t *line_start, const char *token)
{
    size_t cur = out->len - *line_start, tl = strlen(token);
    if (cur + 1 + tl > 78 && cur > 0) {
        sb_puts(out, "\r\n");
        *line_start = out->len;
        sb_putc(out, '\t');
    } else {
        sb_putc(out, ' ');
    }
    sb_puts(out, token);
}

void spf_received_header(const spf_result *r, const spf_query *q, strbuf *out)
{
    char ip[INET6_ADDRSTRLEN];
    client_ip(q, ip, sizeof ip);
    size_t line_start = out->len;
    sb_printf(out, "Received-SPF: %s", spf_res_name(r->result));
    strbuf t;
    sb_init(&t);
    sb_putc(&t, '(');
    if (q->receiver && *q->receiver) {
        comment_safe(q->receiver, &t);
        sb_puts(&t, ": ");
    }
    comment_text(r, q, ip, &t);
    sb_putc(&t, ')');
    /* the comment is folded only between its words */
    char *words = sb_steal(&t);
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
        fold_add(out, &line_start, w);
    free(words);
    struct {
        const char *key, *val;
    } kv[] = {{"client-ip", ip},
              {"envelope-from", q->mail_from ? q->mail_from : ""},
              {"helo", q->helo && *q->helo ? q->helo : NULL},
              {"receiver", q->receiver && *q->receiver ? q->receiver : NULL},
              {"identity", r->identity ? r->identity : "mailfrom"},
              {"mechanism", r->mechanism},
              {"problem", r->problem}};
    for (size_t i = 0; i < SL_ARRAY_LEN(kv); i++) {
        if (!kv[i].val) continue;
        sb_printf(&t, "%s=", kv[i].key);
        value_safe(kv[i].val, &t);
        sb_putc(&t, ';');
        fold_add(out, &line_start, t.data);
        sb_reset(&t);
    }
    sb_free(&t);
    sb_puts(out, "\r\n");
}

/* pvalue_safe - an RFC 8601 pvalue: "local@domain" or a domain bare when they are dot-atoms, else quoted. */
static void pvalue_safe(const char *s, strbuf *out)
{
    const char *at = strrchr(s, '@');
    if (at && at > s) {
        char *local = xstrndup(s, (size_t)(at - s));
        bool bare = is_dot_atom(local) && is_dot_atom(at + 1);
        free(local);
        if (bare) {
            sb_puts(out, s);
            return;
        }
    }
    value_safe(s, out);
}

void spf_auth_results(const spf_result *r, const spf_query *q, strbuf *out)
{
    bool helo = r->identity && !strcmp(r->identity, "helo");
    sb_printf(out, "spf=%s", spf_res_name(r->result));
    if (r->problem) {
        sb_puts(out, " (");
        comment_safe(r->problem, out);
        sb_putc(out, ')');
    }
    sb_printf(out, " smtp.%s=", helo ? "helo" : "mailfrom");
    const char *who = helo ? (q->helo ? q->helo : "") : (q->mail_from ? q->mail_from : "");
    pvalue_safe(who, out);
}

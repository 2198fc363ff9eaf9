/*
 * spamd.c - the SPAMC/SPAMD 1.5 protocol engine (see spamd.h).
 */
#include "scan/spamd.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEAD 65536       /* spamd's status line and headers */
#define MAX_BODY (4u << 20)  /* a SYMBOLS list or a HEADERS header block */

static const char *const command_names[] = {"CHECK", "SYMBOLS", "HEADERS"};

void scan_result_free(scan_result *r)
{
    free(r->verdict);
    free(r->detail);
    sv_free(&r->headers);
    memset(r, 0, sizeof *r);
}

void spamd_request_head(strbuf *out, enum spamd_command cmd, const char *user, size_t len)
{
    sb_printf(out, "%s SPAMC/1.5\r\nContent-length: %zu\r\n", command_names[cmd], len);
    if (user && *user) {
        sb_puts(out, "User: ");
        for (const char *p = user; *p && p - user < 128; p++)
            if (*p > ' ' && *p < 0x7f) sb_putc(out, *p);
        sb_puts(out, "\r\n");
    }
    sb_puts(out, "\r\n");
}

/* garbage - the answer is not the protocol: -1 with the reason. */
static int garbage(scan_result *r, const char *why)
{
    free(r->detail);
    r->detail = xasprintf("spamd: %s", why);
    r->status = SCAN_FAILED;
    return -1;
}

/* line_end - the end of the line starting at p (its "\n"), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

/* status_line - "SPAMD/1.x CODE TEXT": 0 and *code, or -1. */
static int status_line(const char *p, size_t n, long *code, char *text, size_t textlen)
{
    char line[256];
    if (n >= sizeof line) return -1;
    memcpy(line, p, n);
    line[n] = '\0';
    int used = 0;
    unsigned maj, min;
    if (sscanf(line, "SPAMD/%u.%u %ld %n", &maj, &min, code, &used) < 3 || maj != 1) return -1;
    snprintf(text, textlen, "%s", line + used);
    return 0;
}

/* spam_header - "Spam: True ; 7.1 / 5.0" into r. */
static int spam_header(const char *v, scan_result *r)
{
    char word[16];
    double score, threshold;
    if (sscanf(v, "%15s ; %lf / %lf", word, &score, &threshold) != 3) return -1;
    bool yes = str_ieq(word, "True") || str_ieq(word, "Yes");
    if (!yes && !str_ieq(word, "False") && !str_ieq(word, "No")) return -1;
    r->hit = yes;
    r->score = score;
    r->threshold = threshold;
    return 0;
}

/* append_clean - n bytes of p with any CR or LF inside a line made a blank (no header injection). */
static void append_clean(strbuf *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) sb_putc(b, p[i] == '\r' || p[i] == '\n' ? ' ' : p[i]);
}

/* headers_body - the X-Spam-* fields of a HEADERS answer's header block (folded lines joined). */
static void headers_body(const char *p, const char *end, scan_result *r)
{
    strbuf cur;
    sb_init(&cur);
    bool keep = false;
    while (p < end) {
        const char *nl = line_end(p, end);
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        if (n && p[n - 1] == '\r') n--;
        if (n == 0) break;
        if (*p == ' ' || *p == '\t') {
            if (keep) append_clean(&cur, p, n);
        } else {
            if (keep && cur.len) sv_push(&r->headers, cur.data);
            sb_reset(&cur);
            keep = n > 7 && strncasecmp(p, "X-Spam-", 7) == 0;
            if (keep) append_clean(&cur, p, n);
        }
        p = nl ? nl + 1 : end;
    }
    if (keep && cur.len) sv_push(&r->headers, cur.data);
    sb_free(&cur);
}

int spamd_parse(enum spamd_command cmd, const char *buf, size_t len, bool eof, scan_result *r)
{
    const char *p = buf, *end = buf + len;
    const char *nl = line_end(p, end);
    if (!nl) {
        if (len > MAX_HEAD) return garbage(r, "status line too long");
        return eof ? garbage(r, len ? "answer cut short" : "connection closed without an answer") : 0;
    }
    long code;
    char text[200];
    if (status_line(p, (size_t)(nl - p), &code, text, sizeof text) != 0) return garbage(r, "not a SPAMD status line");
    if (code != 0) { /* EX_USAGE, EX_DATAERR, ...: spamd could not scan */
        r->status = SCAN_FAILED;
        free(r->detail);
        r->detail = xasprintf("spamd: error %ld %.100s", code, text);
        str_trim(r->detail);
        return 1;
    }
    bool have_spam = false;
    long long clen = -1;
    for (p = nl + 1;;) {
        nl = line_end(p, end);
        if (!nl) {
            if ((size_t)(end - buf) > MAX_HEAD) return garbage(r, "header too long");
            return eof ? garbage(r, "answer cut short") : 0;
        }
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r') n--;
        const char *hline = p;
        p = nl + 1;
        if (n == 0) break;
        char h[512];
        if (n >= sizeof h) return garbage(r, "header line too long");
        memcpy(h, hline, n);
        h[n] = '\0';
        if (strncasecmp(h, "Spam:", 5) == 0) {
            if (spam_header(h + 5, r) != 0) return garbage(r, "bad Spam: header");
            have_spam = true;
        } else if (strncasecmp(h, "Content-length:", 15) == 0) {
            uint64_t v;
            if (parse_uint(str_trim(h + 15), 0, MAX_BODY, &v) != 0) return garbage(r, "bad Content-length");
            clen = (long long)v;
        }
    }
    if (!have_spam) return garbage(r, "no Spam: header");
    size_t have = (size_t)(end - p);
    if (cmd != SPAMD_CHECK) {
        if (clen >= 0 && have < (size_t)clen) return eof ? garbage(r, "body cut short") : 0;
        if (clen < 0 && !eof) return have > MAX_BODY ? garbage(r, "body too long") : 0;
        size_t body = clen >= 0 ? (size_t)clen : have;
        if (cmd == SPAMD_SYMBOLS) {
            free(r->detail);
            r->detail = xstrndup(p, body);
            str_trim(r->detail);
        } else {
            headers_body(p, p + body, r);
        }
    }
    r->status = SCAN_DONE;
    free(r->verdict);
    r->verdict = r->hit ? xstrdup("spam") : NULL;
    return 1;
}

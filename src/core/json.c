/*
 * json.c - JSON text helpers (see json.h).
 */
#include "core/json.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* utf8_len - the length of the valid UTF-8 sequence at p (n bytes available), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80) return 1;
    size_t len = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 && p[0] < 0xf0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if (len == 3 && p[0] == 0xe0 && p[1] < 0xa0) return 0;  /* overlong */
    if (len == 3 && p[0] == 0xed && p[1] >= 0xa0) return 0; /* surrogate */
    if (len == 4 && p[0] == 0xf0 && p[1] < 0x90) return 0;  /* overlong */
    if (len == 4 && p[0] == 0xf4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
    return len;
}

void json_put_string(strbuf *out, const char *s, size_t n)
{
    sb_putc(out, '"');
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            sb_putc(out, '\\');
            sb_putc(out, (char)c);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            sb_printf(out, "\\u%04x", c);
            i++;
        } else {
            size_t len = utf8_len(p + i, n - i);
            if (len) sb_append(out, p + i, len);
            else sb_puts(out, "\\ufffd");
            i += len ? len : 1;
        }
    }
    sb_putc(out, '"');
}

void json_put_str(strbuf *out, const char *s)
{
    if (s) json_put_string(out, s, strlen(s));
    else sb_puts(out, "null");
}

/* key - the member's name and colon. */
static void key(strbuf *out, bool first, const char *k)
{
    if (!first) sb_putc(out, ',');
    json_put_str(out, k);
    sb_putc(out, ':');
}

void json_put_member(strbuf *out, bool first, const char *k, const char *s)
{
    key(out, first, k);
    json_put_str(out, s);
}

void json_put_int(strbuf *out, bool first, const char *k, int64_t n)
{
    key(out, first, k);
    sb_printf(out, "%lld", (long long)n);
}

void json_put_time(strbuf *out, bool first, const char *k, int64_t t)
{
    key(out, first, k);
    if (t <= 0) {
        sb_puts(out, "null");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    sb_printf(out, "\"%s\"", buf);
}

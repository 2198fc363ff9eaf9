/*
 * sieve_hdr.c - the working copy of a message's header block that tests read and editheader
 * and addtag change, and the address-list reader of the address test.
 *
 * A field keeps its raw text (folded lines and all) so that untouched fields go out exactly as
 * they came in, and its unfolded value (RFC 5322 §2.2.3, leading and trailing white space
 * removed) for the tests. Added fields are folded at white space before 78 columns; line breaks
 * in a script's value become folds, so no added field can end the header block early or hold
 * an empty continuation line. RFC 2047 encoding and decoding are not done.
 */
#include "sieve/sieve_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SV_MAX_ADDRS 1024 /* addresses read from one field value */

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }

/* sv_field_name_ok - whether s is a valid header field name (RFC 5322 ftext, non-empty). */
bool sv_field_name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 33 || c > 126 || c == ':') return false;
    }
    return n > 0 && n <= 200;
}

/* field_make - fill f from its raw text (which f takes): the name and the unfolded value. */
static void field_make(sv_field *f, char *raw, size_t raw_len)
{
    f->raw = raw;
    f->raw_len = raw_len;
    f->name_len = 0;
    const char *colon = memchr(raw, ':', raw_len);
    size_t end = colon ? (size_t)(colon - raw) : 0;
    size_t name_end = end;
    while (name_end && is_wsp(raw[name_end - 1])) name_end--;
    bool ok = colon && name_end > 0;
    for (size_t i = 0; ok && i < name_end; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c < 33 || c > 126) ok = false;
    }
    strbuf v;
    sb_init(&v);
    if (ok) {
        f->name_len = name_end;
        size_t i = end + 1;
        while (i < raw_len) { /* copy the runs between line ends */
            size_t j = i;
            while (j < raw_len && raw[j] != '\r' && raw[j] != '\n') j++;
            sb_append(&v, raw + i, j - i);
            i = j + 1;
        }
    }
    size_t a = 0, b = v.len;
    while (a < b && is_wsp(v.data[a])) a++;
    while (b > a && is_wsp(v.data[b - 1])) b--;
    f->value = xmemdup0(v.data ? v.data + a : "", b - a);
    f->value_len = b - a;
    sb_free(&v);
}

/* hdr_insert - put a field at position at. */
static void hdr_insert(sv_header *h, size_t at, char *raw, size_t raw_len)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        h->f = xrealloc(h->f, h->cap * sizeof *h->f);
    }
    memmove(h->f + at + 1, h->f + at, (h->n - at) * sizeof *h->f);
    field_make(&h->f[at], raw, raw_len);
    h->n++;
}

/* sv_hdr_load - split a header block (CRLF or LF lines) into fields. */
void sv_hdr_load(sv_header *h, const char *p, size_t len)
{
    memset(h, 0, sizeof *h);
    strbuf cur;
    sb_init(&cur);
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(p + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (p + pos)) : len - pos;
        size_t body = n && p[pos + n - 1] == '\r' ? n - 1 : n;
        const char *line = p + pos;
        pos += n + (nl ? 1 : 0);
        if (!body) break; /* the empty line ends the header block */
        if (!is_wsp(line[0]) && cur.len) {
            size_t l = cur.len;
            hdr_insert(h, h->n, sb_steal(&cur), l);
        }
        sb_append(&cur, line, body);
        sb_append(&cur, "\r\n", 2);
    }
    if (cur.len) {
        size_t l = cur.len;
        hdr_insert(h, h->n, sb_steal(&cur), l);
    }
    sb_free(&cur);
}

/* sv_hdr_free - release the fields. */
void sv_hdr_free(sv_header *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->f[i].raw);
        free(h->f[i].value);
    }
    free(h->f);
    memset(h, 0, sizeof *h);
}

/* sv_hdr_is - whether field i is named name (ASCII case-insensitive). */
bool sv_hdr_is(const sv_header *h, size_t i, const char *name)
{
    const sv_field *f = &h->f[i];
    return f->name_len && strlen(name) == f->name_len && strncasecmp(f->raw, name, f->name_len) == 0;
}

/* put_folded - append value to sb folded: line breaks become folds, long lines break at white
 * space. col is the column the value starts at. */
static void put_folded(strbuf *sb, const char *v, size_t col)
{
    size_t n = strlen(v);
    while (n && (is_wsp(v[n - 1]) || v[n - 1] == '\r' || v[n - 1] == '\n')) n--;
    size_t i = 0;
    while (i < n && (is_wsp(v[i]) || v[i] == '\r' || v[i] == '\n')) i++;
    while (i < n) {
        char c = v[i];
        if (c == '\r' || c == '\n') {
            while (i < n && (v[i] == '\r' || v[i] == '\n' || is_wsp(v[i]))) i++;
            sb_append(sb, "\r\n ", 3);
            col = 1;
            continue;
        }
        if (is_wsp(c) && col > 1) {
            size_t j = i + 1;
            while (j < n && !is_wsp(v[j]) && v[j] != '\r' && v[j] != '\n') j++;
            if (col + (j - i) > 78) {
                sb_append(sb, "\r\n", 2);
                col = 0;
            }
        }
        sb_putc(sb, c);
        col++;
        i++;
    }
}

/* sv_hdr_add - insert "name: value" (value folded as needed) first, or last when last. */
void sv_hdr_add(sv_header *h, const char *name, const char *value, bool last)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, name);
    sb_append(&sb, ": ", 2);
    put_folded(&sb, value, strlen(name) + 2);
    sb_append(&sb, "\r\n", 2);
    size_t l = sb.len;
    hdr_insert(h, last ? h->n : 0, sb_steal(&sb), l);
}

/* sv_hdr_delete - remove field i. */
void sv_hdr_delete(sv_header *h, size_t i)
{
    free(h->f[i].raw);
    free(h->f[i].value);
    memmove(h->f + i, h->f + i + 1, (h->n - i - 1) * sizeof *h->f);
    h->n--;
}

/* sv_hdr_addtag - prepend tag (and a space) to the first Subject, creating it when absent. */
void sv_hdr_addtag(sv_header *h, const char *tag)
{
    size_t i = 0;
    while (i < h->n && !sv_hdr_is(h, i, "subject")) i++;
    if (i == h->n) {
        sv_hdr_add(h, "Subject", tag, true);
        return;
    }
    sv_field *f = &h->f[i];
    const char *colon = memchr(f->raw, ':', f->raw_len);
    size_t head = (size_t)(colon - f->raw) + 1; /* the name and the colon, as written */
    strbuf sb;
    sb_init(&sb);
    sb_append(&sb, f->raw, head);
    sb_putc(&sb, ' ');
    sb_puts(&sb, tag);
    if (!f->value_len) {
        sb_append(&sb, "\r\n", 2);
    } else {
        const char *rest = f->raw + head;
        size_t rest_len = f->raw_len - head;
        if (!is_wsp(rest[0])) sb_putc(&sb, ' ');
        sb_append(&sb, rest, rest_len);
    }
    free(f->raw);
    free(f->value);
    size_t l = sb.len;
    field_make(f, sb_steal(&sb), l);
}

/* sv_hdr_join - the fields as one header block. */
char *sv_hdr_join(const sv_header *h, size_t *len)
{
    strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < h->n; i++) sb_append(&sb, h->f[i].raw, h->f[i].raw_len);
    *len = sb.len;
    return sb_steal(&sb);
}

/* addr_emit - one element of an address list: the angle address if there was one, else the
 * bare text; a source route ("@a,@b:") is dropped. */
static void addr_emit(strbuf *bare, strbuf *angle, bool had_angle, strvec *out)
{
    strbuf *src = had_angle ? angle : bare;
    const char *s = src->data ? src->data : "";
    if (had_angle && s[0] == '@') {
        const char *colon = strchr(s, ':');
        s = colon ? colon + 1 : "";
    }
    if (*s && out->n < SV_MAX_ADDRS) sv_push(out, s);
    sb_reset(bare);
    sb_reset(angle);
}

/* sv_addr_list - the addr-specs of an address-list header value into out (bounded, best effort):
 * comments dropped, display names skipped, groups opened by "name:" and closed by ";". */
void sv_addr_list(const char *v, size_t len, strvec *out)
{
    strbuf bare, angle;
    sb_init(&bare);
    sb_init(&angle);
    bool in_angle = false, had_angle = false;
    size_t i = 0;
    while (i < len) {
        char c = v[i];
        if (c == '(') { /* a comment, maybe nested */
            int depth = 0;
            for (; i < len; i++) {
                if (v[i] == '\\') i++;
                else if (v[i] == '(') depth++;
                else if (v[i] == ')' && --depth == 0) break;
            }
            i++;
            continue;
        }
        strbuf *dst = in_angle ? &angle : &bare;
        if (c == '"') { /* a quoted string, kept with its quotes */
            sb_putc(dst, c);
            for (i++; i < len && v[i] != '"'; i++) {
                if (v[i] == '\\' && i + 1 < len) sb_putc(dst, v[i++]);
                sb_putc(dst, v[i]);
            }
            sb_putc(dst, '"');
            i++;
            continue;
        }
        i++;
        if (in_angle) {
            if (c == '>') in_angle = false;
            else if (!is_wsp(c)) sb_putc(&angle, c);
            continue;
        }
        if (c == '<') {
            in_angle = had_angle = true;
            sb_reset(&angle);
        } else if (c == ',' || c == ';') {
            addr_emit(&bare, &angle, had_angle, out);
            had_angle = false;
        } else if (c == ':') { /* a group's display name ends */
            sb_reset(&bare);
        } else if (!is_wsp(c)) {
            sb_putc(&bare, c);
        }
    }
    addr_emit(&bare, &angle, had_angle, out);
    sb_free(&bare);
    sb_free(&angle);
}

/* sv_addr_ok - whether s looks like one mailbox "local@domain" (for redirect and vacation :from). */
bool sv_addr_ok(const char *s)
{
    size_t n = strlen(s);
    const char *at = strrchr(s, '@');
    if (n < 3 || n > 320 || !at || at == s || !at[1]) return false;
    for (const char *q = s; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (c <= 32 || c == 127 || strchr("<>(),;:\"\\[]", c)) return false;
        if (c == '@' && q != at) return false;
    }
    return true;
}

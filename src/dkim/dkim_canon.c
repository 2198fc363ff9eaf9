/*
 * dkim_canon.c - DKIM tag-lists, canonicalisation and b= stripping (see dkim.h). Pure.
 *
 * The body canonicaliser works octet by octet so that it can be fed a message in pieces of any
 * size (a queue file's body as it is read, a socket's reads): line ends are held back while only
 * empty lines follow, because trailing empty lines are not part of the canonical body; relaxed
 * whitespace is held back until a non-blank octet shows that it is not at the end of a line.
 */
#include "dkim/dkim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ tag-lists */

/* is_wsp - SP or HTAB. */
static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* skip_fws - skip folding whitespace (WSP, and CRLF followed by WSP) from i; returns the new index. */
static size_t skip_fws(const char *s, size_t len, size_t i)
{
    for (;;) {
        if (i < len && is_wsp(s[i])) {
            i++;
        } else if (i + 2 < len && s[i] == '\r' && s[i + 1] == '\n' && is_wsp(s[i + 2])) {
            i += 3;
        } else {
            return i;
        }
    }
}

/* tag_fail - a syntax error: message into err, the list emptied. */
static int tag_fail(dkim_tags *out, char *err, size_t errlen, const char *what, size_t at)
{
    snprintf(err, errlen, "tag-list: %s at offset %zu", what, at);
    dkim_tags_free(out);
    return -1;
}

int dkim_tags_parse(const char *s, size_t len, dkim_tags *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    for (;;) {
        i = skip_fws(s, len, i);
        if (i >= len) break; /* empty list, or after a final ";" */
        size_t name_start = i;
        if (!isalpha((unsigned char)s[i])) return tag_fail(out, err, errlen, "tag name expected", i);
        while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_')) i++;
        size_t name_end = i;
        i = skip_fws(s, len, i);
        if (i >= len || s[i] != '=') return tag_fail(out, err, errlen, "\"=\" expected", i);
        i = skip_fws(s, len, i + 1);
        size_t val_start = i, val_end = i;
        /* tag-value = [ tval *( 1*(WSP / FWS) tval ) ]; VALCHAR = %x21-3A / %x3C-7E */
        while (i < len && s[i] != ';') {
            unsigned char c = (unsigned char)s[i];
            if (c >= 0x21 && c <= 0x7e) {
                i++;
                val_end = i;
            } else {
                size_t j = skip_fws(s, len, i);
                if (j == i) return tag_fail(out, err, errlen, "invalid octet in value", i);
                i = j;
            }
        }
        char *name = xstrndup(s + name_start, name_end - name_start);
        if (dkim_tags_get(out, name)) {
            free(name);
            return tag_fail(out, err, errlen, "tag given twice", name_start);
        }
        out->tag = xrealloc(out->tag, (out->n + 1) * sizeof *out->tag);
        out->tag[out->n].name = name;
        out->tag[out->n].value = xmemdup0(s + val_start, val_end - val_start);
        if (memchr(out->tag[out->n].value, '\0', val_end - val_start)) {
            out->n++;
            return tag_fail(out, err, errlen, "NUL in value", val_start);
        }
        out->n++;
        if (i >= len) break;
        i++; /* ";" */
    }
    return 0;
}

const char *dkim_tags_get(const dkim_tags *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->tag[i].name, name)) return t->tag[i].value;
    return NULL;
}

void dkim_tags_free(dkim_tags *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->tag[i].name);
        free(t->tag[i].value);
    }
    free(t->tag);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------ headers */

int dkim_canon_parse(const char *c, dkim_canon *header, dkim_canon *body)
{
    const char *slash = strchr(c, '/');
    size_t hl = slash ? (size_t)(slash - c) : strlen(c);
    const char *b = slash ? slash + 1 : "simple";
    if (hl == 6 && !strncmp(c, "simple", 6)) *header = DKIM_CANON_SIMPLE;
    else if (hl == 7 && !strncmp(c, "relaxed", 7)) *header = DKIM_CANON_RELAXED;
    else return -1;
    if (!strcmp(b, "simple")) *body = DKIM_CANON_SIMPLE;
    else if (!strcmp(b, "relaxed")) *body = DKIM_CANON_RELAXED;
    else return -1;
    return 0;
}

void dkim_canon_header(dkim_canon c, const char *field, size_t len, strbuf *out)
{
    if (c == DKIM_CANON_SIMPLE) {
        sb_append(out, field, len);
        sb_puts(out, "\r\n");
        return;
    }
    /* relaxed (§3.4.2): name lower-cased, no WSP around the colon, value unfolded, runs of WSP
     * made one SP, no WSP at the end */
    const char *colon = memchr(field, ':', len);
    size_t nl = colon ? (size_t)(colon - field) : len;
    while (nl > 0 && is_wsp(field[nl - 1])) nl--;
    for (size_t i = 0; i < nl; i++)
        if (field[i] != '\r' && field[i] != '\n') sb_putc(out, (char)tolower((unsigned char)field[i])); /* unfold */
    sb_putc(out, ':');
    if (colon) {
        bool wsp = false, started = false;
        for (const char *p = colon + 1; p < field + len; p++) {
            if (*p == '\r' || *p == '\n') continue; /* unfold */
            if (is_wsp(*p)) {
                wsp = true;
                continue;
            }
            if (wsp && started) sb_putc(out, ' ');
            wsp = false;
            started = true;
            sb_putc(out, *p);
        }
    }
    sb_puts(out, "\r\n");
}

/* ------------------------------------------------------------------ body */

/* body_emit - pass n canonical octets on, within the l= limit. */
static void body_emit(dkim_body *b, const char *p, size_t n)
{
    b->total += n;
    if (b->limit >= 0) {
        uint64_t room = (uint64_t)b->limit > b->emitted ? (uint64_t)b->limit - b->emitted : 0;
        if (n > room) n = (size_t)room;
    }
    if (!n) return;
    b->emitted += n;
    b->sink(b->arg, p, n);
}

/* body_content - one octet of line content: first the line ends and whitespace held back. */
static void body_content(dkim_body *b, char c)
{
    for (; b->crlfs; b->crlfs--) body_emit(b, "\r\n", 2);
    if (b->wsp) body_emit(b, " ", 1);
    b->wsp = false;
    b->content = true;
    body_emit(b, &c, 1);
}

void dkim_body_init(dkim_body *b, dkim_canon c, int64_t limit, dkim_body_sink sink, void *arg)
{
    memset(b, 0, sizeof *b);
    b->c = c;
    b->limit = limit;
    b->sink = sink;
    b->arg = arg;
}

void dkim_body_feed(dkim_body *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (b->cr) {
            b->cr = false;
            if (c == '\n') {
                b->wsp = false; /* relaxed: no whitespace at the end of a line */
                b->crlfs++;
                continue;
            }
            body_content(b, '\r');
        }
        if (c == '\r') {
            b->cr = true;
        } else if (b->c == DKIM_CANON_RELAXED && is_wsp(c)) {
            b->wsp = true;
        } else {
            body_content(b, c);
        }
    }
}

void dkim_body_end(dkim_body *b)
{
    if (b->cr) {
        b->cr = false;
        body_content(b, '\r');
    }
    if (b->wsp) {
        /* relaxed, a last line without CRLF that ends in whitespace: the whitespace is not "at
         * the end of a line" until the CRLF is added, so it stays (as one SP), as dkimpy does */
        for (; b->crlfs; b->crlfs--) body_emit(b, "\r\n", 2);
        body_emit(b, " ", 1);
        b->wsp = false;
        b->content = true;
    }
    if (b->content)
        body_emit(b, "\r\n", 2); /* the last line's end (added if it had none) */
    else if (b->c == DKIM_CANON_SIMPLE)
        body_emit(b, "\r\n", 2); /* an empty body is one CRLF in simple (§3.4.3), nothing in relaxed */
    b->crlfs = 0;
}

/* ------------------------------------------------------------------ b= */

void dkim_strip_b(const char *field, size_t len, strbuf *out)
{
    const char *colon = memchr(field, ':', len);
    if (!colon) {
        sb_append(out, field, len);
        return;
    }
    size_t i = (size_t)(colon - field) + 1;
    sb_append(out, field, i);
    while (i < len) {
        /* at the start of a tag-spec: copy FWS, then see whether the name is exactly "b" */
        size_t j = skip_fws(field, len, i);
        size_t k = j;
        while (k < len && (isalnum((unsigned char)field[k]) || field[k] == '_')) k++;
        size_t e = skip_fws(field, len, k);
        bool is_b = k == j + 1 && field[j] == 'b' && e < len && field[e] == '=';
        const char *semi = memchr(field + i, ';', len - i);
        size_t end = semi ? (size_t)(semi - field) : len;
        if (is_b) {
            sb_append(out, field + i, e + 1 - i); /* up to and with "="; the value and the whitespace around it go */
        } else {
            sb_append(out, field + i, end - i);
        }
        if (!semi) break;
        sb_putc(out, ';');
        i = end + 1;
    }
}

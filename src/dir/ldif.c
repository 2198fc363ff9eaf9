/*
 * ldif.c - RFC 2849 LDIF content parser for the embedded directory (see ldif.h).
 * Works in two layers: physical lines are folded into logical lines (continuations joined,
 * comments dropped), then each logical line "attr[;opts]:[:] value" is added to the current
 * record. Errors are collected with their line numbers and parsing goes on, so one run reports
 * every mistake in the file.
 */
#include "dir/ldif.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

enum pending_kind { PENDING_NONE, PENDING_ATTR, PENDING_COMMENT };

typedef struct {
    const char *file;
    conf_errors *errs;
    ldif_file *out;
    int errors;
    bool in_record;    /* a "dn:" opened the last record of out and no blank line followed */
    bool skipping;     /* an entry without dn: ignore lines until the next blank line */
    bool seen_content; /* a record or a line was seen: "version:" is no longer allowed */
    strbuf logical;    /* the logical line being joined from continuations */
    int logical_line;
    enum pending_kind pending;
} ldif_parser;

static void parser_error(ldif_parser *p, int line, const char *msg, const char *arg)
{
    if (arg)
        conf_error(p->errs, p->file, line, "%s: %s", msg, arg);
    else
        conf_error(p->errs, p->file, line, "%s", msg);
    p->errors++;
}

/* attr_name_valid - RFC 2849 AttributeDescription: letters, digits, '-', '.', ';' options. */
static bool attr_name_valid(const char *s, size_t n)
{
    if (n == 0 || s[0] == ';') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != ';') return false;
    }
    return true;
}

/* record_add - append one attribute value to record r. */
static void record_add(ldif_record *r, char *name, char *value, int line)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->attrs = xrealloc(r->attrs, r->cap * sizeof *r->attrs);
    }
    r->attrs[r->n++] = (ldif_attr){.name = name, .value = value, .line = line};
}

/* record_open - start a new record for dn at line. */
static void record_open(ldif_parser *p, char *dn, int line)
{
    ldif_file *f = p->out;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->recs = xrealloc(f->recs, f->cap * sizeof *f->recs);
    }
    f->recs[f->n++] = (ldif_record){.dn = dn, .line = line};
    p->in_record = true;
}

/* decode_value - the value after "attr:", decoded when base64; NULL (error added) if bad. */
static char *decode_value(ldif_parser *p, const char *rest, int line)
{
    bool b64 = false;
    if (*rest == ':') {
        b64 = true;
        rest++;
    } else if (*rest == '<') {
        parser_error(p, line, "URL values (attr:< url) are not supported", NULL);
        return NULL;
    }
    while (*rest == ' ') rest++;
    if (!b64) {
        /* trailing blanks are invisible in an editor and never meant as part of a value */
        size_t n = strlen(rest);
        while (n && (rest[n - 1] == ' ' || rest[n - 1] == '\t')) n--;
        return xstrndup(rest, n);
    }
    strbuf val = {0};
    if (b64_decode(rest, strlen(rest), &val) < 0) {
        sb_free(&val);
        parser_error(p, line, "bad base64 value", NULL);
        return NULL;
    }
    if (memchr(val.data, '\0', val.len)) {
        sb_free(&val);
        parser_error(p, line, "base64 value contains a NUL byte", NULL);
        return NULL;
    }
    return sb_steal(&val);
}

/* line_add_attr - give meaning to one logical line "name: value" at line. */
static void line_add_attr(ldif_parser *p, char *name, char *value, int line)
{
    bool first = !p->seen_content;
    p->seen_content = true;
    if (p->skipping) goto drop;
    if (strcmp(name, "dn") == 0) {
        if (p->in_record) {
            parser_error(p, line, "\"dn:\" inside an entry (missing blank line?)", NULL);
            goto drop;
        }
        free(name);
        record_open(p, value, line);
        return;
    }
    if (!p->in_record) {
        if (first && strcmp(name, "version") == 0) {
            if (strcmp(value, "1") != 0) parser_error(p, line, "unsupported LDIF version", value);
            goto drop;
        }
        parser_error(p, line, "entry without dn", NULL);
        p->skipping = true;
        goto drop;
    }
    if (strcmp(name, "changetype") == 0) {
        parser_error(p, line, "LDIF change records are not supported", NULL);
        goto drop;
    }
    record_add(&p->out->recs[p->out->n - 1], name, value, line);
    return;
drop:
    free(name);
    free(value);
}

/* logical_flush - interpret the pending logical line, if any. */
static void logical_flush(ldif_parser *p)
{
    enum pending_kind kind = p->pending;
    p->pending = PENDING_NONE;
    if (kind != PENDING_ATTR) return;
    const char *s = p->logical.data;
    int line = p->logical_line;
    const char *colon = strchr(s, ':');
    if (!colon) {
        parser_error(p, line, "line without ':'", NULL);
        return;
    }
    size_t namelen = (size_t)(colon - s);
    if (!attr_name_valid(s, namelen)) {
        char *bad = xstrndup(s, namelen);
        parser_error(p, line, "bad attribute name", bad);
        free(bad);
        return;
    }
    const char *semi = memchr(s, ';', namelen);
    char *name = str_lower(xstrndup(s, semi ? (size_t)(semi - s) : namelen));
    char *value = decode_value(p, colon + 1, line);
    if (!value) {
        free(name);
        return;
    }
    line_add_attr(p, name, value, line);
}

/* entry_end - a blank line (or the end of the text) closes the current entry. */
static void entry_end(ldif_parser *p)
{
    logical_flush(p);
    p->in_record = false;
    p->skipping = false;
}

/* is_blank - whether the n bytes at s are only spaces and tabs. */
static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return false;
    return true;
}

/* physical_line - fold one physical line (without its line end) into the logical lines. */
static void physical_line(ldif_parser *p, const char *s, size_t n, int line)
{
    if (n > 0 && s[0] == ' ' && p->pending != PENDING_NONE) {
        if (p->pending == PENDING_ATTR) sb_append(&p->logical, s + 1, n - 1);
        return;
    }
    if (is_blank(s, n)) {
        entry_end(p);
        return;
    }
    logical_flush(p);
    if (s[0] == '#') {
        p->pending = PENDING_COMMENT;
        return;
    }
    if (s[0] == ' ' || s[0] == '\t') {
        parser_error(p, line, "continuation line without a line to continue", NULL);
        return;
    }
    sb_reset(&p->logical);
    sb_append(&p->logical, s, n);
    p->logical_line = line;
    p->pending = PENDING_ATTR;
}

int ldif_parse(const char *file, const char *text, ldif_file *out, conf_errors *errs)
{
    ldif_parser p = {.file = file, .errs = errs, .out = out};
    sb_init(&p.logical);
    const char *s = text;
    int line = 0;
    while (*s) {
        line++;
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        size_t len = n;
        if (len > 0 && s[len - 1] == '\r') len--;
        physical_line(&p, s, len, line);
        s += n;
        if (*s == '\n') s++;
    }
    entry_end(&p);
    sb_free(&p.logical);
    return p.errors;
}

void ldif_file_free(ldif_file *f)
{
    for (size_t i = 0; i < f->n; i++) {
        ldif_record *r = &f->recs[i];
        for (size_t k = 0; k < r->n; k++) {
            free(r->attrs[k].name);
            free(r->attrs[k].value);
        }
        free(r->attrs);
        free(r->dn);
    }
    free(f->recs);
    f->recs = NULL;
    f->n = f->cap = 0;
}

const ldif_attr *ldif_record_first(const ldif_record *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->attrs[i].name, name) == 0) return &r->attrs[i];
    return NULL;
}

int ldif_record_has_value(const ldif_record *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->attrs[i].name, name) == 0 && str_ieq(r->attrs[i].value, value)) return 1;
    return 0;
}

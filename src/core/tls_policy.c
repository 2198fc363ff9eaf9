/* tls_policy.c - the outbound TLS policy table (see tls_policy.h). */
#include "core/tls_policy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *level_names[] = {
    [TLS_LEVEL_DEFAULT] = "default", [TLS_LEVEL_NONE] = "none",       [TLS_LEVEL_MAY] = "may",
    [TLS_LEVEL_ENCRYPT] = "encrypt", [TLS_LEVEL_VERIFY] = "verify",   [TLS_LEVEL_DANE] = "dane",
    [TLS_LEVEL_DANE_ONLY] = "dane-only", [TLS_LEVEL_STS] = "sts",
};

const char *tls_level_name(enum tls_level l)
{
    return (size_t)l < sizeof level_names / sizeof *level_names ? level_names[l] : "?";
}

enum tls_level tls_level_parse(const char *s)
{
    for (size_t i = TLS_LEVEL_NONE; i < sizeof level_names / sizeof *level_names; i++)
        if (str_ieq(s, level_names[i])) return (enum tls_level)i;
    return TLS_LEVEL_DEFAULT;
}

/* lower - s in ASCII lower case, in place. */
static char *lower(char *s)
{
    for (char *p = s; *p; p++) *p = (char)tolower((unsigned char)*p);
    return s;
}

/* name_ok - a host or domain name of letters, digits, '-', '_' and dots (no empty labels, <= 253);
 * with lead_dot, one leading dot is allowed (a suffix). */
static bool name_ok(const char *s, bool lead_dot)
{
    if (lead_dot && *s == '.') s++;
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > 253) return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return false;
        if (++label > 63) return false;
    }
    return label > 0 || n > 1; /* a trailing dot (absolute name) is fine, "." alone is not */
}

/* pattern_norm - a pattern in lower case without the dot of an absolute name, in place. */
static char *pattern_norm(char *s)
{
    size_t n = strlen(lower(s));
    if (n > 1 && s[n - 1] == '.') s[n - 1] = '\0';
    return s;
}

/* report - format a message for the error callback. */
static void report(tls_policy_err_cb err, void *arg, int line, const char *fmt, const char *a)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a);
    if (err) err(arg, line, msg);
}

/* parse_match - the names of "match=a:b:.c" into e; false (reported) when one is malformed. */
static bool parse_match(const char *v, tls_policy_entry *e, tls_policy_err_cb err, void *arg, int line)
{
    char *copy = xstrdup(v), *save = NULL;
    bool ok = *v != '\0';
    for (char *name = strtok_r(copy, ":", &save); ok && name; name = strtok_r(NULL, ":", &save)) {
        if (!name_ok(name, true)) {
            report(err, arg, line, "match=: \"%s\" is not a host name or .suffix", name);
            ok = false;
            break;
        }
        sv_push(&e->match, lower(name));
    }
    if (!*v) report(err, arg, line, "match= needs at least one name%s", "");
    free(copy);
    return ok;
}

/* entry_free - free what one entry owns. */
static void entry_free(tls_policy_entry *e)
{
    free(e->pattern);
    sv_free(&e->match);
}

/* parse_line - one non-comment line into e; false (reported) when malformed. */
static bool parse_line(const strvec *f, tls_policy_entry *e, tls_policy_err_cb err, void *arg, int line)
{
    memset(e, 0, sizeof *e);
    const char *pat = f->v[0];
    if (f->n < 2) {
        report(err, arg, line, "\"%s\": a TLS level must follow the domain", pat);
        return false;
    }
    if (strcmp(pat, "*") != 0 && !name_ok(pat, true)) {
        report(err, arg, line, "\"%s\" is not a domain, .suffix or *", pat);
        return false;
    }
    e->level = tls_level_parse(f->v[1]);
    if (e->level == TLS_LEVEL_DEFAULT) {
        report(err, arg, line, "unknown TLS level \"%s\" (none, may, encrypt, verify, dane, dane-only or sts)", f->v[1]);
        return false;
    }
    e->pattern = pattern_norm(xstrdup(pat));
    for (size_t i = 2; i < f->n; i++) {
        if (strncasecmp(f->v[i], "match=", 6) == 0 && e->level == TLS_LEVEL_VERIFY && !e->match.n) {
            if (parse_match(f->v[i] + 6, e, err, arg, line)) continue;
        } else if (strncasecmp(f->v[i], "match=", 6) == 0) {
            report(err, arg, line, "match= is given once and only with verify: \"%s\"", f->v[i]);
        } else {
            report(err, arg, line, "unknown attribute \"%s\" (only match=)", f->v[i]);
        }
        entry_free(e);
        return false;
    }
    return true;
}

/* find_exact - the entry whose pattern is exactly p. */
static const tls_policy_entry *find_exact(const tls_policy_table *t, const char *p)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].pattern, p) == 0) return &t->v[i];
    return NULL;
}

tls_policy_table *tls_policy_parse(const char *text, tls_policy_err_cb err, void *arg)
{
    tls_policy_table *t = xcalloc(1, sizeof *t);
    size_t cap = 0;
    int line = 0;
    for (const char *p = text ? text : ""; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char *l = xstrndup(p, len);
        p += len + (eol ? 1 : 0);
        line++;
        char *hash = strchr(l, '#');
        if (hash) *hash = '\0';
        strvec f = {0};
        if (str_split_ws(l, &f) > 0) {
            tls_policy_entry e;
            char *norm = pattern_norm(xstrdup(f.v[0]));
            if (find_exact(t, norm)) {
                report(err, arg, line, "\"%s\" already has an entry", f.v[0]);
            } else if (parse_line(&f, &e, err, arg, line)) {
                if (t->n == cap) {
                    cap = cap ? cap * 2 : 8;
                    t->v = xrealloc(t->v, cap * sizeof *t->v);
                }
                e.line = line;
                t->v[t->n++] = e;
            }
            free(norm);
        }
        sv_free(&f);
        free(l);
    }
    return t;
}

void tls_policy_free(tls_policy_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) entry_free(&t->v[i]);
    free(t->v);
    free(t);
}

const tls_policy_entry *tls_policy_lookup(const tls_policy_table *t, const char *domain)
{
    if (!t || !domain || !t->n) return NULL;
    char *d = lower(xstrdup(domain));
    size_t n = strlen(d);
    if (n && d[n - 1] == '.') d[n - 1] = '\0'; /* an absolute name is the same domain */
    const tls_policy_entry *e = find_exact(t, d);
    for (const char *dot = strchr(d, '.'); !e && dot; dot = strchr(dot + 1, '.'))
        e = find_exact(t, dot); /* ".b.c" then ".c": the longest suffix first */
    if (!e) e = find_exact(t, "*");
    free(d);
    return e;
}

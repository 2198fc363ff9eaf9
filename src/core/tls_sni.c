/* tls_sni.c - the server's certificates by name (see tls_sni.h). */
#include "core/tls_sni.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define SNI_NAME_MAX 253

/* host_ok - a host name of LDH (and '_') labels, each 1..63 octets, at most 253 in all. */
static bool host_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > SNI_NAME_MAX) return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return false;
        if (++label > 63) return false;
    }
    return label > 0;
}

/* norm - a copy of name in lower case without a final dot. */
static char *norm(const char *name)
{
    char *s = xstrdup(name);
    for (char *p = s; *p; p++) *p = (char)tolower((unsigned char)*p);
    size_t n = strlen(s);
    if (n > 1 && s[n - 1] == '.') s[n - 1] = '\0';
    return s;
}

/* find - the index of the entry named exactly name (normalised), or -1. */
static long find(const tls_sni_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0) return (long)i;
    return -1;
}

/* report - format a message for the error callback. */
static void report(tls_sni_err_cb err, void *arg, int line, const char *fmt, const char *a)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a);
    if (err) err(arg, line, msg);
}

/* path_in - path as written, or joined to dir when relative. */
static char *path_in(const char *dir, const char *path)
{
    if (path[0] == '/' || !dir || !*dir) return xstrdup(path);
    size_t n = strlen(dir);
    return xasprintf("%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", path);
}

/* parse_line - the fields of one line into e; false (reported) when malformed. */
static bool parse_line(const tls_sni_table *t, const strvec *f, const char *dir, tls_sni_entry *e, tls_sni_err_cb err,
                       void *arg, int line)
{
    char *name = norm(f->v[0]);
    const char *host = strncmp(name, "*.", 2) == 0 ? name + 2 : name;
    bool ok = false;
    if (!host_ok(host))
        report(err, arg, line, "\"%s\" is not a host name or *.domain", f->v[0]);
    else if (f->n < 2)
        report(err, arg, line, "\"%s\": a certificate file must follow the name", f->v[0]);
    else if (f->n > 3)
        report(err, arg, line, "\"%s\": too many fields (name, certificate, key)", f->v[0]);
    else if (find(t, name) >= 0)
        report(err, arg, line, "\"%s\" already has an entry", f->v[0]);
    else
        ok = true;
    if (!ok) {
        free(name);
        return false;
    }
    e->name = name;
    e->cert = path_in(dir, f->v[1]);
    e->key = path_in(dir, f->v[f->n == 3 ? 2 : 1]);
    e->line = line;
    return true;
}

tls_sni_table *tls_sni_parse(const char *text, const char *dir, tls_sni_err_cb err, void *arg)
{
    tls_sni_table *t = xcalloc(1, sizeof *t);
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
        for (char *c = l; *c; c++)
            if (*c == '\r') *c = ' ';
        strvec f = {0};
        tls_sni_entry e;
        if (str_split_ws(l, &f) > 0 && parse_line(t, &f, dir, &e, err, arg, line)) {
            if (t->n == cap) t->v = xrealloc(t->v, (cap = cap ? cap * 2 : 8) * sizeof *t->v);
            t->v[t->n++] = e;
        }
        sv_free(&f);
        free(l);
    }
    return t;
}

void tls_sni_free(tls_sni_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].name);
        free(t->v[i].cert);
        free(t->v[i].key);
    }
    free(t->v);
    free(t);
}

long tls_sni_lookup(const tls_sni_table *t, const char *name)
{
    if (!t || !t->n || !name || strlen(name) > SNI_NAME_MAX + 1) return -1;
    char *n = norm(name);
    long i = host_ok(n) ? find(t, n) : -1;
    const char *dot = strchr(n, '.');
    if (i < 0 && dot && host_ok(n)) { /* "*.example.org" for "mx.example.org", not for "a.mx.example.org" */
        char *wild = xasprintf("*%s", dot);
        i = find(t, wild);
        free(wild);
    }
    free(n);
    return i;
}

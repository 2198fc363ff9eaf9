/*
 * ldap_url.c - LDAP URLs and filters (see ldap_url.h).
 *
 * URL grammar (RFC 4516 section 2):
 *   scheme "://" [host [":" port]] ["/" dn ["?" [attributes] ["?" [scope] ["?" [filter] ["?" extensions]]]]]
 * The parts are split at '?' first and percent-decoded afterwards, so "%3F" inside a filter is a
 * '?' and not a separator. Filter grammar (RFC 4515 section 3): "(" followed by "&" or "|" and a
 * list of filters, "!" and one filter, or an item "attr=value", "attr=*", "attr=a*b*c",
 * "attr>=v", "attr<=v", "attr~=v", or an extensible match "attr:dn:rule:=v"; values escape '(',
 * ')', '*', '\' and NUL as \XX.
 */
#include "dir/ldap_url.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dir/ldap_text.h"

/* Nesting bound of a filter: deeper is not a broadcaster list but an attack on the stack. */
#define FILTER_MAX_DEPTH 32

enum fkind { F_AND, F_OR, F_NOT, F_EQ, F_PRESENT, F_SUB, F_OTHER };

struct ld_filter {
    enum fkind kind;
    ld_filter **kids; /* and, or, not */
    size_t n;
    char *attr;       /* items */
    char *value;      /* F_EQ: the decoded value */
    strvec parts;     /* F_SUB: initial, any..., final (decoded; initial/final may be "") */
};

/* set_err - format a message into err (which may be NULL). */
static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* hexval - the value of a hex digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- filters ---- */

typedef struct {
    const char *p;
    char *err;
    size_t errlen;
} fparser;

void ld_filter_free(ld_filter *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) ld_filter_free(f->kids[i]);
    free(f->kids);
    free(f->attr);
    free(f->value);
    sv_free(&f->parts);
    free(f);
}

/* value_decode - an assertion value (RFC 4515 escapes \XX) from [s, e) into a new string; NULL
 * (err set) when it holds a bare '(' ')' '*', a bad escape or an escaped NUL. Substrings are
 * split at their stars before they come here. */
static char *value_decode(fparser *P, const char *s, const char *e)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (const char *p = s; p < e; p++) {
        if (*p == '\\') {
            int hi = p + 1 < e ? hexval(p[1]) : -1, lo = p + 2 < e ? hexval(p[2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                set_err(P->err, P->errlen, "bad escape in filter value at \"%.10s\"", p);
                sb_free(&sb);
                return NULL;
            }
            sb_putc(&sb, (char)(hi * 16 + lo));
            p += 2;
        } else if (*p == '(' || *p == ')' || *p == '*') {
            set_err(P->err, P->errlen, "unescaped '%c' in filter value", *p);
            sb_free(&sb);
            return NULL;
        } else {
            sb_putc(&sb, *p);
        }
    }
    return sb_steal(&sb);
}

static ld_filter *parse_filter(fparser *P, int depth);

/* attr_len - the length of an attribute description at p (name, or OID, and ";options"). */
static size_t attr_len(const char *p)
{
    size_t n = 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '-' || p[n] == ';' || p[n] == '.') n++;
    return n;
}

/* parse_item - "attr=value" and friends, up to (not including) the closing ')'. */
static ld_filter *parse_item(fparser *P)
{
    const char *start = P->p;
    const char *close = strchr(start, ')');
    if (!close) {
        set_err(P->err, P->errlen, "missing ')' in filter");
        return NULL;
    }
    size_t alen = attr_len(start);
    ld_filter *f = xcalloc(1, sizeof *f);
    const char *op = start + alen;
    if (*op == ':') { /* extensible match: checked for shape only */
        const char *eq = strstr(op, ":=");
        if (!eq || eq > close) {
            set_err(P->err, P->errlen, "malformed extensible match in filter");
            goto fail;
        }
        f->kind = F_OTHER;
        char *v = value_decode(P, eq + 2, close);
        if (!v) goto fail;
        free(v);
        P->p = close;
        return f;
    }
    if (alen == 0) {
        set_err(P->err, P->errlen, "missing attribute name in filter at \"%.20s\"", start);
        goto fail;
    }
    f->attr = xstrndup(start, alen);
    if ((op[0] == '>' || op[0] == '<' || op[0] == '~') && op[1] == '=') {
        f->kind = F_OTHER;
        char *v = value_decode(P, op + 2, close);
        if (!v) goto fail;
        free(v);
        P->p = close;
        return f;
    }
    if (op[0] != '=') {
        set_err(P->err, P->errlen, "expected '=' after the attribute %s in filter", f->attr);
        goto fail;
    }
    const char *v = op + 1;
    if (v + 1 == close && *v == '*') {
        f->kind = F_PRESENT;
        P->p = close;
        return f;
    }
    if (!memchr(v, '*', (size_t)(close - v))) {
        f->kind = F_EQ;
        f->value = value_decode(P, v, close);
        if (!f->value) goto fail;
        P->p = close;
        return f;
    }
    f->kind = F_SUB; /* split at the stars: initial, any..., final */
    const char *s = v;
    for (;;) {
        const char *star = memchr(s, '*', (size_t)(close - s));
        const char *end = star ? star : close;
        char *part = value_decode(P, s, end);
        if (!part) goto fail;
        if (star && s != v && star == s) { /* "**": an empty any */
            free(part);
            set_err(P->err, P->errlen, "empty substring between '*' in filter");
            goto fail;
        }
        sv_push_owned(&f->parts, part);
        if (!star) break;
        s = star + 1;
    }
    P->p = close;
    return f;
fail:
    ld_filter_free(f);
    return NULL;
}

/* parse_list - the filters of an and/or (RFC 4526 allows none: absolute true and false). */
static bool parse_list(fparser *P, ld_filter *f, int depth)
{
    while (*P->p == '(') {
        ld_filter *k = parse_filter(P, depth + 1);
        if (!k) return false;
        f->kids = xrealloc(f->kids, (f->n + 1) * sizeof *f->kids);
        f->kids[f->n++] = k;
    }
    return true;
}

/* parse_filter - "(" filtercomp ")" at P->p. */
static ld_filter *parse_filter(fparser *P, int depth)
{
    if (depth > FILTER_MAX_DEPTH) {
        set_err(P->err, P->errlen, "filter nested deeper than %d levels", FILTER_MAX_DEPTH);
        return NULL;
    }
    if (*P->p != '(') {
        set_err(P->err, P->errlen, "expected '(' in filter at \"%.20s\"", P->p);
        return NULL;
    }
    P->p++;
    ld_filter *f;
    char c = *P->p;
    if (c == '&' || c == '|' || c == '!') {
        P->p++;
        f = xcalloc(1, sizeof *f);
        f->kind = c == '&' ? F_AND : c == '|' ? F_OR : F_NOT;
        if (!parse_list(P, f, depth)) {
            ld_filter_free(f);
            return NULL;
        }
        if (f->kind == F_NOT && f->n != 1) {
            set_err(P->err, P->errlen, "'!' takes exactly one filter");
            ld_filter_free(f);
            return NULL;
        }
    } else {
        f = parse_item(P);
        if (!f) return NULL;
    }
    if (*P->p != ')') {
        set_err(P->err, P->errlen, "expected ')' in filter at \"%.20s\"", P->p);
        ld_filter_free(f);
        return NULL;
    }
    P->p++;
    return f;
}

ld_filter *ld_filter_parse(const char *text, char *err, size_t errlen)
{
    char *owned = NULL;
    if (text[0] != '(') text = owned = xasprintf("(%s)", text);
    fparser P = {text, err, errlen};
    ld_filter *f = parse_filter(&P, 0);
    if (f && *P.p) {
        set_err(err, errlen, "text after the filter: \"%.20s\"", P.p);
        ld_filter_free(f);
        f = NULL;
    }
    free(owned);
    return f;
}

/* ci_find - the first case-insensitive occurrence of needle in hay, or NULL. */
static const char *ci_find(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return hay;
    return n == 0 ? hay : NULL;
}

/* sub_match - a substring assertion against one value. */
static bool sub_match(const ld_filter *f, const char *v)
{
    const char *initial = f->parts.v[0], *final = f->parts.v[f->parts.n - 1];
    size_t len = strlen(v), il = strlen(initial), fl = strlen(final);
    if (il + fl > len) return false;
    if (strncasecmp(v, initial, il) != 0) return false;
    if (strcasecmp(v + len - fl, final) != 0) return false;
    /* the anys, in order, in the middle part */
    char *mid = xstrndup(v + il, len - il - fl);
    const char *p = mid;
    bool ok = true;
    for (size_t i = 1; ok && i + 1 < f->parts.n; i++) {
        const char *hit = ci_find(p, f->parts.v[i]);
        if (!hit) ok = false;
        else p = hit + strlen(f->parts.v[i]);
    }
    free(mid);
    return ok;
}

int ld_filter_eval(const ld_filter *f, dir_values_fn fn, const void *src)
{
    switch (f->kind) {
    case F_AND:
    case F_OR: {
        bool unknown = false;
        int decisive = f->kind == F_AND ? 0 : 1;
        for (size_t i = 0; i < f->n; i++) {
            int r = ld_filter_eval(f->kids[i], fn, src);
            if (r == decisive) return decisive;
            if (r < 0) unknown = true;
        }
        return unknown ? -1 : !decisive;
    }
    case F_NOT: {
        int r = ld_filter_eval(f->kids[0], fn, src);
        return r < 0 ? -1 : !r;
    }
    case F_OTHER:
        return -1;
    default:
        break;
    }
    strvec vals = {0};
    size_t nlen = ld_attr_name_len(f->attr);
    char *name = xstrndup(f->attr, nlen);
    fn(src, name, &vals);
    free(name);
    int r = 0;
    for (size_t i = 0; i < vals.n && !r; i++) {
        if (f->kind == F_PRESENT) r = 1;
        else if (f->kind == F_EQ) r = strcasecmp(vals.v[i], f->value) == 0;
        else r = sub_match(f, vals.v[i]);
    }
    sv_free(&vals);
    return r;
}

/* ---- DNs ---- */

/* single_rdn - whether the normalised DN text [d, d+len) is one RDN (no unescaped ','). */
static bool single_rdn(const char *d, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (d[i] == '\\' && i + 1 < len) i++;
        else if (d[i] == ',') return false;
    }
    return len > 0;
}

bool ld_dn_in_scope(const char *dn, const char *base, enum ld_scope scope)
{
    char *d = ld_dn_normalize(dn), *b = ld_dn_normalize(base);
    size_t dl = strlen(d), bl = strlen(b);
    bool in = false;
    if (scope == LD_SCOPE_BASE || dl == bl)
        in = strcmp(d, b) == 0 && (scope != LD_SCOPE_ONE);
    else if (bl == 0) /* the root: every DN is below it */
        in = scope == LD_SCOPE_SUB || single_rdn(d, dl);
    else if (dl > bl && d[dl - bl - 1] == ',' && strcmp(d + dl - bl, b) == 0)
        in = scope == LD_SCOPE_SUB || single_rdn(d, dl - bl - 1);
    free(d);
    free(b);
    return in;
}

/* ---- URLs ---- */

/* pct_decode - percent-decode [s, e); NULL with err on a bad or NUL escape (caller frees). */
static char *pct_decode(const char *s, const char *e, const char *what, char *err, size_t errlen)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (const char *p = s; p < e; p++) {
        if (*p != '%') {
            sb_putc(&sb, *p);
            continue;
        }
        int hi = p + 1 < e ? hexval(p[1]) : -1, lo = p + 2 < e ? hexval(p[2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            set_err(err, errlen, "bad percent escape in the %s of the LDAP URL", what);
            sb_free(&sb);
            return NULL;
        }
        sb_putc(&sb, (char)(hi * 16 + lo));
        p += 2;
    }
    return sb_steal(&sb);
}

void ld_url_free(ld_url *u)
{
    if (!u) return;
    free(u->host);
    free(u->dn);
    sv_free(&u->attrs);
    free(u->filter);
    memset(u, 0, sizeof *u);
}

/* url_scheme_len - the length of "ldap://", "ldaps://" or "ldapi://" at the start of text, or 0. */
static size_t url_scheme_len(const char *text)
{
    static const char *const schemes[] = {"ldap://", "ldaps://", "ldapi://"};
    for (size_t i = 0; i < SL_ARRAY_LEN(schemes); i++)
        if (strncasecmp(text, schemes[i], strlen(schemes[i])) == 0) return strlen(schemes[i]);
    return 0;
}

/* url_attrs - the attribute list part (comma-separated, each decoded). */
static int url_attrs(ld_url *u, const char *s, const char *e, char *err, size_t errlen)
{
    while (s < e) {
        const char *comma = memchr(s, ',', (size_t)(e - s));
        const char *end = comma ? comma : e;
        char *a = pct_decode(s, end, "attributes", err, errlen);
        if (!a) return -1;
        if (!*a || attr_len(a) != strlen(a)) {
            set_err(err, errlen, "bad attribute \"%s\" in the LDAP URL", a);
            free(a);
            return -1;
        }
        sv_push_owned(&u->attrs, a);
        s = comma ? comma + 1 : e;
    }
    return 0;
}

/* url_scope - the scope part: "", base, one or sub. */
static int url_scope(ld_url *u, const char *s, const char *e, char *err, size_t errlen)
{
    char *sc = pct_decode(s, e, "scope", err, errlen);
    if (!sc) return -1;
    int rc = 0;
    if (!*sc || strcasecmp(sc, "base") == 0) u->scope = LD_SCOPE_BASE;
    else if (strcasecmp(sc, "one") == 0) u->scope = LD_SCOPE_ONE;
    else if (strcasecmp(sc, "sub") == 0) u->scope = LD_SCOPE_SUB;
    else {
        set_err(err, errlen, "bad scope \"%s\" in the LDAP URL (base, one or sub)", sc);
        rc = -1;
    }
    free(sc);
    return rc;
}

/* url_filter - the filter part, checked, parenthesised. */
static int url_filter(ld_url *u, const char *s, const char *e, char *err, size_t errlen)
{
    char *f = pct_decode(s, e, "filter", err, errlen);
    if (!f) return -1;
    if (!*f) {
        free(f);
        u->filter = xstrdup("(objectClass=*)");
        return 0;
    }
    char why[160];
    ld_filter *parsed = ld_filter_parse(f, why, sizeof why);
    if (!parsed) {
        set_err(err, errlen, "bad filter in the LDAP URL: %s", why);
        free(f);
        return -1;
    }
    ld_filter_free(parsed);
    u->filter = f[0] == '(' ? f : xasprintf("(%s)", f);
    if (u->filter != f) free(f);
    return 0;
}

/* url_extensions - the extensions part: a critical one ("!name") cannot be honoured. */
static int url_extensions(const char *s, const char *e, char *err, size_t errlen)
{
    while (s < e) {
        const char *comma = memchr(s, ',', (size_t)(e - s));
        const char *end = comma ? comma : e;
        if (*s == '!') {
            set_err(err, errlen, "unsupported critical extension \"%.*s\" in the LDAP URL", (int)(end - s), s);
            return -1;
        }
        s = comma ? comma + 1 : e;
    }
    return 0;
}

int ld_url_parse(const char *text, ld_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t sl = url_scheme_len(text);
    if (!sl) {
        set_err(err, errlen, "not an LDAP URL (ldap://, ldaps:// or ldapi://)");
        return -1;
    }
    const char *host = text + sl;
    const char *slash = strchr(host, '/');
    const char *hend = slash ? slash : host + strlen(host);
    if (memchr(host, '?', (size_t)(hend - host))) {
        set_err(err, errlen, "'?' before the '/' of the base DN in the LDAP URL");
        return -1;
    }
    out->host = pct_decode(host, hend, "host", err, errlen);
    out->scope = LD_SCOPE_BASE;
    if (!out->host) goto fail;
    /* the parts after the host, split at '?' before decoding */
    const char *part[5] = {0}, *pend[5] = {0};
    size_t n = 0;
    if (slash) {
        const char *p = slash + 1;
        for (;;) {
            if (n == 5) {
                set_err(err, errlen, "too many '?' in the LDAP URL");
                goto fail;
            }
            const char *q = strchr(p, '?');
            part[n] = p;
            pend[n] = q ? q : p + strlen(p);
            n++;
            if (!q) break;
            p = q + 1;
        }
    }
    out->dn = n ? pct_decode(part[0], pend[0], "base DN", err, errlen) : xstrdup("");
    if (!out->dn) goto fail;
    if (n > 1 && url_attrs(out, part[1], pend[1], err, errlen) < 0) goto fail;
    if (n > 2 && url_scope(out, part[2], pend[2], err, errlen) < 0) goto fail;
    if (url_filter(out, n > 3 ? part[3] : "", n > 3 ? pend[3] : "", err, errlen) < 0) goto fail;
    if (n > 4 && url_extensions(part[4], pend[4], err, errlen) < 0) goto fail;
    return 0;
fail:
    ld_url_free(out);
    return -1;
}

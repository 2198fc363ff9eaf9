/*
 * spf_parse.c - the SPF record parser and macro expander (see spf.h). Pure: no DNS, no clock.
 *
 * The grammar is RFC 7208 §12: terms separated by runs of spaces; a term whose name is followed
 * by "=" is a modifier, anything else a directive. Mechanism and modifier names are
 * case-insensitive. Any syntax error makes the whole record a permerror (§4.6).
 */
#include "spf/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const spf_names[] = {"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"};

const char *spf_res_name(spf_res r)
{
    return (unsigned)r < SL_ARRAY_LEN(spf_names) ? spf_names[r] : "permerror";
}

bool spf_is_record(const char *txt)
{
    return str_has_prefix_ci(txt, "v=spf1") && (txt[6] == '\0' || txt[6] == ' ');
}

/* ------------------------------------------------------------------ macros */

/* macro_letter_ok - whether c (any case) is a macro letter, the exp-only ones when exp. */
static bool macro_letter_ok(char c, bool exp)
{
    c = (char)tolower((unsigned char)c);
    if (!c) return false;
    if (strchr("slodiphv", c)) return true;
    return exp && strchr("crt", c);
}

/* is_delim - one of the macro delimiters of §7.1. */
static bool is_delim(char c)
{
    return c && strchr(".-+,/_=", c) != NULL;
}

/* macro_parse_one - parse "%{...}" at s (s[0] == '%', s[1] == '{'); fills the parts; returns
 * the length, or 0 on a syntax error. */
static size_t macro_parse_one(const char *s, bool exp, char *letter, unsigned *digits, bool *rev, char *delims,
                              size_t dlen)
{
    size_t i = 2;
    if (!macro_letter_ok(s[i], exp)) return 0;
    *letter = s[i++];
    *digits = 0;
    bool have_digits = false;
    while (isdigit((unsigned char)s[i])) {
        have_digits = true;
        if (*digits < 1000) *digits = *digits * 10 + (unsigned)(s[i] - '0');
        i++;
    }
    if (have_digits && *digits == 0) return 0; /* "the value MUST be at least one" (§7.1) */
    *rev = false;
    if (s[i] == 'r' || s[i] == 'R') {
        *rev = true;
        i++;
    }
    size_t nd = 0;
    while (is_delim(s[i])) {
        if (nd + 1 < dlen && !strchr(delims, s[i])) {
            delims[nd++] = s[i];
            delims[nd] = '\0';
        }
        i++;
    }
    if (s[i] != '}') return 0;
    return i + 1;
}

bool spf_macro_check(const char *s, bool exp)
{
    for (size_t i = 0; s[i];) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (s[i + 1] == '%' || s[i + 1] == '_' || s[i + 1] == '-') {
                i += 2;
                continue;
            }
            if (s[i + 1] != '{') return false;
            char letter, delims[8] = "";
            unsigned digits;
            bool rev;
            size_t n = macro_parse_one(s + i, exp, &letter, &digits, &rev, delims, sizeof delims);
            if (!n) return false;
            i += n;
            continue;
        }
        /* macro-literal = %x21-24 / %x26-7E; an explanation string may also hold spaces */
        if (c < 0x21 || c > 0x7e) {
            if (!(exp && c == ' ')) return false;
        }
        i++;
    }
    return true;
}

/* ip_dotted - %{i}: dotted quad, or for IPv6 32 nibbles separated by dots (§7.3). */
static void ip_dotted(const struct sockaddr_storage *ip, strbuf *out)
{
    char buf[INET6_ADDRSTRLEN];
    if (ip->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ip)->sin_addr, buf, sizeof buf);
        sb_puts(out, buf);
        return;
    }
    const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in6 *)ip)->sin6_addr;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) sb_printf(out, "%s%c.%c", i ? "." : "", hex[a[i] >> 4], hex[a[i] & 15]);
}

/* macro_value - the raw value of letter into out. */
static void macro_value(char letter, const spf_macro_vars *v, strbuf *out)
{
    const char *at = v->sender ? strrchr(v->sender, '@') : NULL;
    char buf[INET6_ADDRSTRLEN];
    switch (tolower((unsigned char)letter)) {
    case 's': sb_puts(out, v->sender ? v->sender : ""); break;
    case 'l':
        if (at && at > v->sender) sb_append(out, v->sender, (size_t)(at - v->sender));
        else sb_puts(out, "postmaster");
        break;
    case 'o': sb_puts(out, at ? at + 1 : ""); break;
    case 'd': sb_puts(out, v->domain ? v->domain : ""); break;
    case 'i': if (v->ip) ip_dotted(v->ip, out); break;
    case 'p': sb_puts(out, v->ptr ? v->ptr : "unknown"); break;
    case 'v': sb_puts(out, v->ip && v->ip->ss_family == AF_INET6 ? "ip6" : "in-addr"); break;
    case 'h': sb_puts(out, v->helo ? v->helo : ""); break;
    case 'c':
        if (v->ip) {
            const void *a = v->ip->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)v->ip)->sin_addr
                                                        : (const void *)&((const struct sockaddr_in6 *)v->ip)->sin6_addr;
            inet_ntop(v->ip->ss_family, a, buf, sizeof buf);
            sb_puts(out, buf);
        }
        break;
    case 'r': sb_puts(out, v->receiver && *v->receiver ? v->receiver : "unknown"); break;
    case 't': sb_printf(out, "%lld", (long long)v->now); break;
    default: break;
    }
}

/* macro_transform - split raw at delims, reverse if rev, keep the rightmost digits parts, join with ".". */
static void macro_transform(const char *raw, const char *delims, unsigned digits, bool rev, strbuf *out)
{
    strvec parts = {0};
    const char *p = raw;
    for (;;) {
        size_t n = strcspn(p, delims);
        sv_push_owned(&parts, xstrndup(p, n));
        if (!p[n]) break;
        p += n + 1;
    }
    if (rev) {
        for (size_t i = 0; i < parts.n / 2; i++) {
            char *t = parts.v[i];
            parts.v[i] = parts.v[parts.n - 1 - i];
            parts.v[parts.n - 1 - i] = t;
        }
    }
    size_t first = digits && digits < parts.n ? parts.n - digits : 0;
    for (size_t i = first; i < parts.n; i++) sb_printf(out, "%s%s", i > first ? "." : "", parts.v[i]);
    sv_free(&parts);
}

/* url_escape - an upper-case macro letter: escape all but the unreserved characters (§7.3). */
static void url_escape(const char *s, strbuf *out)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            sb_putc(out, (char)c);
        else
            sb_printf(out, "%%%02X", c);
    }
}

int spf_macro_expand(const char *s, const spf_macro_vars *v, bool exp, strbuf *out, char *err, size_t errlen)
{
    if (!spf_macro_check(s, exp)) {
        snprintf(err, errlen, "invalid macro-string '%.100s'", s);
        return -1;
    }
    for (size_t i = 0; s[i];) {
        if (s[i] != '%') {
            sb_putc(out, s[i++]);
            continue;
        }
        char next = s[i + 1];
        if (next == '%' || next == '_' || next == '-') {
            sb_puts(out, next == '%' ? "%" : next == '_' ? " " : "%20");
            i += 2;
            continue;
        }
        char letter, delims[8] = "";
        unsigned digits;
        bool rev;
        i += macro_parse_one(s + i, exp, &letter, &digits, &rev, delims, sizeof delims);
        strbuf raw, done;
        sb_init(&raw);
        sb_init(&done);
        macro_value(letter, v, &raw);
        macro_transform(raw.data ? raw.data : "", delims[0] ? delims : ".", digits, rev, &done);
        if (isupper((unsigned char)letter))
            url_escape(done.data ? done.data : "", out);
        else if (done.len)
            sb_append(out, done.data, done.len);
        sb_free(&raw);
        sb_free(&done);
    }
    if (!out->data) sb_puts(out, "");
    return 0;
}

void spf_domain_trim(strbuf *d)
{
    if (d->len <= 253) return;
    const char *p = d->data;
    while (strlen(p) > 253) {
        const char *dot = strchr(p, '.');
        if (!dot) break;
        p = dot + 1;
    }
    char *keep = xstrdup(p);
    sb_reset(d);
    sb_puts(d, keep);
    free(keep);
}

/* ------------------------------------------------------------------ records */

/* domain_spec_ok - a domain-spec: a macro-string ending in "." toplabel ["."] or in a macro-expand. */
static bool domain_spec_ok(const char *s)
{
    if (!*s || !spf_macro_check(s, false)) return false;
    size_t len = strlen(s);
    if (s[len - 1] == '}') return true;
    /* a trailing %%, %_ or %- is a macro-expand too */
    if (len >= 2 && s[len - 2] == '%' && strchr("%_-", s[len - 1])) {
        size_t pct = 0; /* count the %'s before: an odd run means the last two are one escape */
        for (size_t i = len - 1; i > 0 && s[i - 1] == '%'; i--) pct++;
        if (pct % 2 == 1) return true;
    }
    char *d = xstrdup(s);
    if (len > 1 && d[len - 1] == '.') d[--len] = '\0';
    char *dot = strrchr(d, '.');
    bool ok = false;
    if (dot && dot[1]) {
        const char *t = dot + 1;
        size_t tl = strlen(t);
        bool alpha = false, chars = true;
        for (size_t i = 0; i < tl; i++) {
            if (isalpha((unsigned char)t[i])) alpha = true;
            else if (!isdigit((unsigned char)t[i]) && t[i] != '-') chars = false;
        }
        /* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
        ok = chars && t[0] != '-' && t[tl - 1] != '-' && (alpha || strchr(t, '-'));
    }
    free(d);
    return ok;
}

/* cidr_len - parse the digits of a prefix length (no leading zero) up to max; -1 when invalid. */
static int cidr_len(const char *s, size_t n, int max)
{
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0')) return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

/* split_cidr - cut a trailing dual-cidr-length "/N", "//M" or "/N//M" off arg (in place); -1 when malformed. */
static int split_cidr(char *arg, int *c4, int *c6)
{
    size_t len = strlen(arg);
    size_t d = len;
    while (d > 0 && isdigit((unsigned char)arg[d - 1])) d--;
    if (d >= 2 && d < len && arg[d - 1] == '/' && arg[d - 2] == '/') {
        if ((*c6 = cidr_len(arg + d, len - d, 128)) < 0) return -1;
        arg[d - 2] = '\0';
        len = d - 2;
        d = len;
        while (d > 0 && isdigit((unsigned char)arg[d - 1])) d--;
    }
    if (d >= 1 && d < len && arg[d - 1] == '/' && (d < 2 || arg[d - 2] != '/')) {
        if ((*c4 = cidr_len(arg + d, len - d, 32)) < 0) return -1;
        arg[d - 1] = '\0';
    }
    return 0;
}

static const struct {
    const char *name;
    spf_mech_kind kind;
} mech_names[] = {{"all", SPF_ALL}, {"include", SPF_INCLUDE}, {"a", SPF_A}, {"mx", SPF_MX},
                  {"ptr", SPF_PTR}, {"ip4", SPF_IP4}, {"ip6", SPF_IP6}, {"exists", SPF_EXISTS}};

/* directive_parse - one directive term into m; -1 + err when malformed. */
static int directive_parse(const char *term, spf_mech *m, char *err, size_t errlen)
{
    const char *p = term;
    m->qual = '+';
    if (strchr("+-~?", *p)) m->qual = *p++;
    size_t nl = strcspn(p, ":/");
    size_t k = 0;
    while (k < SL_ARRAY_LEN(mech_names) &&
           !(strlen(mech_names[k].name) == nl && strncasecmp(p, mech_names[k].name, nl) == 0))
        k++;
    if (k == SL_ARRAY_LEN(mech_names)) {
        snprintf(err, errlen, "unknown mechanism '%.60s'", term);
        return -1;
    }
    m->kind = mech_names[k].kind;
    m->cidr4 = 32;
    m->cidr6 = 128;
    m->text = xstrdup(term);
    const char *rest = p + nl;
    char *arg = NULL;
    int rc = 0;
    switch (m->kind) {
    case SPF_ALL:
        if (*rest) rc = -1;
        break;
    case SPF_INCLUDE:
    case SPF_EXISTS:
    case SPF_PTR:
        if (*rest == ':') {
            m->domain = xstrdup(rest + 1);
            if (!domain_spec_ok(m->domain)) rc = -1;
        } else if (*rest || m->kind != SPF_PTR)
            rc = -1;
        break;
    case SPF_A:
    case SPF_MX:
        arg = xstrdup(*rest == ':' ? rest + 1 : rest);
        if (split_cidr(arg, &m->cidr4, &m->cidr6) < 0) rc = -1;
        else if (*rest == ':') {
            m->domain = arg;
            arg = NULL;
            if (!domain_spec_ok(m->domain)) rc = -1;
        } else if (*arg)
            rc = -1;
        break;
    case SPF_IP4:
    case SPF_IP6:
        if (*rest != ':') {
            rc = -1;
            break;
        }
        arg = xstrdup(rest + 1);
        char *slash = strchr(arg, '/');
        int c = -1;
        if (slash) {
            *slash++ = '\0';
            c = cidr_len(slash, strlen(slash), m->kind == SPF_IP4 ? 32 : 128);
            if (c < 0) rc = -1;
        }
        if (inet_pton(m->kind == SPF_IP4 ? AF_INET : AF_INET6, arg, m->ip) != 1) rc = -1;
        if (c >= 0) {
            if (m->kind == SPF_IP4) m->cidr4 = c;
            else m->cidr6 = c;
        }
        break;
    }
    free(arg);
    if (rc < 0) snprintf(err, errlen, "invalid mechanism '%.60s'", term);
    return rc;
}

/* modifier_name_len - the length of a modifier name at the start of term followed by "=", else 0. */
static size_t modifier_name_len(const char *term)
{
    if (!isalpha((unsigned char)term[0])) return 0;
    size_t i = 1;
    while (isalnum((unsigned char)term[i]) || term[i] == '-' || term[i] == '_' || term[i] == '.') i++;
    return term[i] == '=' ? i : 0;
}

/* term_parse - one term into r; -1 + err when malformed. */
static int term_parse(const char *term, spf_record *r, char *err, size_t errlen)
{
    size_t nl = modifier_name_len(term);
    if (nl) {
        const char *val = term + nl + 1;
        char **slot = nl == 8 && !strncasecmp(term, "redirect", 8) ? &r->redirect
                    : nl == 3 && !strncasecmp(term, "exp", 3)      ? &r->exp
                                                                     : NULL;
        if (slot) {
            if (*slot) {
                snprintf(err, errlen, "%.*s= given twice", (int)nl, term);
                return -1;
            }
            if (!domain_spec_ok(val)) {
                snprintf(err, errlen, "invalid domain-spec in '%.60s'", term);
                return -1;
            }
            *slot = xstrdup(val);
        } else if (!spf_macro_check(val, false)) { /* unknown modifiers are ignored, but must be well-formed */
            snprintf(err, errlen, "invalid modifier '%.60s'", term);
            return -1;
        }
        return 0;
    }
    r->mech = xrealloc(r->mech, (r->n + 1) * sizeof *r->mech);
    spf_mech *m = &r->mech[r->n];
    memset(m, 0, sizeof *m);
    r->n++;
    return directive_parse(term, m, err, errlen);
}

int spf_record_parse(const char *txt, spf_record *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!spf_is_record(txt)) {
        snprintf(err, errlen, "not an SPF record");
        return -1;
    }
    for (const char *p = txt + 6; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t n = strcspn(p, " ");
        char *term = xstrndup(p, n);
        int rc = term_parse(term, out, err, errlen);
        free(term);
        if (rc < 0) {
            spf_record_free(out);
            return -1;
        }
        p += n;
    }
    return 0;
}

void spf_record_free(spf_record *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->mech[i].domain);
        free(r->mech[i].text);
    }
    free(r->mech);
    free(r->redirect);
    free(r->exp);
    memset(r, 0, sizeof *r);
}

/* sts_policy.c - MTA-STS TXT records, policy files, MX matching and cache files (see sts_policy.h). */
#include "sts/sts_policy.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* say - put a formatted reason into why (when there is room for one) and return false. */
static bool say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool say(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* is_wsp - SP or HTAB (RFC 5234 WSP). */
static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* is_alnum - an ASCII letter or digit (never the locale's idea of one). */
static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* lower_ascii - c in ASCII lower case. */
static char lower_ascii(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ext_name_len - the length of an extension name at p ((ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" /
 * "-" / ".")), 0 when there is none; a longer run of name characters also gives 0. */
static size_t ext_name_len(const char *p, size_t max)
{
    if (max == 0 || !is_alnum((unsigned char)p[0])) return 0;
    size_t n = 1;
    while (n < max && (is_alnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '-' || p[n] == '.')) n++;
    return n > 32 ? 0 : n;
}

/* ---- the TXT record (§3.1) ------------------------------------------------------------ */

/* txt_field - one sts-field at *pp (advanced past it); an "id" goes into id. */
static bool txt_field(const char **pp, char id[STS_ID_MAX + 1], char *why, size_t whylen)
{
    const char *p = *pp;
    size_t nl = ext_name_len(p, strlen(p));
    if (!nl || p[nl] != '=') return say(why, whylen, "malformed field at \"%.20s\"", p);
    const char *val = p + nl + 1, *end = val;
    while ((unsigned char)*end >= 0x21 && (unsigned char)*end <= 0x7e && *end != ';' && *end != '=') end++;
    if (end == val) return say(why, whylen, "field \"%.*s\" has no value", (int)nl, p);
    if (*end && *end != ';' && !is_wsp((unsigned char)*end))
        return say(why, whylen, "bad character in the value of \"%.*s\"", (int)nl, p);
    if (nl == 2 && memcmp(p, "id", 2) == 0) {
        size_t vl = (size_t)(end - val);
        if (id[0]) return say(why, whylen, "id given twice");
        if (vl > STS_ID_MAX) return say(why, whylen, "id longer than %d characters", STS_ID_MAX);
        for (size_t i = 0; i < vl; i++)
            if (!is_alnum((unsigned char)val[i]))
                return say(why, whylen, "id holds a character other than letters and digits");
        memcpy(id, val, vl);
        id[vl] = '\0';
    }
    *pp = end;
    return true;
}

/* txt_parse - sts_txt_parse without clearing id on failure. */
static bool txt_parse(const char *txt, char id[STS_ID_MAX + 1], char *why, size_t whylen)
{
    if (strncmp(txt, "v=STSv1", 7) != 0) return say(why, whylen, "does not begin with v=STSv1");
    const char *p = txt + 7;
    size_t fields = 0;
    for (;;) {
        const char *w = p;
        while (is_wsp((unsigned char)*p)) p++;
        if (*p == '\0' && p == w && fields) break; /* the last field, no delimiter after it */
        if (*p != ';') return say(why, whylen, "expected \";\" at \"%.20s\"", p);
        p++;
        while (is_wsp((unsigned char)*p)) p++;
        if (*p == '\0' && fields) break; /* a final delimiter */
        if (!txt_field(&p, id, why, whylen)) return false;
        fields++;
    }
    if (!id[0]) return say(why, whylen, "no id field");
    return true;
}

bool sts_txt_parse(const char *txt, char id[STS_ID_MAX + 1], char *why, size_t whylen)
{
    id[0] = '\0';
    bool ok = txt_parse(txt, id, why, whylen);
    if (!ok) id[0] = '\0';
    return ok;
}

bool sts_txt_select(char *const *strs, size_t n, char id[STS_ID_MAX + 1], char *why, size_t whylen)
{
    const char *rec = NULL;
    size_t found = 0;
    id[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (strncmp(strs[i], "v=STSv1;", 8) != 0) continue;
        rec = strs[i];
        found++;
    }
    if (found == 0) return say(why, whylen, "no TXT record begins with v=STSv1;");
    if (found > 1) return say(why, whylen, "%zu TXT records begin with v=STSv1;", found);
    return sts_txt_parse(rec, id, why, whylen);
}

/* ---- the policy file (§3.2) ----------------------------------------------------------- */

/* utf8_len - the length of the well-formed UTF-8 sequence of 2 to 4 bytes at p (at most max
 * bytes), 0 when it is not one (overlong forms, surrogates and values above U+10FFFF refused). */
static size_t utf8_len(const unsigned char *p, size_t max)
{
    size_t n = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
               : p[0] >= 0xe0 && p[0] <= 0xef ? 3
               : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                              : 0;
    if (!n || n > max) return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if (p[0] == 0xe0 && p[1] < 0xa0) return 0; /* overlong */
    if (p[0] == 0xed && p[1] > 0x9f) return 0; /* surrogates */
    if (p[0] == 0xf0 && p[1] < 0x90) return 0; /* overlong */
    if (p[0] == 0xf4 && p[1] > 0x8f) return 0; /* above U+10FFFF */
    return n;
}

/* value_ok - a field value: sts-policy-vchar *(*WSP sts-policy-vchar), vchar being VCHAR or UTF-8. */
static bool value_ok(const char *v, size_t n)
{
    if (n == 0 || is_wsp((unsigned char)v[0]) || is_wsp((unsigned char)v[n - 1])) return false;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)v[i];
        if (is_wsp(c) || (c >= 0x21 && c <= 0x7e)) {
            i++;
            continue;
        }
        size_t u = c >= 0x80 ? utf8_len((const unsigned char *)v + i, n - i) : 0;
        if (!u) return false;
        i += u;
    }
    return true;
}

/* domain_ok_n - RFC 5321 Domain: labels of letters, digits and inner hyphens, 1..63 octets each,
 * at most 253 in all. */
static bool domain_ok_n(const char *s, size_t n)
{
    if (n == 0 || n > 253) return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        if (!is_alnum(c) && !(c == '-' && label > 0)) return false;
        if (++label > 63) return false;
    }
    return label > 0 && s[n - 1] != '-';
}

bool sts_domain_ok(const char *s)
{
    return s && domain_ok_n(s, strlen(s));
}

/* mx_value - an mx pattern (["*."] Domain) in lower case into p; false when malformed. */
static bool mx_value(sts_policy *p, const char *v, size_t n)
{
    size_t skip = n > 2 && v[0] == '*' && v[1] == '.' ? 2 : 0;
    if (!domain_ok_n(v + skip, n - skip)) return false;
    char *m = xstrndup(v, n);
    for (char *q = m; *q; q++) *q = lower_ascii(*q);
    sv_push_owned(&p->mx, m);
    return true;
}

/* Which of the fields that may appear once have been seen. */
struct seen {
    bool version, mode, max_age;
};

/* known_field - act on a field of §3.2 (name/value); false + why when its value is bad or it repeats. */
static bool known_field(sts_policy *p, struct seen *seen, const char *name, size_t nl, const char *v, size_t n,
                        int line, char *why, size_t whylen)
{
#define IS(s) (nl == sizeof(s) - 1 && memcmp(name, s, nl) == 0)
#define VAL(s) (n == sizeof(s) - 1 && memcmp(v, s, n) == 0)
    if (IS("version")) {
        if (seen->version) return say(why, whylen, "line %d: version given twice", line);
        seen->version = true;
        if (!VAL("STSv1")) return say(why, whylen, "line %d: version is not STSv1", line);
    } else if (IS("mode")) {
        if (seen->mode) return say(why, whylen, "line %d: mode given twice", line);
        seen->mode = true;
        if (VAL("enforce")) p->mode = STS_MODE_ENFORCE;
        else if (VAL("testing")) p->mode = STS_MODE_TESTING;
        else if (VAL("none")) p->mode = STS_MODE_NONE;
        else return say(why, whylen, "line %d: mode is not enforce, testing or none", line);
    } else if (IS("max_age")) {
        if (seen->max_age) return say(why, whylen, "line %d: max_age given twice", line);
        seen->max_age = true;
        uint64_t age = 0;
        if (n > 10) return say(why, whylen, "line %d: max_age has more than 10 digits", line);
        for (size_t i = 0; i < n; i++) {
            if (v[i] < '0' || v[i] > '9') return say(why, whylen, "line %d: max_age is not a number", line);
            age = age * 10 + (uint64_t)(v[i] - '0');
        }
        if (age > STS_MAX_AGE_MAX) return say(why, whylen, "line %d: max_age above %u", line, STS_MAX_AGE_MAX);
        p->max_age = (unsigned)age;
    } else if (IS("mx")) {
        if (!mx_value(p, v, n)) return say(why, whylen, "line %d: mx is not a host name or *.domain", line);
    }
    return true;
#undef IS
#undef VAL
}

/* policy_line - one line (without its line end) of the policy. */
static bool policy_line(sts_policy *p, struct seen *seen, const char *ln, size_t n, int line, char *why, size_t whylen)
{
    size_t nl = ext_name_len(ln, n);
    if (!nl || nl >= n || ln[nl] != ':') return say(why, whylen, "line %d: not \"name: value\"", line);
    size_t i = nl + 1;
    while (i < n && is_wsp((unsigned char)ln[i])) i++;
    size_t end = n;
    while (end > i && is_wsp((unsigned char)ln[end - 1])) end--;
    if (!value_ok(ln + i, end - i)) return say(why, whylen, "line %d: empty value or a control character", line);
    return known_field(p, seen, ln, nl, ln + i, end - i, line, why, whylen);
}

bool sts_policy_parse(const char *body, size_t len, sts_policy *p, char *why, size_t whylen)
{
    memset(p, 0, sizeof *p);
    struct seen seen = {0};
    if (len == 0) return say(why, whylen, "empty policy");
    if (len > STS_POLICY_MAX_BYTES) return say(why, whylen, "policy larger than %u bytes", STS_POLICY_MAX_BYTES);
    if (memchr(body, '\0', len)) return say(why, whylen, "NUL byte in the policy");
    int line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *ln = body + pos;
        const char *lf = memchr(ln, '\n', len - pos);
        size_t n = lf ? (size_t)(lf - ln) : len - pos;
        pos += n + (lf ? 1 : 0);
        line++;
        if (lf && n && ln[n - 1] == '\r') n--; /* CRLF; LF alone is allowed too */
        if (memchr(ln, '\r', n)) return say(why, whylen, "line %d: bare CR", line);
        if (n == 0) return say(why, whylen, "line %d: empty line", line);
        if (!policy_line(p, &seen, ln, n, line, why, whylen)) return false;
        sv_push_owned(&p->lines, xstrndup(ln, n));
    }
    if (!seen.version) return say(why, whylen, "no version field");
    if (!seen.mode) return say(why, whylen, "no mode field");
    if (!seen.max_age) return say(why, whylen, "no max_age field");
    if (p->mode != STS_MODE_NONE && p->mx.n == 0)
        return say(why, whylen, "no mx field (mode %s)", sts_mode_name(p->mode));
    return true;
}

void sts_policy_free(sts_policy *p)
{
    sv_free(&p->mx);
    sv_free(&p->lines);
    memset(p, 0, sizeof *p);
}

void sts_policy_copy(sts_policy *dst, const sts_policy *src)
{
    memset(dst, 0, sizeof *dst);
    dst->mode = src->mode;
    dst->max_age = src->max_age;
    for (size_t i = 0; i < src->mx.n; i++) sv_push(&dst->mx, src->mx.v[i]);
    for (size_t i = 0; i < src->lines.n; i++) sv_push(&dst->lines, src->lines.v[i]);
}

const char *sts_mode_name(enum sts_mode m)
{
    return m == STS_MODE_ENFORCE ? "enforce" : m == STS_MODE_TESTING ? "testing" : "none";
}

/* ---- MX matching (§4.1) --------------------------------------------------------------- */

/* ieq_n - a and b (n bytes each) equal ignoring ASCII case. */
static bool ieq_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
    return true;
}

bool sts_mx_pattern_match(const char *pattern, const char *host)
{
    size_t hl = strlen(host), pl = strlen(pattern);
    if (hl && host[hl - 1] == '.') hl--; /* an absolute name is the same host */
    if (hl == 0 || pl == 0) return false;
    if (pl > 2 && pattern[0] == '*' && pattern[1] == '.') {
        /* "*.example.net": one whole label, no dot in it, in front of ".example.net" */
        const char *suffix = pattern + 1;
        size_t sl = pl - 1;
        if (hl <= sl || !ieq_n(host + hl - sl, suffix, sl)) return false;
        return memchr(host, '.', hl - sl) == NULL;
    }
    return hl == pl && ieq_n(host, pattern, hl);
}

bool sts_mx_match(const sts_policy *p, const char *host)
{
    for (size_t i = 0; i < p->mx.n; i++)
        if (sts_mx_pattern_match(p->mx.v[i], host)) return true;
    return false;
}

/* ---- the cache file ------------------------------------------------------------------- */

void sts_cache_encode(const sts_cached *c, strbuf *out)
{
    sb_printf(out, "sluice-mta-sts 1\ndomain %s\nid %s\nfetched %" PRId64 "\nlength %zu\n\n", c->domain, c->id,
              c->fetched, c->body_len);
    sb_append(out, c->body, c->body_len);
}

/* header_line - the next header line "key VALUE" at *pos; its value (a copy) or NULL when the
 * line is missing or has another key. */
static char *header_line(const char *text, size_t len, size_t *pos, const char *key)
{
    const char *ln = text + *pos;
    const char *lf = memchr(ln, '\n', len - *pos);
    size_t kl = strlen(key);
    if (!lf || (size_t)(lf - ln) <= kl + 1 || memcmp(ln, key, kl) != 0 || ln[kl] != ' ') return NULL;
    *pos += (size_t)(lf - ln) + 1;
    char *v = xstrndup(ln + kl + 1, (size_t)(lf - ln) - kl - 1);
    if (strlen(v) != (size_t)(lf - ln) - kl - 1) { /* a NUL inside */
        free(v);
        return NULL;
    }
    return v;
}

/* cache_number - a decimal number of at most 19 digits; false when s is not one. */
static bool cache_number(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 19) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool sts_cache_decode(const char *text, size_t len, sts_cached *c, char *why, size_t whylen)
{
    memset(c, 0, sizeof *c);
    static const char magic[] = "sluice-mta-sts 1\n";
    size_t pos = sizeof magic - 1;
    if (len < pos || memcmp(text, magic, pos) != 0) return say(why, whylen, "not a sluice MTA-STS cache file");
    char *domain = header_line(text, len, &pos, "domain");
    char *id = domain ? header_line(text, len, &pos, "id") : NULL;
    char *fetched = id ? header_line(text, len, &pos, "fetched") : NULL;
    char *length = fetched ? header_line(text, len, &pos, "length") : NULL;
    uint64_t f = 0, n = 0;
    bool ok = false;
    if (!length || !cache_number(fetched, &f) || !cache_number(length, &n) || f > INT64_MAX) {
        say(why, whylen, "damaged header");
    } else if (!sts_domain_ok(domain)) {
        say(why, whylen, "bad domain");
    } else if (!id[0] || strlen(id) > STS_ID_MAX) {
        say(why, whylen, "bad id");
    } else if (pos >= len || text[pos] != '\n' || len - pos - 1 != n) {
        say(why, whylen, "the policy is not %" PRIu64 " bytes after an empty line", n);
    } else {
        ok = true;
        for (const char *q = id; *q && ok; q++) ok = is_alnum((unsigned char)*q);
        if (!ok) say(why, whylen, "bad id");
    }
    if (ok) {
        c->domain = domain;
        domain = NULL;
        for (char *q = c->domain; *q; q++) *q = lower_ascii(*q);
        snprintf(c->id, sizeof c->id, "%s", id);
        c->fetched = (int64_t)f;
        c->body = xmemdup0(text + pos + 1, (size_t)n);
        c->body_len = (size_t)n;
        char pwhy[200];
        ok = sts_policy_parse(c->body, c->body_len, &c->policy, pwhy, sizeof pwhy);
        if (!ok) say(why, whylen, "policy: %s", pwhy);
    }
    free(domain);
    free(id);
    free(fetched);
    free(length);
    return ok;
}

void sts_cached_free(sts_cached *c)
{
    free(c->domain);
    free(c->body);
    sts_policy_free(&c->policy);
    memset(c, 0, sizeof *c);
}

int64_t sts_cached_expires(const sts_cached *c)
{
    return c->fetched + (int64_t)c->policy.max_age;
}

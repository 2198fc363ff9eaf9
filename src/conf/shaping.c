/* shaping.c - the traffic shaping table's parser, lookups and reaction rules (see shaping.h). */
#include "conf/shaping.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHAPING_MAX_LIMIT 100000000u /* the largest number a key takes */
#define SHAPING_MAX_PERIOD (7 * 86400)

/* report - format a message for the error callback. */
static void report(shaping_err_cb err, void *arg, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report(shaping_err_cb err, void *arg, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err) err(arg, line, msg);
}

/* name_ok - a domain or host name of letters, digits, '-', '_' and dots, no empty label, <= 253
 * characters; with lead_dot one leading dot is allowed. */
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
    return label > 0;
}

/* lower - s in ASCII lower case, in place. */
static char *lower(char *s)
{
    for (char *p = s; *p; p++) *p = (char)tolower((unsigned char)*p);
    return s;
}

/* ---- tokens: words, and /regex/ words that may hold blanks ---- */

/* next_token - the next token of *p (a copy, or NULL at the end); a token starting with '/' runs to
 * the first '/' followed by a blank or the end of the line. *bad set for an unterminated one. */
static char *next_token(const char **p, bool *bad)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return NULL;
    const char *e = s;
    if (*s == '/') {
        for (e = s + 1; *e; e++)
            if (*e == '/' && (e[1] == '\0' || e[1] == ' ' || e[1] == '\t')) break;
        if (!*e) {
            *bad = true;
            *p = e;
            return NULL;
        }
        e++;
    } else {
        while (*e && *e != ' ' && *e != '\t') e++;
    }
    *p = e;
    return xstrndup(s, (size_t)(e - s));
}

/* ---- destination entries ---- */

/* parse_number - "key=N" value into *out (0..SHAPING_MAX_LIMIT); false (reported) when malformed. */
static bool parse_number(const char *key, const char *v, unsigned min, unsigned *out, shaping_err_cb err, void *arg,
                         int line)
{
    uint64_t n;
    if (parse_uint(v, min, SHAPING_MAX_LIMIT, &n) != 0) {
        report(err, arg, line, "%s=%s: a number %u..%u", key, v, min, SHAPING_MAX_LIMIT);
        return false;
    }
    *out = (unsigned)n;
    return true;
}

/* entry_key - one "key=value" of a destination line into e; false (reported) when bad. */
static bool entry_key(shaping_entry *e, const char *tok, bool *floor_set, shaping_err_cb err, void *arg, int line)
{
    const char *eq = strchr(tok, '=');
    if (!eq) {
        report(err, arg, line, "\"%s\": key=value expected (connections, per_connection, per_hour, floor, ramp)", tok);
        return false;
    }
    char key[32];
    snprintf(key, sizeof key, "%.*s", (int)(eq - tok), tok);
    const char *v = eq + 1;
    if (!strcasecmp(key, "connections")) return parse_number(key, v, 0, &e->connections, err, arg, line);
    if (!strcasecmp(key, "per_connection")) return parse_number(key, v, 0, &e->per_connection, err, arg, line);
    if (!strcasecmp(key, "per_hour")) return parse_number(key, v, 0, &e->per_hour, err, arg, line);
    if (!strcasecmp(key, "ramp")) return parse_number(key, v, 1, &e->ramp, err, arg, line);
    if (!strcasecmp(key, "floor")) {
        *floor_set = true;
        return parse_number(key, v, 1, &e->floor, err, arg, line);
    }
    report(err, arg, line, "unknown key \"%s\" (connections, per_connection, per_hour, floor, ramp)", key);
    return false;
}

/* entry_pattern - the destination pattern into e; false (reported) when malformed. */
static bool entry_pattern(shaping_entry *e, const char *pat, shaping_err_cb err, void *arg, int line)
{
    if (!strcmp(pat, "*")) {
        e->kind = SHAPING_ANY;
        e->pattern = xstrdup("*");
        return true;
    }
    if (!strncasecmp(pat, "mx:", 3)) {
        const char *suf = pat[3] == '.' ? pat + 4 : pat + 3;
        if (!name_ok(suf, false)) {
            report(err, arg, line, "\"%s\": mx: must be followed by a host name suffix such as .mail.example.net", pat);
            return false;
        }
        e->kind = SHAPING_MX;
        e->pattern = lower(xstrdup(suf));
        return true;
    }
    size_t n = strlen(pat);
    char *p = xstrdup(pat);
    if (n > 1 && p[n - 1] == '.') p[n - 1] = '\0'; /* an absolute name */
    if (!name_ok(p, true)) {
        report(err, arg, line, "\"%s\" is not a domain, .suffix, * or mx:SUFFIX", pat);
        free(p);
        return false;
    }
    e->kind = p[0] == '.' ? SHAPING_SUFFIX : SHAPING_DOMAIN;
    e->pattern = lower(p);
    return true;
}

/* find_entry - the entry of kind with pattern p, or NULL. */
static const shaping_entry *find_entry(const shaping_table *t, enum shaping_kind kind, const char *p)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].kind == kind && !strcmp(t->v[i].pattern, p)) return &t->v[i];
    return NULL;
}

/* parse_entry - a destination line (its first token pat, the rest in *p) into t. */
static void parse_entry(shaping_table *t, const char *pat, const char *p, shaping_err_cb err, void *arg, int line)
{
    shaping_entry e = {.ramp = SHAPING_DEFAULT_RAMP, .floor = SHAPING_DEFAULT_FLOOR, .line = line};
    if (!entry_pattern(&e, pat, err, arg, line)) return;
    bool ok = true, bad = false, floor_set = false, any = false;
    char *tok;
    while (ok && (tok = next_token(&p, &bad))) {
        ok = entry_key(&e, tok, &floor_set, err, arg, line);
        any = true;
        free(tok);
    }
    if (ok && bad) {
        report(err, arg, line, "a '/' begins no key=value");
        ok = false;
    }
    if (ok && !any) {
        report(err, arg, line, "\"%s\": no limits (connections=, per_connection=, per_hour=)", pat);
        ok = false;
    }
    const shaping_entry *dup = ok ? find_entry(t, e.kind, e.pattern) : NULL;
    if (dup) {
        report(err, arg, line, "\"%s\" has an entry already at line %d", pat, dup->line);
        ok = false;
    }
    if (ok && floor_set && e.per_hour && e.floor > e.per_hour) {
        report(err, arg, line, "floor=%u is above per_hour=%u", e.floor, e.per_hour);
        ok = false;
    }
    if (!ok) {
        free(e.pattern);
        return;
    }
    if (e.per_hour && e.floor > e.per_hour) e.floor = e.per_hour;
    if (e.kind == SHAPING_MX) t->has_mx = true;
    t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
    t->v[t->n++] = e;
}

/* ---- reaction rules ---- */

/* code_ok - "421", "4xx", "45x": a reply code whose first digit is 2..5, digits or 'x'. */
static bool code_ok(const char *s)
{
    if (strlen(s) != 3 || s[0] < '2' || s[0] > '5') return false;
    for (int i = 1; i < 3; i++)
        if (!isdigit((unsigned char)s[i]) && s[i] != 'x' && s[i] != 'X') return false;
    return true;
}

/* status_ok - "4.7.28", "4.7.x", "4.x.x": an enhanced status class 2, 4 or 5 whose parts are numbers
 * (up to 3 digits) or 'x'. */
static bool status_ok(const char *s)
{
    if (*s != '2' && *s != '4' && *s != '5') return false;
    if (s[1] != '.') return false;
    int parts = 1;
    for (const char *p = s + 2;; p++) {
        const char *q = p;
        if (*q == 'x' || *q == 'X') q++;
        else
            while (isdigit((unsigned char)*q) && q - p < 3) q++;
        if (q == p) return false;
        parts++;
        if (*q == '\0') return parts == 3;
        if (*q != '.' || parts == 3) return false;
        p = q;
    }
}

/* rule_key - "action=" or "period=" of a rule; false (reported) when bad. */
static bool rule_key(shaping_rule *r, const char *tok, bool *have_action, bool *have_period, shaping_err_cb err,
                     void *arg, int line)
{
    if (!strncasecmp(tok, "action=", 7)) {
        const char *v = tok + 7;
        if (!strcasecmp(v, "halve")) r->action = SHAPING_HALVE;
        else if (!strcasecmp(v, "suspend")) r->action = SHAPING_SUSPEND;
        else {
            report(err, arg, line, "action=%s: halve or suspend", v);
            return false;
        }
        *have_action = true;
        return true;
    }
    if (!strncasecmp(tok, "period=", 7)) {
        int64_t secs;
        if (parse_duration(tok + 7, &secs) != 0 || secs < 1 || secs > SHAPING_MAX_PERIOD) {
            report(err, arg, line, "period=%s: a duration 1s..7d such as 30s, 15m or 1h", tok + 7);
            return false;
        }
        r->period = (unsigned)secs;
        *have_period = true;
        return true;
    }
    report(err, arg, line, "\"%s\": a rule takes a code, a status, a /regex/, action= and period=", tok);
    return false;
}

/* rule_free - free what a rule owns. */
static void rule_free(shaping_rule *r)
{
    free(r->status);
    if (r->regex_src) regfree(&r->regex);
    free(r->regex_src);
}

/* rule_regex - compile "/src/" into r; false (reported) when it does not compile. */
static bool rule_regex(shaping_rule *r, const char *tok, shaping_err_cb err, void *arg, int line)
{
    size_t n = strlen(tok);
    char *src = xstrndup(tok + 1, n - 2);
    int rc = regcomp(&r->regex, src, REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, &r->regex, why, sizeof why);
        report(err, arg, line, "/%s/: %s", src, why);
        free(src);
        return false;
    }
    r->regex_src = src;
    return true;
}

/* parse_rule - an "on ..." line (the words after "on" in *p) into t. */
static void parse_rule(shaping_table *t, const char *p, shaping_err_cb err, void *arg, int line)
{
    shaping_rule r = {.period = SHAPING_DEFAULT_PERIOD, .line = line};
    bool bad = false, ok = true, have_action = false, have_period = false;
    char *tok = next_token(&p, &bad);
    if (!tok || !code_ok(tok)) {
        report(err, arg, line, "on: a reply code such as 421, 45x or 4xx must follow, not \"%s\"", tok ? tok : "");
        free(tok);
        return;
    }
    snprintf(r.code, sizeof r.code, "%s", lower(tok));
    free(tok);
    while (ok && (tok = next_token(&p, &bad))) {
        if (tok[0] == '/' && !r.regex_src && !have_action) {
            ok = rule_regex(&r, tok, err, arg, line);
        } else if (isdigit((unsigned char)tok[0]) && !r.status && !r.regex_src && !have_action) {
            if (status_ok(tok)) r.status = lower(xstrdup(tok));
            else {
                report(err, arg, line, "\"%s\" is not an enhanced status such as 4.7.28 or 4.7.x", tok);
                ok = false;
            }
        } else {
            ok = rule_key(&r, tok, &have_action, &have_period, err, arg, line);
        }
        free(tok);
    }
    if (ok && bad) {
        report(err, arg, line, "a /regex/ without its closing '/' (followed by a blank or the end of the line)");
        ok = false;
    }
    if (ok && !have_action) {
        report(err, arg, line, "on %s: action=halve or action=suspend is missing", r.code);
        ok = false;
    }
    if (ok && have_period && r.action != SHAPING_SUSPEND) {
        report(err, arg, line, "period= goes only with action=suspend");
        ok = false;
    }
    if (ok && r.status && r.status[0] != r.code[0]) {
        report(err, arg, line, "status %s does not fit reply code %s", r.status, r.code);
        ok = false;
    }
    if (!ok) {
        rule_free(&r);
        return;
    }
    t->rules = xrealloc(t->rules, (t->n_rules + 1) * sizeof *t->rules);
    t->rules[t->n_rules++] = r;
}

/* parse_line - one line (comments removed) into t. */
static void parse_line(shaping_table *t, const char *l, shaping_err_cb err, void *arg, int line)
{
    const char *p = l;
    bool bad = false;
    char *first = next_token(&p, &bad);
    if (!first) {
        if (bad) report(err, arg, line, "a line cannot begin with a /regex/");
        return;
    }
    if (!strcasecmp(first, "on")) parse_rule(t, p, err, arg, line);
    else if (first[0] == '/') report(err, arg, line, "a line cannot begin with a /regex/");
    else parse_entry(t, first, p, err, arg, line);
    free(first);
}

shaping_table *shaping_parse(const char *text, shaping_err_cb err, void *arg)
{
    shaping_table *t = xcalloc(1, sizeof *t);
    int line = 0;
    for (const char *p = text ? text : ""; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char *l = xstrndup(p, len);
        p += len + (eol ? 1 : 0);
        line++;
        size_t n = strlen(l);
        if (n && l[n - 1] == '\r') l[--n] = '\0';
        const char *s = l;
        while (*s == ' ' || *s == '\t') s++;
        if (*s && *s != '#' && *s != '!') parse_line(t, s, err, arg, line);
        free(l);
    }
    return t;
}

void shaping_free(shaping_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) free(t->v[i].pattern);
    for (size_t i = 0; i < t->n_rules; i++) rule_free(&t->rules[i]);
    free(t->v);
    free(t->rules);
    free(t);
}

/* ---- lookups ---- */

/* ends_with_label - whether name is suffix or ends in "." suffix (case-insensitive; a trailing dot of name ignored). */
static bool ends_with_label(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    if (n && name[n - 1] == '.') n--;
    if (n < k || strncasecmp(name + n - k, suffix, k) != 0) return false;
    return n == k || name[n - k - 1] == '.';
}

bool shaping_mx_match(const shaping_entry *e, const char *host)
{
    return e->kind == SHAPING_MX && ends_with_label(host, e->pattern);
}

const shaping_entry *shaping_lookup(const shaping_table *t, const char *domain, const char *const *mx, size_t n)
{
    if (!t) return NULL;
    const shaping_entry *suf = NULL, *any = NULL, *prov = NULL;
    size_t dlen = strlen(domain);
    if (dlen && domain[dlen - 1] == '.') dlen--;
    for (size_t i = 0; i < t->n; i++) {
        const shaping_entry *e = &t->v[i];
        switch (e->kind) {
        case SHAPING_DOMAIN:
            if (strlen(e->pattern) == dlen && !strncasecmp(e->pattern, domain, dlen)) return e;
            break;
        case SHAPING_MX:
            for (size_t k = 0; k < n; k++)
                if (shaping_mx_match(e, mx[k]) && (!prov || strlen(e->pattern) > strlen(prov->pattern))) prov = e;
            break;
        case SHAPING_SUFFIX: {
            size_t k = strlen(e->pattern); /* ".example.net": the domain is longer and ends in it */
            if (dlen > k && !strncasecmp(domain + dlen - k, e->pattern, k) &&
                (!suf || k > strlen(suf->pattern)))
                suf = e;
            break;
        }
        case SHAPING_ANY: any = e; break;
        }
    }
    return prov ? prov : suf ? suf : any;
}

/* code_match - reply code against a pattern with 'x' wildcards. */
static bool code_match(const char *pat, const char *code)
{
    if (!code || strlen(code) != 3) return false;
    for (int i = 0; i < 3; i++)
        if (pat[i] != 'x' && pat[i] != code[i]) return false;
    return true;
}

/* status_match - an enhanced status against a pattern whose parts may be 'x'. */
static bool status_match(const char *pat, const char *status)
{
    if (!status) return false;
    const char *p = pat, *s = status;
    for (int part = 0; part < 3; part++) {
        const char *pe = p, *se = s;
        while (*pe && *pe != '.') pe++;
        while (*se && *se != '.') se++;
        if (se == s) return false;
        if (!(pe - p == 1 && *p == 'x') && (pe - p != se - s || strncmp(p, s, (size_t)(pe - p)) != 0)) return false;
        if (part < 2) {
            if (*pe != '.' || *se != '.') return false;
            p = pe + 1;
            s = se + 1;
        } else if (*se) {
            return false;
        }
    }
    return true;
}

const shaping_rule *shaping_react(const shaping_table *t, const char *code, const char *status, const char *text)
{
    if (!t) return NULL;
    for (size_t i = 0; i < t->n_rules; i++) {
        const shaping_rule *r = &t->rules[i];
        if (!code_match(r->code, code)) continue;
        if (r->status && !status_match(r->status, status)) continue;
        if (r->regex_src && regexec(&r->regex, text ? text : "", 0, NULL, 0) != 0) continue;
        return r;
    }
    return NULL;
}

const char *shaping_action_name(enum shaping_action a)
{
    return a == SHAPING_SUSPEND ? "suspend" : "halve";
}

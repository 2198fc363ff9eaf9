/*
 * rewrite.c - the rewrite-rule engine (see rewrite.h): finds the rule for a host (exact, then
 * outward ".suffix" patterns, then "."; domain literals shorten inside the brackets), expands its
 * template into an address and a routing host, and maps the routing host to a channel, rewriting
 * again (bounded) when the template asks for it or no channel owns the routing host. Pure: reads
 * a loaded sl_conf only, so any thread may call it.
 */
#include "rewrite/rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REWRITE_MAX_ITERATIONS 10

/* Template forms, by the unescaped separators found in the raw template. */
enum tmpl_kind {
    TMPL_PCT_AT, /* A%B@C: address A@B, routing host C */
    TMPL_AT,     /* A@B: address A@B, routing host B */
    TMPL_PCT     /* A%B: rewrite A@B again */
};

/* A parsed template: up to three raw parts (substitutions not yet applied). */
typedef struct {
    enum tmpl_kind kind;
    const char *part[3];
    size_t len[3];
    size_t nparts;
} tmpl_parts;

/* The values substituted into a template. */
typedef struct {
    const char *local;        /* $U */
    const char *unmatched;    /* $H */
    size_t unmatched_len;
    const char *matched;      /* $D */
    size_t matched_len;
} tmpl_vars;

/* A rule found for a host, with where $H and $D lie in that host. */
typedef struct {
    const sl_rule *rule;
    size_t h_len;   /* $H is host[0, h_len) */
    size_t d_start; /* $D is host + d_start */
} rule_match;

static void set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err && errlen) snprintf(err, errlen, fmt, arg);
}

/* tmpl_parse - split the raw template at its unescaped '%' and '@'; -1 with err on a bad template. */
static int tmpl_parse(const char *t, tmpl_parts *out, char *err, size_t errlen)
{
    const char *pct = NULL, *at = NULL;
    for (const char *p = t; *p; p++) {
        if (*p == '$') {
            if (p[1] == '\0') {
                set_err(err, errlen, "template ends with a lone '$'%s", "");
                return -1;
            }
            if (!strchr("UHD$%@", p[1])) {
                char sub[3] = {'$', p[1], '\0'};
                set_err(err, errlen, "unknown substitution '%s'", sub);
                return -1;
            }
            p++;
        } else if (*p == '%') {
            if (pct || at) {
                set_err(err, errlen, "%s", at ? "'%' after '@'" : "more than one '%'");
                return -1;
            }
            pct = p;
        } else if (*p == '@') {
            if (at) {
                set_err(err, errlen, "%s", "more than one '@'");
                return -1;
            }
            at = p;
        }
    }
    if (!pct && !at) {
        set_err(err, errlen, "%s", "template has no '@' or '%' (expected A%B@C, A@B or A%B)");
        return -1;
    }
    const char *end = t + strlen(t);
    const char *cuts[2] = {pct ? pct : at, pct && at ? at : NULL};
    out->kind = pct && at ? TMPL_PCT_AT : at ? TMPL_AT : TMPL_PCT;
    out->nparts = pct && at ? 3 : 2;
    const char *start = t;
    for (size_t i = 0; i < out->nparts; i++) {
        const char *stop = i + 1 < out->nparts ? cuts[i] : end;
        out->part[i] = start;
        out->len[i] = (size_t)(stop - start);
        if (out->len[i] == 0) {
            set_err(err, errlen, "%s", "empty part in template");
            return -1;
        }
        start = stop + 1;
    }
    return 0;
}

int rewrite_template_check(const char *tmpl, char *err, size_t errlen)
{
    tmpl_parts parts;
    return tmpl_parse(tmpl, &parts, err, errlen);
}

/* tmpl_expand - one raw part with its substitutions applied (parts were checked by tmpl_parse). */
static char *tmpl_expand(const char *part, size_t len, const tmpl_vars *v)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (size_t i = 0; i < len; i++) {
        if (part[i] != '$' || i + 1 >= len) {
            sb_putc(&sb, part[i]);
            continue;
        }
        char c = part[++i];
        if (c == 'U') sb_puts(&sb, v->local);
        else if (c == 'H') sb_append(&sb, v->unmatched, v->unmatched_len);
        else if (c == 'D') sb_append(&sb, v->matched, v->matched_len);
        else sb_putc(&sb, c); /* $$ $% $@ */
    }
    return sb_steal(&sb);
}

int rewrite_split(const char *addr, char **local, char **domain)
{
    const char *at = NULL;
    bool quoted = false;
    *local = *domain = NULL;
    for (const char *p = addr; *p; p++) {
        if (quoted && *p == '\\' && p[1]) p++;
        else if (*p == '"') quoted = !quoted;
        else if (*p == '@' && !quoted) at = p;
    }
    if (!at || at == addr || at[1] == '\0') return -1;
    *local = xstrndup(addr, (size_t)(at - addr));
    *domain = xstrdup(at + 1);
    return 0;
}

static const sl_rule *rule_find(const sl_conf *c, const char *pattern)
{
    for (size_t i = 0; i < c->n_rules; i++)
        if (strcmp(c->rules[i].pattern, pattern) == 0) return &c->rules[i];
    return NULL;
}

/* rule_try - look up one candidate pattern, tracing the attempt. */
static bool rule_try(const sl_conf *c, const char *pattern, size_t h_len, size_t d_start, rule_match *m,
                     strbuf *trace)
{
    const sl_rule *r = rule_find(c, pattern);
    if (!r) {
        if (trace) sb_printf(trace, "try '%s' -> no rule\n", pattern);
        return false;
    }
    m->rule = r;
    m->h_len = h_len;
    m->d_start = d_start;
    return true;
}

/* rule_search_literal - "[1.2.3.4]", "[1.2.3.]", "[1.2.]", "[1.]"; $D is the whole literal. */
static bool rule_search_literal(const sl_conf *c, const char *lc, rule_match *m, strbuf *trace)
{
    size_t n = strlen(lc);
    if (rule_try(c, lc, 0, 0, m, trace)) return true;
    for (size_t i = n - 2; i > 1; i--) {
        if (lc[i - 1] != '.') continue;
        char *cand = xasprintf("%.*s]", (int)i, lc);
        bool found = rule_try(c, cand, 0, 0, m, trace);
        free(cand);
        if (found) return true;
    }
    return false;
}

/* rule_search - the first rule for host: exact, ".suffix" outward, then "." */
static bool rule_search(const sl_conf *c, const char *host, rule_match *m, strbuf *trace)
{
    char *lc = str_lower(xstrdup(host));
    size_t n = strlen(lc);
    bool found = false;
    if (lc[0] == '[' && lc[n - 1] == ']') {
        found = rule_search_literal(c, lc, m, trace);
    } else {
        found = rule_try(c, lc, 0, 0, m, trace);
        for (size_t i = 1; !found && i < n; i++)
            if (lc[i] == '.') found = rule_try(c, lc + i, i, i + 1, m, trace);
    }
    if (!found) found = rule_try(c, ".", n, n, m, trace);
    free(lc);
    return found;
}

/* domain_ok - a domain literal, or dot-separated non-empty labels without blanks. */
static bool domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || strpbrk(d, " \t\r\n")) return false;
    if (d[0] == '[') return n > 2 && d[n - 1] == ']';
    return d[0] != '.' && d[n - 1] != '.' && !strstr(d, "..");
}

/* The state of one rewrite_address call. */
typedef struct {
    const sl_conf *c;
    strbuf *trace;
    rw_result *out;
    char *local, *domain; /* what the next rule applies to */
    char *addr;           /* the rewritten address, fixed by the first A@B / A%B@C step */
    bool routing;         /* domain is a routing host being rewritten (address kept) */
} rw_state;

static void rw_fail(rw_state *st, char *msg)
{
    if (st->trace) sb_printf(st->trace, "error: %s\n", msg);
    free(st->out->error);
    st->out->error = msg;
}

/* rw_step - apply one rule to st->domain; 1 = done (channel found), 0 = rewrite again, -1 = failed. */
static int rw_step(rw_state *st)
{
    rule_match m;
    tmpl_parts tp;
    char why[160];
    if (!rule_search(st->c, st->domain, &m, st->trace)) {
        rw_fail(st, st->routing ? xasprintf("no channel for routing host %s", st->domain)
                                : xasprintf("no rewrite rule for %s", st->domain));
        return -1;
    }
    if (tmpl_parse(m.rule->tmpl, &tp, why, sizeof why) != 0) {
        rw_fail(st, xasprintf("rule '%s' (line %d): %s", m.rule->pattern, m.rule->line, why));
        return -1;
    }
    tmpl_vars v = {st->local, st->domain, m.h_len, st->domain + m.d_start, strlen(st->domain) - m.d_start};
    char *a = tmpl_expand(tp.part[0], tp.len[0], &v);
    char *b = tmpl_expand(tp.part[1], tp.len[1], &v);
    char *route = tp.kind == TMPL_PCT_AT ? tmpl_expand(tp.part[2], tp.len[2], &v) : xstrdup(b);
    int rc = -1;
    if (!*a || !domain_ok(b) || !*route) {
        rw_fail(st, xasprintf("rule '%s' (line %d) gives local part '%s', domain '%s', routing host '%s'",
                              m.rule->pattern, m.rule->line, a, b, route));
        goto done;
    }
    if (tp.kind == TMPL_PCT) {
        if (st->trace) sb_printf(st->trace, "match '%s' -> '%s' -> rewrite %s@%s again\n", m.rule->pattern,
                                 m.rule->tmpl, a, b);
        free(st->local);
        free(st->domain);
        st->local = a;
        st->domain = b;
        a = b = NULL;
        rc = 0;
        goto done;
    }
    if (!st->routing) st->addr = xasprintf("%s@%s", a, b);
    if (st->trace) sb_printf(st->trace, "match '%s' -> '%s' -> %s@%s via %s\n", m.rule->pattern, m.rule->tmpl, a, b,
                             route);
    const sl_channel *ch = conf_channel_by_host(st->c, route);
    if (ch) {
        if (st->trace) sb_printf(st->trace, "channel %s (routing host %s)\n", ch->name, route);
        st->out->channel = ch;
        st->out->host = route;
        route = NULL;
        rc = 1;
    } else if (str_ieq(route, st->domain)) {
        rw_fail(st, xasprintf("no channel for routing host %s", route));
    } else {
        if (st->trace) sb_printf(st->trace, "no channel for routing host '%s': rewriting it\n", route);
        st->routing = true;
        free(st->domain);
        st->domain = route;
        route = NULL;
        rc = 0;
    }
done:
    free(a);
    free(b);
    free(route);
    return rc;
}

sl_result rewrite_address(const sl_conf *c, const char *addr, const char *src_channel, rw_result *out, strbuf *trace)
{
    (void)src_channel; /* $M/$N conditions on the source channel come later */
    rw_state st = {c, trace, out, NULL, NULL, NULL, false};
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (rewrite_split(addr, &st.local, &st.domain) != 0) {
        rw_fail(&st, xasprintf("no domain in address '%s'", addr));
        goto done;
    }
    if (!domain_ok(st.domain)) {
        rw_fail(&st, xasprintf("bad domain '%s'", st.domain));
        goto done;
    }
    for (int i = 0; i < REWRITE_MAX_ITERATIONS; i++) {
        rc = rw_step(&st);
        if (rc != 0) break;
    }
    if (rc == 0) rw_fail(&st, xasprintf("rewrite loop: %s not routed after %d rewrites", addr, REWRITE_MAX_ITERATIONS));
done:
    if (rc == 1) {
        out->addr = st.addr;
        st.addr = NULL;
    }
    free(st.local);
    free(st.domain);
    free(st.addr);
    return rc == 1 ? SL_OK : SL_PERM;
}

void rw_result_free(rw_result *r)
{
    free(r->addr);
    free(r->host);
    free(r->error);
    memset(r, 0, sizeof *r);
}

/*
 * rewrite.c - the rewrite-rule engine (see rewrite.h). A template is compiled into up to three
 * raw parts (substitutions not yet applied) plus its conditions; rules are searched from the most
 * specific pattern outward, skipping rules whose conditions fail; the chosen template is expanded
 * into an address and a routing host, and the routing host is mapped to a channel, rewriting
 * again (bounded) when the template asks for it or no channel owns the routing host. Pure: reads
 * a loaded sl_conf only, so any thread may call it.
 */
#include "rewrite/rewrite.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REWRITE_MAX_ITERATIONS 10
#define REWRITE_DEFAULT_STATUS "5.1.2"
/* Bounds on every intermediate result, so that a template that multiplies its input (". $U%$H.$H")
 * fails at once instead of growing for REWRITE_MAX_ITERATIONS passes: RFC 5321 allows a domain of
 * 255 octets and a path of 256; an address may carry source-route text while it is rewritten, so
 * it gets more room. Over either bound the rewrite fails with a permanent 5.1.3. */
#define REWRITE_MAX_ADDRESS 1024
#define REWRITE_MAX_DOMAIN 255
#define REWRITE_TOO_LONG_STATUS "5.1.3"

/* Template forms, by the separators found in the template as written. */
enum tmpl_kind {
    TMPL_PCT_AT, /* A%B@C: address A@B, routing host C */
    TMPL_AT,     /* A@B: address A@B, routing host B */
    TMPL_PCT,    /* A%B: rewrite A@B again */
    TMPL_ERROR   /* $?text and conditions only: stop, look the host up as is, fail with text */
};

/* A compiled template: raw parts without control sequences, and the controls. */
typedef struct {
    enum tmpl_kind kind;
    strbuf part[3];          /* raw text with $U $nU $nH $nD $L $$ $% $@ still in it */
    size_t nparts;
    strvec m, n, q, c;       /* channel names of $M $N $Q $C */
    bool env, hdr, fwd, bwd; /* $E $B $F $R */
    char *errtext;           /* $? text, NULL if none */
    char status[12];         /* DSN status that goes with errtext */
    char *ignored;           /* text after "$," up to the '@', NULL when the template has no "$," */
} tmpl;

/* Where $H, $D and $L lie in the host a rule matched (host[0,h_len), host+d_start, host+l_start). */
typedef struct {
    size_t h_len;
    size_t d_start, d_len;
    size_t l_start, l_len;
} host_parts;

/* The values substituted into a template. */
typedef struct {
    const char *local; /* $U */
    const char *host;  /* the host the rule matched, as written */
    host_parts hp;
} tmpl_vars;

static void set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err && errlen) snprintf(err, errlen, fmt, arg);
}

static void tmpl_free(tmpl *t)
{
    for (size_t i = 0; i < 3; i++) sb_free(&t->part[i]);
    sv_free(&t->m);
    sv_free(&t->n);
    sv_free(&t->q);
    sv_free(&t->c);
    free(t->errtext);
    free(t->ignored);
    memset(t, 0, sizeof *t);
}

/* ctl_starts - whether p ("$...") begins a control sequence that ends a $? text. */
static bool ctl_starts(const char *p)
{
    if (p[0] != '$') return false;
    if (p[1] && strchr("MNQCTEBFR?", p[1])) return true;
    const char *d = p + 1;
    while (isdigit((unsigned char)*d)) d++;
    return d > p + 1 && *d == '?';
}

/* ctl_status - "$x00y00z?" digits into "x.y.z"; -1 unless x is 4 or 5 and the zeros are there. */
static int ctl_status(const char *digits, size_t n, char *out, size_t outlen)
{
    if (n != 7 || (digits[0] != '4' && digits[0] != '5') || memcmp(digits + 1, "00", 2) ||
        memcmp(digits + 4, "00", 2))
        return -1;
    snprintf(out, outlen, "%c.%c.%c", digits[0], digits[3], digits[6]);
    return 0;
}

/* ctl_errtext - the text of a $? up to the next control sequence or the end; '$$' is a '$'. */
static const char *ctl_errtext(tmpl *t, const char *p)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    while (*p && !ctl_starts(p)) {
        if (p[0] == '$' && p[1] == '$') p++;
        sb_putc(&sb, *p++);
    }
    free(t->errtext);
    t->errtext = sb_steal(&sb);
    return p;
}

/* ctl_channel - the channel name after $M $N $Q $C: up to '@', '%', '$' or the end. */
static const char *ctl_channel(strvec *list, const char *p, char which, char *err, size_t errlen)
{
    size_t n = strcspn(p, "@%$");
    if (n == 0) {
        char sub[3] = {'$', which, '\0'};
        set_err(err, errlen, "'%s' without a channel name", sub);
        return NULL;
    }
    sv_push_owned(list, xstrndup(p, n));
    return p + n;
}

/* The state of one tmpl_compile call. */
typedef struct {
    tmpl *t;
    size_t cur;     /* part being filled */
    bool pct, at;   /* separators seen */
    bool ignoring;  /* after "$,", until the next separator */
    strbuf ignored; /* what "$," made us drop */
    char *err;
    size_t errlen;
} tmpl_parser;

static strbuf *tp_sink(tmpl_parser *tp)
{
    return tp->ignoring ? &tp->ignored : &tp->t->part[tp->cur];
}

/* tp_separator - a '%' or '@' as written: the next part starts. */
static int tp_separator(tmpl_parser *tp, char c)
{
    if (c == '%') {
        if (tp->pct || tp->at) {
            set_err(tp->err, tp->errlen, "%s", tp->at ? "'%' after '@'" : "more than one '%'");
            return -1;
        }
        tp->pct = true;
    } else {
        if (tp->at) {
            set_err(tp->err, tp->errlen, "%s", "more than one '@'");
            return -1;
        }
        tp->at = true;
    }
    tp->cur++;
    tp->ignoring = false;
    return 0;
}

/* tp_dollar - one "$..." sequence at p; returns where parsing continues, NULL on error. */
static const char *tp_dollar(tmpl_parser *tp, const char *p)
{
    tmpl *t = tp->t;
    const char *d = p + 1;
    while (isdigit((unsigned char)*d)) d++;
    size_t nd = (size_t)(d - (p + 1));
    char c = *d;
    char sub[16];
    snprintf(sub, sizeof sub, "$%.*s%c", (int)(nd < 8 ? nd : 8), p + 1, c ? c : ' ');
    if (c == '\0') {
        set_err(tp->err, tp->errlen, "%s",
                nd ? "template ends inside a '$' sequence" : "template ends with a lone '$'");
        return NULL;
    }
    if (nd > 0) {
        if (c == '?') {
            if (ctl_status(p + 1, nd, t->status, sizeof t->status) != 0) {
                set_err(tp->err, tp->errlen,
                        "bad error status '%s' (expected $x00y00z?, e.g. $4001002? for 4.1.2)", sub);
                return NULL;
            }
            return ctl_errtext(t, d + 1);
        }
        bool ok = (c == 'U' && nd == 1 && (p[1] == '0' || p[1] == '1')) || ((c == 'H' || c == 'D') && nd <= 2);
        if (!ok) {
            set_err(tp->err, tp->errlen, "unknown substitution '%s'", sub);
            return NULL;
        }
        sb_append(tp_sink(tp), p, (size_t)(d + 1 - p));
        return d + 1;
    }
    switch (c) {
    case 'U': case 'H': case 'D': case 'L': case '$': case '%': case '@':
        sb_append(tp_sink(tp), p, 2);
        return p + 2;
    case ',':
        if (tp->cur != 1 || !tp->pct) {
            set_err(tp->err, tp->errlen, "%s", "'$,' outside the host part of an A%B@C or A%B template");
            return NULL;
        }
        if (tp->ignoring) sb_append(&tp->ignored, p, 2);
        tp->ignoring = true;
        if (!t->ignored) t->ignored = xstrdup("");
        return p + 2;
    case 'M': return ctl_channel(&t->m, p + 2, c, tp->err, tp->errlen);
    case 'N': return ctl_channel(&t->n, p + 2, c, tp->err, tp->errlen);
    case 'Q': return ctl_channel(&t->q, p + 2, c, tp->err, tp->errlen);
    case 'C': return ctl_channel(&t->c, p + 2, c, tp->err, tp->errlen);
    case 'E': t->env = true; return p + 2;
    case 'B': t->hdr = true; return p + 2;
    case 'F': t->fwd = true; return p + 2;
    case 'R': t->bwd = true; return p + 2;
    case '?': return ctl_errtext(t, p + 2);
    default:
        set_err(tp->err, tp->errlen, "unknown substitution '%s'", sub);
        return NULL;
    }
}

/* tmpl_shape - decide the template form from the separators; -1 with err on a bad shape. */
static int tmpl_shape(tmpl_parser *tp)
{
    tmpl *t = tp->t;
    if (!tp->pct && !tp->at) {
        if (t->errtext && t->part[0].len == 0) {
            t->kind = TMPL_ERROR;
            t->nparts = 0;
            return 0;
        }
        set_err(tp->err, tp->errlen, "%s", "template has no '@' or '%' (expected A%B@C, A@B, A%B or $?text)");
        return -1;
    }
    t->kind = tp->pct && tp->at ? TMPL_PCT_AT : tp->at ? TMPL_AT : TMPL_PCT;
    t->nparts = tp->cur + 1;
    for (size_t i = 0; i < t->nparts; i++) {
        if (t->part[i].len == 0) {
            set_err(tp->err, tp->errlen, "%s", "empty part in template");
            return -1;
        }
    }
    return 0;
}

/* tmpl_compile - parse a template as written; -1 with the reason in err (out is then freed). */
static int tmpl_compile(const char *s, tmpl *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->status, sizeof out->status, "%s", REWRITE_DEFAULT_STATUS);
    tmpl_parser tp = {out, 0, false, false, false, {0}, err, errlen};
    sb_init(&tp.ignored);
    int rc = -1;
    const char *p = s;
    while (p && *p) {
        if (*p == '%' || *p == '@') {
            if (tp_separator(&tp, *p) != 0) goto done;
            p++;
        } else if (*p == '$') {
            p = tp_dollar(&tp, p);
        } else {
            sb_putc(tp_sink(&tp), *p++);
        }
    }
    if (!p || tmpl_shape(&tp) != 0) goto done;
    if (out->ignored) {
        free(out->ignored);
        out->ignored = xstrndup(tp.ignored.data ? tp.ignored.data : "", tp.ignored.len);
    }
    rc = 0;
done:
    sb_free(&tp.ignored);
    if (rc != 0) tmpl_free(out);
    return rc;
}

int rewrite_template_lint(const char *s, char *err, size_t errlen, strvec *notes)
{
    tmpl t;
    if (tmpl_compile(s, &t, err, errlen) != 0) return -1;
    if (notes && t.ignored)
        sv_push_owned(notes, xasprintf("'$,' read as the end of the host part: the text after it up to '@' ('%s') "
                                       "is ignored",
                                       t.ignored));
    tmpl_free(&t);
    return 0;
}

int rewrite_rules_check(const sl_conf *c, const char *file, conf_errors *errs)
{
    int bad = 0;
    for (size_t i = 0; i < c->n_rules; i++) {
        char why[256];
        if (rewrite_template_check(c->rules[i].tmpl, why, sizeof why) == 0) continue;
        conf_error(errs, file, c->rules[i].line, "bad template '%s': %s", c->rules[i].tmpl, why);
        bad++;
    }
    return bad;
}

int rewrite_template_check(const char *s, char *err, size_t errlen)
{
    return rewrite_template_lint(s, err, errlen, NULL);
}

/* conf_notes_channels - a note for each channel name of one condition list that no channel has. */
static void conf_notes_channels(const sl_conf *c, const sl_rule *r, const char *file, const strvec *names,
                                char which, strvec *notes)
{
    for (size_t i = 0; i < names->n; i++)
        if (!conf_channel_by_name(c, names->v[i]))
            sv_push_owned(notes, xasprintf("%s:%d: note: '$%c%s' names no channel: the condition %s", file,
                                           r->line, which, names->v[i],
                                           which == 'M' || which == 'Q' ? "never holds" : "always holds"));
}

/* The pieces of the input a template can copy, for the growth warning: $U (with $0U and $1U), $H
 * (any $nH), $D (any $nD) and $L. */
enum { PIECE_U, PIECE_H, PIECE_D, PIECE_L, PIECE_N };

/* part_uses - count the pieces a raw part copies into uses; $0U and $1U are halves of $U. */
static void part_uses(const strbuf *part, unsigned uses[PIECE_N], unsigned halves[2])
{
    const char *s = part->data ? part->data : "";
    for (size_t i = 0; i + 1 < part->len; i++) {
        if (s[i] != '$') continue;
        size_t d = ++i;
        while (i < part->len && isdigit((unsigned char)s[i])) i++;
        if (i >= part->len) break;
        const char *k = strchr("UHDL", s[i]);
        if (!k || !s[i]) continue;
        if (*k == 'U' && i > d) halves[s[d] - '0']++;
        else uses[k - "UHDL"]++;
    }
}

/* tmpl_growth - the piece that parts [from, to) copy more than once and how often, or NULL. A
 * template that does so can give an output longer than its input, and rewriting that output again
 * multiplies it. */
static const char *tmpl_growth(const tmpl *t, size_t from, size_t to, unsigned *times)
{
    static const char *const names[PIECE_N] = {"$U", "$H", "$D", "$L"};
    unsigned uses[PIECE_N] = {0}, halves[2] = {0};
    for (size_t i = from; i < to && i < t->nparts; i++) part_uses(&t->part[i], uses, halves);
    uses[PIECE_U] += halves[0] > halves[1] ? halves[0] : halves[1];
    for (size_t k = 0; k < PIECE_N; k++) {
        if (uses[k] > 1) {
            *times = uses[k];
            return names[k];
        }
    }
    return NULL;
}

/* conf_notes_growth - a warning for a template that can multiply the address or the routing host. */
static void conf_notes_growth(const sl_rule *r, const tmpl *t, const char *file, strvec *notes)
{
    static const char *const where[2] = {"the address", "the routing host"};
    for (size_t g = 0; g < 2; g++) {
        unsigned times = 0;
        const char *piece = g == 0 ? tmpl_growth(t, 0, 2, &times) : tmpl_growth(t, 2, 3, &times);
        if (piece)
            sv_push_owned(notes, xasprintf("%s:%d: warning: template '%s' uses %s %u times in %s: each rewrite can "
                                           "make it longer (an address over %d octets or a domain over %d is refused)",
                                           file, r->line, r->tmpl, piece, times, where[g], REWRITE_MAX_ADDRESS,
                                           REWRITE_MAX_DOMAIN));
    }
}

void rewrite_conf_notes(const sl_conf *c, const char *file, strvec *notes)
{
    for (size_t i = 0; i < c->n_rules; i++) {
        const sl_rule *r = &c->rules[i];
        strvec mine = {0};
        tmpl t;
        if (rewrite_template_lint(r->tmpl, NULL, 0, &mine) != 0) continue; /* errors are conf_load's business */
        for (size_t j = 0; j < mine.n; j++)
            sv_push_owned(notes, xasprintf("%s:%d: note: %s", file, r->line, mine.v[j]));
        sv_free(&mine);
        if (tmpl_compile(r->tmpl, &t, NULL, 0) != 0) continue;
        conf_notes_channels(c, r, file, &t.m, 'M', notes);
        conf_notes_channels(c, r, file, &t.n, 'N', notes);
        conf_notes_channels(c, r, file, &t.q, 'Q', notes);
        conf_notes_channels(c, r, file, &t.c, 'C', notes);
        conf_notes_growth(r, &t, file, notes);
        tmpl_free(&t);
    }
}

/* put_labels - append s[0,len) without its first n dot-separated labels (a leading dot is kept). */
static void put_labels(strbuf *sb, const char *s, size_t len, unsigned n)
{
    bool lead = len > 0 && s[0] == '.';
    size_t i = lead ? 1 : 0;
    if (n == 0) {
        sb_append(sb, s, len);
        return;
    }
    for (unsigned k = 0; k < n; k++) {
        const char *dot = memchr(s + i, '.', len - i);
        if (!dot) return; /* fewer labels than n: nothing is left */
        i = (size_t)(dot - s) + 1;
    }
    if (lead) sb_putc(sb, '.');
    sb_append(sb, s + i, len - i);
}

/* put_local - $U, $0U (without the subaddress) or $1U (the subaddress with its '+'). */
static void put_local(strbuf *sb, const char *local, int which)
{
    const char *plus = NULL;
    bool quoted = false;
    for (const char *p = local; *p && !plus; p++) {
        if (quoted && *p == '\\' && p[1]) p++;
        else if (*p == '"') quoted = !quoted;
        else if (*p == '+' && !quoted) plus = p;
    }
    if (which < 0) sb_puts(sb, local);
    else if (which == 0) sb_append(sb, local, plus ? (size_t)(plus - local) : strlen(local));
    else if (plus) sb_puts(sb, plus);
}

/* tmpl_expand - one raw part with its substitutions applied (checked by tmpl_compile). */
static char *tmpl_expand(const strbuf *part, const tmpl_vars *v)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    const char *s = part->data ? part->data : "";
    for (size_t i = 0; i < part->len; i++) {
        if (s[i] != '$') {
            sb_putc(&sb, s[i]);
            continue;
        }
        unsigned n = 0;
        int digits = 0;
        for (i++; isdigit((unsigned char)s[i]); i++, digits++) n = n * 10 + (unsigned)(s[i] - '0');
        const host_parts *hp = &v->hp;
        switch (s[i]) {
        case 'U': put_local(&sb, v->local, digits ? (int)n : -1); break;
        case 'H': put_labels(&sb, v->host, hp->h_len, n); break;
        case 'D': put_labels(&sb, v->host + hp->d_start, hp->d_len, n); break;
        case 'L': sb_append(&sb, v->host + hp->l_start, hp->l_len); break;
        default: sb_putc(&sb, s[i]); /* $$ $% $@ */
        }
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

/* domain_ok - a domain literal, or dot-separated non-empty labels without blanks. */
static bool domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || strpbrk(d, " \t\r\n")) return false;
    if (d[0] == '[') return n > 2 && d[n - 1] == ']';
    return d[0] != '.' && d[n - 1] != '.' && !strstr(d, "..");
}

/* The state of one rewrite_address_ctx call. */
typedef struct {
    const sl_conf *c;
    const rw_ctx *ctx;
    strbuf *trace;
    rw_result *out;
    char *local, *domain; /* what the next rule applies to */
    char *addr;           /* the rewritten address, fixed by the first A@B / A%B@C step */
    bool routing;         /* domain is a routing host being rewritten (address kept) */
    char *errtext;        /* sticky $? text of the rules that fired */
    char status[12];
} rw_state;

/* A rule chosen for the host: a template, or a channel whose official host name the host is. */
typedef struct {
    const sl_rule *rule;
    const sl_channel *host_channel;
    tmpl t;
    host_parts hp;
} rule_match;

static void rw_fail(rw_state *st, char *msg, const char *status)
{
    if (st->trace) sb_printf(st->trace, "error: %s\n", msg);
    free(st->out->error);
    st->out->error = msg;
    snprintf(st->out->status, sizeof st->out->status, "%s", status);
}

/* rw_fail_route - a routing failure: the sticky $? text replaces the default message. */
static void rw_fail_route(rw_state *st, char *msg)
{
    if (!st->errtext) {
        rw_fail(st, msg, REWRITE_DEFAULT_STATUS);
        return;
    }
    free(msg);
    rw_fail(st, xstrdup(st->errtext), st->status);
}

/* rules_enforced - whether channel-specific checks apply for channel name ("norules" turns them off). */
static bool rules_enforced(const sl_conf *c, const char *name)
{
    const sl_channel *ch = name ? conf_channel_by_name(c, name) : NULL;
    return !ch || ch->rules;
}

/* cond_kind - $E $B $F $R against the kind of address; false with why. */
static bool cond_kind(const tmpl *t, enum rw_kind kind, strbuf *why)
{
    bool env = kind == RW_ENV_TO || kind == RW_ENV_FROM;
    bool fwd = kind == RW_ENV_TO || kind == RW_HDR_TO;
    const char *fail = t->env && !env  ? "$E: not an envelope address"
                       : t->hdr && env ? "$B: not a header address"
                       : t->fwd && !fwd ? "$F: not a forward (To) address"
                       : t->bwd && fwd  ? "$R: not a backward (From) address"
                                        : NULL;
    if (fail) sb_puts(why, fail);
    return !fail;
}

/* cond_channels - $M/$N (or $Q/$C) against a channel name: any of yes holds, none of no holds. */
static bool cond_channels(const strvec *yes, const strvec *no, const char *name, const char *what, char y, char n,
                          strbuf *why)
{
    if (yes->n && !(name && sv_contains_ci(yes, name))) {
        sb_printf(why, "$%c: %s channel %s is not %s%s", y, what, name ? name : "(none)", yes->v[0],
                  yes->n > 1 ? " or the others named" : "");
        return false;
    }
    if (name && sv_contains_ci(no, name)) {
        sb_printf(why, "$%c: %s channel is %s", n, what, name);
        return false;
    }
    return true;
}

/* tmpl_conditions - whether the template's conditions hold in ctx; why says which failed. */
static bool tmpl_conditions(const sl_conf *c, const tmpl *t, const rw_ctx *ctx, strbuf *why, strbuf *trace)
{
    if (!cond_kind(t, ctx->kind, why)) return false;
    if ((t->m.n || t->n.n) && rules_enforced(c, ctx->src_channel) &&
        !cond_channels(&t->m, &t->n, ctx->src_channel, "source", 'M', 'N', why))
        return false;
    if (!t->q.n && !t->c.n) return true;
    if (ctx->kind == RW_ENV_TO || !ctx->dst_channel) {
        if (trace) sb_puts(trace, "  ($Q/$C ignored: the destination channel is not known yet)\n");
        return true;
    }
    if (!rules_enforced(c, ctx->dst_channel)) return true;
    return cond_channels(&t->q, &t->c, ctx->dst_channel, "destination", 'Q', 'C', why);
}

/* rule_try - the rules with one pattern, in file order: 1 = one fired (m filled), 0 = none, -1 = bad rule. */
static int rule_try(rw_state *st, const char *pattern, host_parts hp, rule_match *m)
{
    bool any = false;
    for (size_t i = 0; i < st->c->n_rules; i++) {
        const sl_rule *r = &st->c->rules[i];
        if (strcmp(r->pattern, pattern) != 0) continue;
        any = true;
        char why[200];
        if (tmpl_compile(r->tmpl, &m->t, why, sizeof why) != 0) {
            rw_fail(st, xasprintf("rule '%s' (line %d): %s", r->pattern, r->line, why), REWRITE_DEFAULT_STATUS);
            return -1;
        }
        strbuf reason;
        sb_init(&reason);
        if (tmpl_conditions(st->c, &m->t, st->ctx, &reason, st->trace)) {
            sb_free(&reason);
            m->rule = r;
            m->hp = hp;
            return 1;
        }
        if (st->trace) sb_printf(st->trace, "skip '%s' (line %d) '%s': %s\n", pattern, r->line, r->tmpl, reason.data);
        sb_free(&reason);
        tmpl_free(&m->t);
    }
    if (!any && st->trace) sb_printf(st->trace, "try '%s' -> no rule\n", pattern);
    return 0;
}

/* search_literal - "[1.2.3.4]", "[1.2.3.]", "[1.2.]", "[1.]", "[]", "[*.*.*.*]". */
static int search_literal(rw_state *st, const char *lc, rule_match *m)
{
    size_t n = strlen(lc);
    host_parts hp = {0, 0, n, 0, 0};
    int rc = rule_try(st, lc, hp, m);
    for (size_t i = n - 2; rc == 0 && i > 1; i--) {
        if (lc[i - 1] != '.') continue;
        char *cand = xasprintf("%.*s]", (int)i, lc);
        hp.l_start = i;
        hp.l_len = n - 1 - i;
        rc = rule_try(st, cand, hp, m);
        free(cand);
    }
    hp.l_start = 1;
    hp.l_len = n - 2;
    if (rc == 0) rc = rule_try(st, "[]", hp, m);
    if (rc == 0) {
        strbuf wild;
        sb_init(&wild);
        sb_puts(&wild, "[*");
        for (size_t i = 1; i + 1 < n; i++)
            if (lc[i] == '.') sb_puts(&wild, ".*");
        sb_putc(&wild, ']');
        host_parts all = {n, n, 0, 1, n - 2};
        rc = rule_try(st, wild.data, all, m);
        sb_free(&wild);
    }
    return rc;
}

/* search_channel_host - a host that is a channel's official host name acts as a rule (channels with "rules"). */
static int search_channel_host(rw_state *st, const char *lc, rule_match *m)
{
    for (size_t i = 0; i < st->c->n_channels; i++) {
        const sl_channel *ch = &st->c->channels[i];
        if (ch->hosts.n == 0 || !str_ieq(ch->hosts.v[0], lc)) continue;
        if (!ch->rules) {
            if (st->trace) sb_printf(st->trace, "try channel host name '%s' -> channel %s has norules\n", lc, ch->name);
            return 0;
        }
        m->host_channel = ch;
        return 1;
    }
    return 0;
}

/* search_host - exact host, its channel, then "*.rest" and ".rest" outward, then "*.*...*". */
static int search_host(rw_state *st, const char *lc, rule_match *m)
{
    size_t n = strlen(lc), labels = 1;
    host_parts hp = {0, 0, n, 0, 0};
    int rc = rule_try(st, lc, hp, m);
    if (rc == 0) rc = search_channel_host(st, lc, m);
    strbuf wild;
    sb_init(&wild);
    for (size_t i = 1; rc == 0 && i < n; i++) {
        if (lc[i] != '.') continue;
        sb_reset(&wild);
        for (size_t k = 0; k < labels; k++) sb_puts(&wild, "*.");
        sb_puts(&wild, lc + i + 1);
        labels++;
        host_parts sub = {i, i, n - i, 0, 0};
        rc = rule_try(st, wild.data, sub, m);
        if (rc == 0) rc = rule_try(st, lc + i, sub, m);
    }
    if (rc == 0) {
        sb_reset(&wild);
        sb_puts(&wild, "*");
        for (size_t k = 1; k < labels; k++) sb_puts(&wild, ".*");
        host_parts all = {n, n, 0, 0, 0};
        rc = rule_try(st, wild.data, all, m);
    }
    sb_free(&wild);
    return rc;
}

/* rule_search - the rule that fires for st->domain, down to "."; 1 found, 0 none, -1 bad rule. */
static int rule_search(rw_state *st, rule_match *m)
{
    char *lc = str_lower(xstrdup(st->domain));
    size_t n = strlen(lc);
    bool literal = lc[0] == '[' && lc[n - 1] == ']';
    int rc = literal ? search_literal(st, lc, m) : search_host(st, lc, m);
    if (rc == 0) {
        host_parts all = {n, n, 0, literal ? 1 : 0, literal ? n - 2 : 0};
        rc = rule_try(st, ".", all, m);
    }
    free(lc);
    return rc;
}

/* rw_route - the routing host is final when a channel owns it: 1; otherwise rewrite it again (0) or fail (-1). */
static int rw_route(rw_state *st, char **route)
{
    const sl_channel *ch = conf_channel_by_host(st->c, *route);
    if (ch) {
        if (st->trace) sb_printf(st->trace, "channel %s (routing host %s)\n", ch->name, *route);
        st->out->channel = ch;
        st->out->host = *route;
        *route = NULL;
        return 1;
    }
    if (str_ieq(*route, st->domain)) {
        rw_fail_route(st, xasprintf("no channel for routing host %s", *route));
        return -1;
    }
    if (st->trace) sb_printf(st->trace, "no channel for routing host '%s': rewriting it\n", *route);
    st->routing = true;
    free(st->domain);
    st->domain = *route;
    *route = NULL;
    return 0;
}

/* rw_fix_addr - the first step that settles the address fixes it; routing-host rewrites keep it. */
static void rw_fix_addr(rw_state *st, const char *local, const char *domain)
{
    if (!st->routing && !st->addr) st->addr = xasprintf("%s@%s", local, domain);
}

/* rw_too_long - what in a rule's output exceeds the bounds, or NULL (route may be NULL). */
static const char *rw_too_long(const char *local, const char *domain, const char *route)
{
    size_t nd = strlen(domain);
    if (nd > REWRITE_MAX_DOMAIN) return "a domain longer than 255 octets";
    if (strlen(local) + 1 + nd > REWRITE_MAX_ADDRESS) return "an address longer than 1024 octets";
    if (route && strlen(route) > REWRITE_MAX_DOMAIN) return "a routing host longer than 255 octets";
    return NULL;
}

/* rw_apply - apply a template rule that fired; 1 = done, 0 = rewrite again, -1 = failed. */
static int rw_apply(rw_state *st, rule_match *m)
{
    const sl_rule *r = m->rule;
    if (m->t.errtext) {
        free(st->errtext);
        st->errtext = xstrdup(m->t.errtext);
        snprintf(st->status, sizeof st->status, "%s", m->t.status);
    }
    if (m->t.kind == TMPL_ERROR) {
        if (st->trace) sb_printf(st->trace, "match '%s' -> '%s' -> error text, host %s looked up as is\n", r->pattern,
                                 r->tmpl, st->domain);
        char *host = xstrdup(st->domain);
        if (!conf_channel_by_host(st->c, host)) {
            rw_fail_route(st, xasprintf("no channel for %s", host));
            free(host);
            return -1;
        }
        rw_fix_addr(st, st->local, st->domain);
        return rw_route(st, &host);
    }
    tmpl_vars v = {st->local, st->domain, m->hp};
    char *a = tmpl_expand(&m->t.part[0], &v);
    char *b = tmpl_expand(&m->t.part[1], &v);
    char *route = m->t.kind == TMPL_PCT_AT ? tmpl_expand(&m->t.part[2], &v) : xstrdup(b);
    int rc = -1;
    const char *too_long = rw_too_long(a, b, route);
    if (too_long) {
        rw_fail(st, xasprintf("rule '%s' (line %d) gives %s", r->pattern, r->line, too_long), REWRITE_TOO_LONG_STATUS);
    } else if (!*a || !domain_ok(b) || !*route) {
        rw_fail(st, xasprintf("rule '%s' (line %d) gives local part '%s', domain '%s', routing host '%s'", r->pattern,
                              r->line, a, b, route), REWRITE_DEFAULT_STATUS);
    } else if (m->t.kind == TMPL_PCT) {
        if (st->trace) sb_printf(st->trace, "match '%s' -> '%s' -> rewrite %s@%s again\n", r->pattern, r->tmpl, a, b);
        free(st->local);
        free(st->domain);
        st->local = a;
        st->domain = b;
        a = b = NULL;
        rc = 0;
    } else {
        rw_fix_addr(st, a, b);
        if (st->trace) sb_printf(st->trace, "match '%s' -> '%s' -> %s@%s via %s\n", r->pattern, r->tmpl, a, b, route);
        rc = rw_route(st, &route);
    }
    free(a);
    free(b);
    free(route);
    return rc;
}

/* rw_step - find and apply the rule for st->domain; 1 = done (channel found), 0 = rewrite again, -1 = failed. */
static int rw_step(rw_state *st)
{
    rule_match m;
    memset(&m, 0, sizeof m);
    int found = rule_search(st, &m);
    if (found < 0) return -1;
    if (found == 0) {
        rw_fail_route(st, st->routing ? xasprintf("no channel for routing host %s", st->domain)
                                       : xasprintf("no rewrite rule for %s", st->domain));
        return -1;
    }
    int rc;
    if (m.host_channel) {
        if (st->trace) sb_printf(st->trace, "match channel host name '%s' -> channel %s\n", st->domain,
                                 m.host_channel->name);
        rw_fix_addr(st, st->local, st->domain);
        char *route = xstrdup(m.host_channel->hosts.v[0]);
        rc = rw_route(st, &route);
        free(route);
    } else {
        rc = rw_apply(st, &m);
    }
    tmpl_free(&m.t);
    return rc;
}

sl_result rewrite_address_ctx(const sl_conf *c, const char *addr, const rw_ctx *ctx, rw_result *out, strbuf *trace)
{
    static const rw_ctx env_to = {NULL, NULL, RW_ENV_TO, NULL};
    rw_state st;
    memset(&st, 0, sizeof st);
    st.c = c;
    st.ctx = ctx ? ctx : &env_to;
    st.trace = trace;
    st.out = out;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (rewrite_split(addr, &st.local, &st.domain) != 0) {
        rw_fail(&st, xasprintf("no domain in address '%s'", addr), "5.1.3");
        goto done;
    }
    const char *too_long = rw_too_long(st.local, st.domain, NULL);
    if (too_long) {
        rw_fail(&st, xasprintf("address too long (%s)", too_long), REWRITE_TOO_LONG_STATUS);
        goto done;
    }
    if (!domain_ok(st.domain)) {
        rw_fail(&st, xasprintf("bad domain '%s'", st.domain), "5.1.2");
        goto done;
    }
    for (int i = 0; i < REWRITE_MAX_ITERATIONS; i++) {
        rc = rw_step(&st);
        if (rc != 0) break;
    }
    if (rc == 0)
        rw_fail(&st, xasprintf("rewrite loop: %s not routed after %d rewrites", addr, REWRITE_MAX_ITERATIONS), "5.4.6");
done:
    if (rc == 1) {
        out->addr = st.addr;
        st.addr = NULL;
        if (!out->addr) out->addr = xasprintf("%s@%s", st.local, st.domain);
    }
    free(st.local);
    free(st.domain);
    free(st.addr);
    free(st.errtext);
    if (rc == 1) return SL_OK;
    return out->status[0] == '4' ? SL_TEMP : SL_PERM;
}

sl_result rewrite_address(const sl_conf *c, const char *addr, const char *src_channel, rw_result *out, strbuf *trace)
{
    rw_ctx ctx = {src_channel, NULL, RW_ENV_TO, NULL};
    return rewrite_address_ctx(c, addr, &ctx, out, trace);
}

void rw_result_free(rw_result *r)
{
    free(r->addr);
    free(r->host);
    free(r->error);
    memset(r, 0, sizeof *r);
}

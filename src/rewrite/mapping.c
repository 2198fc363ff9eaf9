/*
 * mapping.c - the mappings file parser and the mapping-table engine (see mapping.h and
 * doc/mappings.md). Parsing compiles each pattern into tokens and checks each template with the
 * same walker that later runs it ("dry" mode), so a template that loads never meets a syntax
 * error at probe time. Probing is pure: a backtracking matcher with a failure memo (so hostile
 * input cannot make it exponential) and a template walker that may recurse into other tables.
 */
#include "rewrite/mapping.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- compiled form ---- */

enum pt_kind { PT_LIT, PT_ONE, PT_ANY, PT_IP };
enum pt_class { CL_ALL, CL_ALPHA, CL_BIN, CL_DEC, CL_HEX, CL_OCT };

typedef struct {
    enum pt_kind kind;
    char c;             /* PT_LIT: the character, lower case */
    enum pt_class cls;  /* PT_ONE, PT_ANY */
    int family;         /* PT_IP: AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
    int save;           /* index of the saved string, -1 for literals */
} pt_tok;

typedef struct {
    char *pattern; /* as written */
    char *tmpl;    /* as written */
    pt_tok *toks;
    size_t ntok;
    unsigned nsave;
    const char *file; /* points into sl_mappings.files */
    int line;
} m_entry;

typedef struct {
    char *name;
    const char *file;
    int line;
    m_entry *e;
    size_t n, cap;
} m_table;

struct sl_mappings {
    m_table *t;
    size_t n, cap;
    strvec files; /* every file read; entries point at these strings */
};

/* Output flags of a template. */
enum { F_Y = 1, F_N = 2, F_F = 4, F_W = 8, F_D = 16, F_X = 32 };

/* ---- small helpers ---- */

static const m_table *table_find(const sl_mappings *m, const char *name, size_t n)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->t[i].name) == n && strncasecmp(m->t[i].name, name, n) == 0) return &m->t[i];
    return NULL;
}

/* flag_bit - the bit of input flag letter c (A-Z, case-insensitive); 0 for anything else. */
static uint32_t flag_bit(char c)
{
    c = (char)toupper((unsigned char)c);
    return (c >= 'A' && c <= 'Z') ? (uint32_t)1 << (c - 'A') : 0;
}

/* class_ok - whether c belongs to a wildcard class. */
static bool class_ok(enum pt_class cls, char c)
{
    unsigned char u = (unsigned char)c;
    switch (cls) {
    case CL_ALPHA: return isalpha(u) != 0;
    case CL_BIN: return c == '0' || c == '1';
    case CL_DEC: return isdigit(u) != 0;
    case CL_HEX: return isxdigit(u) != 0;
    case CL_OCT: return c >= '0' && c <= '7';
    default: return true;
    }
}

/* ---- IP networks ---- */

/* ip_parse_net - "10.0.0.0/8", "2001:db8::/32" or a bare address into t; -1 on error. */
static int ip_parse_net(const char *s, size_t n, pt_tok *t)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *slash = strchr(buf, '/');
    if (slash) *slash = '\0';
    memset(t->addr, 0, sizeof t->addr);
    unsigned max;
    if (inet_pton(AF_INET, buf, t->addr) == 1) {
        t->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, t->addr) == 1) {
        t->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    t->prefix = max;
    if (slash) {
        uint64_t v;
        if (parse_uint(slash + 1, 0, max, &v) != 0) return -1;
        t->prefix = (unsigned)v;
    }
    return 0;
}

/* ip_in_net - whether the address text s[0..n) parses and lies in t's network. */
static bool ip_in_net(const char *s, size_t n, const pt_tok *t)
{
    char buf[64];
    uint8_t a[16] = {0};
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(t->family, buf, a) != 1) return false;
    unsigned full = t->prefix / 8, rest = t->prefix % 8;
    if (memcmp(a, t->addr, full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (t->addr[full] & mask);
}

/* ---- pattern compilation ---- */

/* class_of - the class a "$A*"-style glob letter names; -1 if none. */
static int class_of(char c)
{
    switch (toupper((unsigned char)c)) {
    case 'A': return CL_ALPHA;
    case 'B': return CL_BIN;
    case 'D': return CL_DEC;
    case 'H': return CL_HEX;
    case 'O': return CL_OCT;
    default: return -1;
    }
}

/* pattern_dollar - compile the "$..." sequence at *pp into t and move *pp past it; -1 with *msg (allocated) on error. */
static int pattern_dollar(const char **pp, pt_tok *t, char **msg)
{
    const char *p = *pp;
    char c = p[1];
    if (c == '\0') {
        *msg = xstrdup("pattern ends with a lone '$'");
        return -1;
    }
    if (c == '(') {
        const char *close = strchr(p + 2, ')');
        if (!close || ip_parse_net(p + 2, (size_t)(close - p - 2), t) != 0) {
            size_t n = close ? (size_t)(close - p + 1) : strlen(p);
            *msg = xasprintf("bad IP pattern '%.*s' (expected $(address/prefix))", (int)n, p);
            return -1;
        }
        t->kind = PT_IP;
        *pp = close + 1;
        return 0;
    }
    int cls = class_of(c);
    if (cls >= 0) {
        if (p[2] != '*' && p[2] != '%') {
            *msg = xasprintf("'$%c' in a pattern must be followed by '*' or '%%'", c);
            return -1;
        }
        t->kind = p[2] == '*' ? PT_ANY : PT_ONE;
        t->cls = (enum pt_class)cls;
        *pp = p + 3;
        return 0;
    }
    if (isalnum((unsigned char)c) || strchr("_@^[]{}#", c)) {
        *msg = xasprintf("unsupported metacharacter '$%c' in the pattern", c);
        return -1;
    }
    t->kind = PT_LIT;
    t->c = (char)tolower((unsigned char)c);
    *pp = p + 2;
    return 0;
}

/* pattern_compile - tokens of pattern into e; -1 with *msg (allocated) on error. */
static int pattern_compile(m_entry *e, char **msg)
{
    size_t cap = strlen(e->pattern) + 1;
    e->toks = xcalloc(cap, sizeof *e->toks);
    e->ntok = 0;
    e->nsave = 0;
    for (const char *p = e->pattern; *p;) {
        pt_tok *t = &e->toks[e->ntok];
        memset(t, 0, sizeof *t);
        if (*p == '$') {
            if (pattern_dollar(&p, t, msg) != 0) return -1;
        } else if (*p == '*' || *p == '%') {
            t->kind = *p == '*' ? PT_ANY : PT_ONE;
            t->cls = CL_ALL;
            p++;
        } else {
            t->kind = PT_LIT;
            t->c = (char)tolower((unsigned char)*p++);
        }
        t->save = t->kind == PT_LIT ? -1 : (int)e->nsave++;
        e->ntok++;
    }
    return 0;
}

/* ---- matching ---- */

typedef struct {
    size_t off, len;
} span;

typedef struct {
    const m_entry *e;
    const char *s;
    size_t len;
    uint8_t *failed; /* bitmap over (token, position): the rest cannot match from there */
    span *saves;
} match_state;

static bool memo_get(const match_state *m, size_t ti, size_t pos)
{
    size_t bit = ti * (m->len + 1) + pos;
    return (m->failed[bit / 8] >> (bit % 8)) & 1;
}

static void memo_set(match_state *m, size_t ti, size_t pos)
{
    size_t bit = ti * (m->len + 1) + pos;
    m->failed[bit / 8] |= (uint8_t)(1 << (bit % 8));
}

static bool match_from(match_state *m, size_t ti, size_t pos);

/* match_any - a '*' (greedy: the longest run first) at token ti. */
static bool match_any(match_state *m, size_t ti, size_t pos)
{
    const pt_tok *t = &m->e->toks[ti];
    size_t end = pos;
    while (end < m->len && class_ok(t->cls, m->s[end])) end++;
    for (size_t k = end + 1; k-- > pos;) {
        m->saves[t->save] = (span){pos, k - pos};
        if (match_from(m, ti + 1, k)) return true;
    }
    return false;
}

/* match_ip - an IP pattern: the longest address-looking run in the network first. */
static bool match_ip(match_state *m, size_t ti, size_t pos)
{
    const pt_tok *t = &m->e->toks[ti];
    size_t end = pos;
    while (end < m->len && (isxdigit((unsigned char)m->s[end]) || m->s[end] == '.' || m->s[end] == ':')) end++;
    for (size_t k = end; k > pos; k--) {
        if (!ip_in_net(m->s + pos, k - pos, t)) continue;
        m->saves[t->save] = (span){pos, k - pos};
        if (match_from(m, ti + 1, k)) return true;
    }
    return false;
}

static bool match_from(match_state *m, size_t ti, size_t pos)
{
    if (memo_get(m, ti, pos)) return false;
    bool ok = false;
    if (ti == m->e->ntok) {
        ok = pos == m->len;
    } else {
        const pt_tok *t = &m->e->toks[ti];
        switch (t->kind) {
        case PT_LIT:
            ok = pos < m->len && tolower((unsigned char)m->s[pos]) == t->c && match_from(m, ti + 1, pos + 1);
            break;
        case PT_ONE:
            if (pos < m->len && class_ok(t->cls, m->s[pos])) {
                m->saves[t->save] = (span){pos, 1};
                ok = match_from(m, ti + 1, pos + 1);
            }
            break;
        case PT_ANY: ok = match_any(m, ti, pos); break;
        case PT_IP: ok = match_ip(m, ti, pos); break;
        }
    }
    if (!ok) memo_set(m, ti, pos);
    return ok;
}

/* pattern_match - whether s matches e's pattern; saves (e->nsave long) gets the saved spans. */
static bool pattern_match(const m_entry *e, const char *s, span *saves)
{
    match_state m = {e, s, strlen(s), NULL, saves};
    size_t bits = (e->ntok + 1) * (m.len + 1);
    m.failed = xcalloc(bits / 8 + 1, 1);
    bool ok = match_from(&m, 0, 0);
    free(m.failed);
    return ok;
}

/* ---- templates ---- */

/* What one walk over a template (or a $|...| argument) produced. */
enum walk_rc { W_OK, W_FAIL, W_BAD, W_TEMP };

typedef struct probe_ctx probe_ctx;

typedef struct {
    const sl_mappings *m;
    probe_ctx *pc;      /* NULL: dry run (parse-time check): no values, no probes, tests hold */
    const char *input;  /* the string the pattern matched */
    const span *saves;
    unsigned nsave;
    strvec *trace;
    int depth;          /* nesting of the probe running this template */
    /* results */
    strbuf out;
    unsigned flags;
    char ctl;           /* last of C, E, L, R seen; 0 for none */
    char *why;          /* W_FAIL / W_BAD: the reason (allocated) */
} walk;

struct probe_ctx {
    const sl_mappings *m;
    uint32_t inflags;
    unsigned passes;
};

static sl_result probe_table(probe_ctx *pc, const char *name, size_t nlen, const char *input, strvec *trace,
                             int depth, mapping_result *out);
static enum walk_rc walk_range(walk *w, const char *p, const char *end, bool arg);

/* probe_end - the '|' that closes the $|...| starting at p ("$|"), before end; NULL if none. */
static const char *probe_end(const char *p, const char *end)
{
    for (p += 2; p < end; p++) {
        if (*p == '|') return p;
        if (*p != '$' || p + 1 >= end) continue;
        if (p[1] == '|') {
            p = probe_end(p, end);
            if (!p) return NULL;
        } else {
            p++;
        }
    }
    return NULL;
}

static enum walk_rc walk_bad(walk *w, char *why)
{
    free(w->why);
    w->why = why;
    return W_BAD;
}

/* walk_probe - "$|TABLE;arg|" at p (closing '|' at close): expand arg, probe TABLE, append its output. */
static enum walk_rc walk_probe(walk *w, const char *p, const char *close)
{
    const char *name = p + 2, *semi = memchr(name, ';', (size_t)(close - name));
    if (!semi || semi == name)
        return walk_bad(w, xasprintf("'%.*s': expected $|TABLE;argument|", (int)(close - p + 1), p));
    size_t nlen = (size_t)(semi - name);
    if (!table_find(w->m, name, nlen))
        return walk_bad(w, xasprintf("$|%.*s;...|: no table %.*s in the mappings file", (int)nlen, name, (int)nlen, name));
    walk a = {w->m, w->pc, w->input, w->saves, w->nsave, w->trace, w->depth, {0}, 0, 0, NULL};
    enum walk_rc rc = walk_range(&a, semi + 1, close, true);
    if (rc != W_OK || !w->pc) {
        free(w->why);
        w->why = a.why;
        sb_free(&a.out);
        return rc;
    }
    char *arg = sb_steal(&a.out);
    mapping_result r;
    sl_result src = probe_table(w->pc, name, nlen, arg, w->trace, w->depth + 1, &r);
    if (src == SL_TEMP) rc = W_TEMP;
    else if (r.matched && r.ok_flag && !r.no_flag && !r.temp) sb_puts(&w->out, r.output);
    else {
        rc = W_FAIL;
        w->why = xasprintf("$|%.*s;%s| failed (%s)", (int)nlen, name, arg,
                           !r.matched ? "no match" : r.no_flag || r.temp ? "rejected" : "no $Y");
    }
    mapping_result_free(&r);
    free(arg);
    return rc;
}

/* walk_test - "$:x" (flag x must be set) or "$;x" (must be clear) at p. */
static enum walk_rc walk_test(walk *w, const char *p, const char *end)
{
    if (p + 2 >= end || !flag_bit(p[2])) return walk_bad(w, xasprintf("'$%c' needs a flag letter (A-Z) after it", p[1]));
    if (!w->pc) return W_OK;
    bool set = (w->pc->inflags & flag_bit(p[2])) != 0;
    if (set == (p[1] == ':')) return W_OK;
    w->why = xasprintf("$%c%c: input flag %c is %s", p[1], p[2], toupper((unsigned char)p[2]), set ? "set" : "not set");
    return W_FAIL;
}

/* walk_meta - the "$x" at p in a template (not an argument); sets *next past it. */
static enum walk_rc walk_meta(walk *w, const char *p, const char *end, const char **next)
{
    char c = p[1];
    *next = p + 2;
    switch (c) {
    case 'Y': w->flags |= F_Y; return W_OK;
    case 'N': w->flags |= F_N; return W_OK;
    case 'F': w->flags |= F_F; return W_OK;
    case 'W': w->flags |= F_W; return W_OK;
    case 'D': w->flags |= F_D; return W_OK;
    case 'X': w->flags |= F_X; return W_OK;
    case 'C': case 'E': case 'L': case 'R': w->ctl = c; return W_OK;
    case ':': case ';':
        *next = p + 3;
        return walk_test(w, p, end);
    default:
        return walk_bad(w, xasprintf("unknown metacharacter '$%c' in the template", c));
    }
}

/* walk_range - run (or with w->pc NULL, check) the template text [p, end); arg: inside $|...|. */
static enum walk_rc walk_range(walk *w, const char *p, const char *end, bool arg)
{
    while (p < end) {
        if (*p != '$') {
            sb_putc(&w->out, *p++);
            continue;
        }
        if (p + 1 >= end) return walk_bad(w, xstrdup("template ends with a lone '$'"));
        char c = p[1];
        enum walk_rc rc = W_OK;
        if (c == '$' || c == ' ' || c == '\t') {
            sb_putc(&w->out, c);
            p += 2;
        } else if (c >= '0' && c <= '9') {
            unsigned n = (unsigned)(c - '0');
            if (n >= w->nsave)
                return walk_bad(w, xasprintf("'$%c': the pattern saves only %u wildcard%s", c, w->nsave,
                                             w->nsave == 1 ? "" : "s"));
            if (w->pc) sb_append(&w->out, w->input + w->saves[n].off, w->saves[n].len);
            p += 2;
        } else if (c == '|') {
            const char *close = probe_end(p, end);
            if (!close) return walk_bad(w, xasprintf("unterminated '%.*s' (expected $|TABLE;argument|)", (int)(end - p), p));
            rc = walk_probe(w, p, close);
            p = close + 1;
        } else if (arg) {
            return walk_bad(w, xasprintf("'$%c' in a $|...| argument (only text, $0-$9 and $|...| are allowed)", c));
        } else {
            rc = walk_meta(w, p, end, &p);
        }
        if (rc != W_OK) return rc;
    }
    return W_OK;
}

/* ---- probing ---- */

/* flags_text - "$Y$N..." for the trace; caller frees. */
static char *flags_text(unsigned f, char ctl)
{
    strbuf sb;
    sb_init(&sb);
    static const struct { unsigned bit; const char *s; } names[] = {
        {F_Y, "$Y"}, {F_N, "$N"}, {F_F, "$F"}, {F_W, "$W"}, {F_D, "$D"}, {F_X, "$X"}};
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++)
        if (f & names[i].bit) sb_puts(&sb, names[i].s);
    if (ctl) sb_printf(&sb, "$%c", ctl);
    return sb_steal(&sb);
}

/* saves_text - " $0='a' $1='b'" for the trace; caller frees. */
static char *saves_text(const char *s, const span *saves, unsigned n)
{
    strbuf sb;
    sb_init(&sb);
    for (unsigned i = 0; i < n; i++) sb_printf(&sb, " $%u='%.*s'", i, (int)saves[i].len, s + saves[i].off);
    return sb_steal(&sb);
}

static void trace_add(strvec *trace, int depth, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void trace_add(strvec *trace, int depth, const char *fmt, ...)
{
    strbuf sb;
    va_list ap;
    sb_init(&sb);
    for (int i = 0; i < depth; i++) sb_puts(&sb, "    ");
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    sv_push_owned(trace, sb_steal(&sb));
}

/* What the scan of one table ended with. */
typedef struct {
    const m_entry *last;  /* the last entry that succeeded, NULL if none */
    char *output;         /* its output, or the input when none succeeded */
    unsigned flags;
    bool failed;          /* ended by a failing template */
} scan_result;

/* Where the scan goes after an entry. */
enum scan_step { STEP_NEXT, STEP_TOP, STEP_END };

/* pass_count - count one more pass over table name; false (traced) past the limit. */
static bool pass_count(probe_ctx *pc, const char *name, strvec *trace, int depth)
{
    if (++pc->passes <= MAPPING_MAX_PASSES) return true;
    trace_add(trace, depth, "%s: pass limit (%d) reached: the probe fails temporarily", name, MAPPING_MAX_PASSES);
    return false;
}

/* scan_step_for - the step that control flag ctl asks for after an entry that succeeded (ok) or
 * failed; $C after a success cancels a pending $L pass. -1 past the pass limit. */
static int scan_step_for(probe_ctx *pc, const char *tname, char ctl, bool ok, bool *lpending, strvec *trace, int depth)
{
    if (ctl == 'C' || ctl == 'L') {
        if (ctl == 'L' || ok) *lpending = ctl == 'L';
        return STEP_NEXT;
    }
    if (ctl == 'R') {
        *lpending = false;
        return pass_count(pc, tname, trace, depth) ? STEP_TOP : -1;
    }
    return STEP_END;
}

/* scan_entry - try entry e on *cur; updates res and *cur; the step to take, or -1 for the limit. */
static int scan_entry(probe_ctx *pc, const char *tname, const m_entry *e, char **cur, strvec *trace, int depth, scan_result *res,
                      bool *lpending)
{
    span *saves = xcalloc(e->nsave + 1, sizeof *saves);
    int step = STEP_NEXT;
    if (!pattern_match(e, *cur, saves)) {
        trace_add(trace, depth, "%s:%d: '%s' does not match", e->file, e->line, e->pattern);
        goto done;
    }
    char *st = saves_text(*cur, saves, e->nsave);
    trace_add(trace, depth, "%s:%d: '%s' matches%s", e->file, e->line, e->pattern, st);
    free(st);
    walk w = {pc->m, pc, *cur, saves, e->nsave, trace, depth, {0}, 0, 0, NULL};
    enum walk_rc rc = walk_range(&w, e->tmpl, e->tmpl + strlen(e->tmpl), false);
    if (rc == W_TEMP) {
        step = -1;
    } else if (rc == W_OK && w.out.len > MAPPING_MAX_OUTPUT) {
        /* the pass limit alone does not bound a table that multiplies its input on each pass */
        trace_add(trace, depth, "  template '%s' gives %zu octets (more than %d): the probe fails temporarily", e->tmpl,
                  w.out.len, MAPPING_MAX_OUTPUT);
        step = -1;
    } else if (rc == W_OK) {
        char *ft = flags_text(w.flags, w.ctl);
        trace_add(trace, depth, "  template '%s' -> '%s'%s%s", e->tmpl, w.out.data ? w.out.data : "", *ft ? " " : "", ft);
        free(ft);
        free(res->output);
        res->output = sb_steal(&w.out);
        res->last = e;
        res->flags = w.flags;
        free(*cur);
        *cur = xstrdup(res->output);
        step = scan_step_for(pc, tname, w.ctl, true, lpending, trace, depth);
    } else {
        step = scan_step_for(pc, tname, w.ctl, false, lpending, trace, depth);
        if (step >= 0)
            trace_add(trace, depth, "  template '%s' fails: %s; %s", e->tmpl, w.why,
                      step == STEP_END ? "the mapping ends (no $C, $L or $R to the left of the failure)"
                                       : "continuing with the input unchanged");
        if (step == STEP_END) res->failed = true;
    }
    sb_free(&w.out);
    free(w.why);
done:
    free(saves);
    return step;
}

/* scan_table - the mapping process over table t for input; SL_TEMP past the pass limit. */
static sl_result scan_table(probe_ctx *pc, const m_table *t, const char *input, strvec *trace, int depth,
                            scan_result *res)
{
    char *cur = xstrdup(input);
    bool lpending = false;
    sl_result rc = SL_OK;
    memset(res, 0, sizeof *res);
    if (!pass_count(pc, t->name, trace, depth)) goto limit;
    for (size_t i = 0;;) {
        if (i >= t->n) {
            if (!lpending) break;
            lpending = false;
            if (!pass_count(pc, t->name, trace, depth)) goto limit;
            trace_add(trace, depth, "%s: $L: one more pass from the top with '%s'", t->name, cur);
            i = 0;
            continue;
        }
        int step = scan_entry(pc, t->name, &t->e[i], &cur, trace, depth, res, &lpending);
        if (step < 0) goto limit;
        if (step == STEP_END) break;
        if (step == STEP_TOP) trace_add(trace, depth, "%s: $R: restart from the top with '%s'", t->name, cur);
        i = step == STEP_TOP ? 0 : i + 1;
    }
    goto done;
limit:
    rc = SL_TEMP;
done:
    if (!res->last) {
        free(res->output);
        res->output = xstrdup(cur);
    }
    free(cur);
    return rc;
}

/* take_argument - cut the text up to the first '|' off the front of *out; caller frees. */
static char *take_argument(char **out)
{
    char *bar = strchr(*out, '|');
    size_t n = bar ? (size_t)(bar - *out) : strlen(*out);
    char *arg = xstrndup(*out, n);
    char *rest = xstrdup(*out + n + (bar ? 1 : 0));
    free(*out);
    *out = rest;
    return arg;
}

/* is_status_code - "4.7.1" form with class 2, 4 or 5. */
static bool is_status_code(const char *s)
{
    if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
    const char *p = s + 2;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 3 || p[n] != '.') return false;
    p += n + 1;
    n = strspn(p, "0123456789");
    return n > 0 && n <= 3 && p[n] == '\0';
}

/* result_arguments - apply $D then $X: their arguments come off the front of the output, in that order. */
static void result_arguments(mapping_result *out, unsigned flags, strvec *trace, int depth)
{
    if (flags & F_D) {
        char *arg = take_argument(&out->output);
        char *end = NULL;
        errno = 0;
        long v = strtol(arg, &end, 10);
        if (*arg && *end == '\0' && errno == 0 && v > -8640000 && v < 8640000) {
            unsigned long cs = (unsigned long)(v < 0 ? -v : v);
            out->delay_ms = (unsigned)(cs * 10);
            out->delay_secs = (out->delay_ms + 999) / 1000;
            out->delay_addr_only = v < 0;
        } else {
            trace_add(trace, depth, "  $D: '%s' is not a delay in hundredths of a second: ignored", arg);
        }
        free(arg);
    }
    if (flags & F_X) {
        char *arg = take_argument(&out->output);
        if (is_status_code(arg)) {
            out->status_code = arg;
            arg = NULL;
            if (out->status_code[0] == '4') out->temp = true;
        } else {
            trace_add(trace, depth, "  $X: '%s' is not a status code such as 5.7.1: ignored", arg);
        }
        free(arg);
    }
}

/* probe_table - one probe of table name[0..nlen) (a nested one when depth > 0) into out (trace not used). */
static sl_result probe_table(probe_ctx *pc, const char *name, size_t nlen, const char *input, strvec *trace,
                             int depth, mapping_result *out)
{
    memset(out, 0, sizeof *out);
    const m_table *t = table_find(pc->m, name, nlen);
    trace_add(trace, depth, "%.*s: probe '%s'", (int)nlen, name, input);
    if (!t) {
        trace_add(trace, depth, "%.*s: no such table: no match", (int)nlen, name);
        out->output = xstrdup(input);
        return SL_OK;
    }
    if (depth > MAPPING_MAX_DEPTH) {
        trace_add(trace, depth, "%s: nesting limit (%d) reached: the probe fails temporarily", t->name,
                  MAPPING_MAX_DEPTH);
        out->output = xstrdup(input);
        return SL_TEMP;
    }
    scan_result res;
    sl_result rc = scan_table(pc, t, input, trace, depth, &res);
    out->output = res.output;
    out->failed = res.failed;
    if (rc == SL_OK && res.last) {
        out->matched = true;
        out->ok_flag = (res.flags & F_Y) != 0;
        out->no_flag = (res.flags & (F_N | F_F)) != 0;
        out->temp = (res.flags & F_W) != 0;
        out->entry_file = xstrdup(res.last->file);
        out->entry_line = res.last->line;
        out->entry_pattern = xstrdup(res.last->pattern);
        result_arguments(out, res.flags, trace, depth);
    }
    trace_add(trace, depth, "%s: %s", t->name,
              rc != SL_OK ? "temporary failure" : out->matched ? "result from the last successful entry" : "no match");
    return rc;
}

sl_result mapping_probe(const sl_mappings *m, const char *table, const char *input, const char *flags,
                        mapping_result *out)
{
    if (!out) return SL_ERR;
    memset(out, 0, sizeof *out);
    if (!m || !table || !input) {
        out->output = xstrdup(input ? input : "");
        return SL_ERR;
    }
    probe_ctx pc = {m, 0, 0};
    for (const char *f = flags ? flags : ""; *f; f++) pc.inflags |= flag_bit(*f);
    strvec trace = {0};
    sl_result rc = probe_table(&pc, table, strlen(table), input, &trace, 0, out);
    out->trace = trace;
    if (rc != SL_OK) out->matched = false;
    return rc;
}

void mapping_result_free(mapping_result *r)
{
    if (!r) return;
    free(r->output);
    free(r->status_code);
    free(r->entry_file);
    free(r->entry_pattern);
    sv_free(&r->trace);
    memset(r, 0, sizeof *r);
}

/* ---- parsing the file ---- */

typedef struct {
    sl_mappings *m;
    const char *confdir;
    conf_errors *errs;
    size_t cur; /* index of the table entries go to; SIZE_MAX before the first table */
} parse_ctx;

static void parse_text(parse_ctx *pc, const char *file, const char *text, int depth);


/* file_keep - a stable copy of a file name for entries to point at. */
static const char *file_keep(sl_mappings *m, const char *file)
{
    for (size_t i = 0; i < m->files.n; i++)
        if (!strcmp(m->files.v[i], file)) return m->files.v[i];
    sv_push(&m->files, file);
    return m->files.v[m->files.n - 1];
}

/* parse_include - "<name": parse the named file in place. */
static void parse_include(parse_ctx *pc, const char *file, int line, const char *name, int depth)
{
    if (!*name) {
        conf_error(pc->errs, file, line, "'<' without a file name");
        return;
    }
    if (depth + 1 > MAPPING_MAX_INCLUDE) {
        conf_error(pc->errs, file, line, "include '%s' too deep (more than %d nested includes)", name,
                   MAPPING_MAX_INCLUDE);
        return;
    }
    size_t dl = strlen(pc->confdir);
    char *path = name[0] == '/' ? xstrdup(name)
                                : xasprintf("%s%s%s", pc->confdir, dl && pc->confdir[dl - 1] == '/' ? "" : "/", name);
    char *text = file_read_text(path);
    if (!text) conf_error(pc->errs, file, line, "cannot read include file '%s': %s", path, strerror(errno));
    else parse_text(pc, file_keep(pc->m, path), text, depth + 1);
    free(text);
    free(path);
}

/* valid_table_name - letters, digits, '_', '-', '.', ':' only. */
static bool valid_table_name(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_-.:", *s)) return false;
    return true;
}

/* parse_table_name - a line in column 1 starts a table. */
static void parse_table_name(parse_ctx *pc, const char *file, int line, char *text)
{
    char *name = str_trim(text);
    if (strpbrk(name, " \t")) {
        conf_error(pc->errs, file, line,
                   "'%s': a line in column 1 names a table; indent the entries of a table", name);
        return;
    }
    if (!valid_table_name(name)) {
        conf_error(pc->errs, file, line, "bad table name '%s'", name);
        return;
    }
    const m_table *old = table_find(pc->m, name, strlen(name));
    if (old) {
        conf_error(pc->errs, file, line, "duplicate table '%s' (first defined at %s:%d)", name, old->file, old->line);
        pc->cur = (size_t)(old - pc->m->t);
        return;
    }
    sl_mappings *m = pc->m;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->t = xrealloc(m->t, m->cap * sizeof *m->t);
    }
    m->t[m->n] = (m_table){xstrdup(name), file, line, NULL, 0, 0};
    pc->cur = m->n++;
}

/* token_end - end of a whitespace-delimited field where '$' quotes the next character. */
static const char *token_end(const char *p)
{
    while (*p && *p != ' ' && *p != '\t') p += (p[0] == '$' && p[1]) ? 2 : 1;
    return p;
}

static void entry_free(m_entry *e)
{
    free(e->pattern);
    free(e->tmpl);
    free(e->toks);
}

/* parse_entry - an indented "pattern template" line. */
static void parse_entry(parse_ctx *pc, const char *file, int line, const char *text)
{
    const char *p = text + strspn(text, " \t");
    const char *pe = token_end(p);
    const char *t = pe + strspn(pe, " \t");
    const char *te = token_end(t);
    const char *rest = te + strspn(te, " \t");
    m_entry e = {xstrndup(p, (size_t)(pe - p)), xstrndup(t, (size_t)(te - t)), NULL, 0, 0, file, line};
    char *msg = NULL;
    if (pc->cur == SIZE_MAX) conf_error(pc->errs, file, line, "entry '%s' outside a table (no table name above it)", e.pattern);
    else if (!*e.tmpl) conf_error(pc->errs, file, line, "pattern '%s' without a template", e.pattern);
    else if (*rest) conf_error(pc->errs, file, line, "text after the template: '%s' (quote spaces as '$ ')", rest);
    else if (pattern_compile(&e, &msg) != 0) conf_error(pc->errs, file, line, "%s", msg);
    else {
        m_table *tb = &pc->m->t[pc->cur];
        if (tb->n == tb->cap) {
            tb->cap = tb->cap ? tb->cap * 2 : 8;
            tb->e = xrealloc(tb->e, tb->cap * sizeof *tb->e);
        }
        tb->e[tb->n++] = e;
        free(msg);
        return;
    }
    free(msg);
    entry_free(&e);
}

/* parse_line - one logical line (continuations joined) that starts at physical line `line`. */
static void parse_line(parse_ctx *pc, const char *file, int line, char *text, int depth)
{
    const char *p = text + strspn(text, " \t");
    if (!*p || *p == '!') return;
    if (*p == '<') parse_include(pc, file, line, str_trim((char *)p + 1), depth);
    else if (text[0] == ' ' || text[0] == '\t') parse_entry(pc, file, line, text);
    else parse_table_name(pc, file, line, text);
}

/* next_physical - cut the next line off *cursor (strips "\r"); NULL at the end. */
static char *next_physical(char **cursor)
{
    char *line = *cursor;
    if (!line) return NULL;
    char *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = NULL;
        if (!*line) return NULL;
    }
    size_t n = strlen(line);
    if (n && line[n - 1] == '\r') line[n - 1] = '\0';
    return line;
}

/* ends_continued - whether line ends in an unquoted '\' (removed). */
static bool ends_continued(strbuf *sb)
{
    if (!sb->len || sb->data[sb->len - 1] != '\\') return false;
    if (sb->len >= 2 && sb->data[sb->len - 2] == '$') return false;
    sb->data[--sb->len] = '\0';
    return true;
}

static void parse_text(parse_ctx *pc, const char *file, const char *text, int depth)
{
    char *buf = xstrdup(text), *cursor = buf, *phys;
    int lineno = 0;
    strbuf logical;
    sb_init(&logical);
    while ((phys = next_physical(&cursor))) {
        int start = ++lineno;
        sb_reset(&logical);
        sb_puts(&logical, phys);
        while (ends_continued(&logical) && (phys = next_physical(&cursor))) {
            lineno++;
            sb_puts(&logical, phys);
        }
        parse_line(pc, file, start, logical.data, depth);
    }
    sb_free(&logical);
    free(buf);
}

/* check_templates - dry-run every template now that every table name is known. */
static void check_templates(const sl_mappings *m, conf_errors *errs)
{
    for (size_t i = 0; i < m->n; i++)
        for (size_t j = 0; j < m->t[i].n; j++) {
            const m_entry *e = &m->t[i].e[j];
            walk w = {m, NULL, "", NULL, e->nsave, NULL, 0, {0}, 0, 0, NULL};
            if (walk_range(&w, e->tmpl, e->tmpl + strlen(e->tmpl), false) == W_BAD)
                conf_error(errs, e->file, e->line, "%s", w.why);
            sb_free(&w.out);
            free(w.why);
        }
}

sl_mappings *mappings_parse(const char *file, const char *text, const char *confdir, conf_errors *errs)
{
    size_t before = errs->msgs.n;
    sl_mappings *m = xcalloc(1, sizeof *m);
    parse_ctx pc = {m, confdir ? confdir : ".", errs, SIZE_MAX};
    parse_text(&pc, file_keep(m, file), text ? text : "", 0);
    check_templates(m, errs);
    if (errs->msgs.n != before) {
        mappings_free(m);
        return NULL;
    }
    return m;
}

void mappings_free(sl_mappings *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        for (size_t j = 0; j < m->t[i].n; j++) entry_free(&m->t[i].e[j]);
        free(m->t[i].e);
        free(m->t[i].name);
    }
    free(m->t);
    sv_free(&m->files);
    free(m);
}

bool mappings_has_table(const sl_mappings *m, const char *name)
{
    return m && name && table_find(m, name, strlen(name)) != NULL;
}

size_t mappings_table_count(const sl_mappings *m)
{
    return m ? m->n : 0;
}

void mappings_relay_warnings(const sl_mappings *m, strvec *out)
{
    static const char *tables[] = {"ORIG_SEND_ACCESS", "SEND_ACCESS", "ORIG_MAIL_ACCESS", "MAIL_ACCESS"};
    if (!m) return;
    for (size_t t = 0; t < m->n; t++) {
        const m_table *tb = &m->t[t];
        bool access = false;
        for (size_t k = 0; k < SL_ARRAY_LEN(tables); k++) access |= str_ieq(tb->name, tables[k]);
        if (!access) continue;
        for (size_t i = 0; i < tb->n; i++) {
            const m_entry *e = &tb->e[i];
            /* a pattern of nothing but wildcards that allows: everybody may relay anywhere */
            if (strspn(e->pattern, "*|") != strlen(e->pattern) || !strstr(e->tmpl, "$Y")) continue;
            sv_push_owned(out, xasprintf("%s:%d: warning: %s entry '%s %s' allows any sender to any destination: "
                                         "this makes an open relay",
                                         e->file, e->line, tb->name, e->pattern, e->tmpl));
        }
    }
}

/*
 * sieve_parse.c - the grammar of RFC 5228 §8.2 and every command's and test's arguments.
 *
 * Two steps per command or test: the generic syntax (tags, numbers, strings and string lists,
 * then a test or a test list, then ";" or a block) is read into an argument list, then the
 * command's own compile function checks the arguments and builds its tree node. "require" is
 * checked as RFC 5228 §3.2 says: it comes first, and a test, action or argument of an extension
 * not required is an error. The first error ends the parse with "line N: message".
 */
#include "sieve/sieve_int.h"

#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Capabilities a script may require. */
enum {
    CAP_FILEINTO = 1u << 0, CAP_ENVELOPE = 1u << 1, CAP_REJECT = 1u << 2, CAP_EREJECT = 1u << 3,
    CAP_VACATION = 1u << 4, CAP_EDITHEADER = 1u << 5, CAP_ADDTAG = 1u << 6, CAP_SPAMTEST = 1u << 7,
    CAP_SPAMTESTPLUS = 1u << 8, CAP_VIRUSTEST = 1u << 9, CAP_RELATIONAL = 1u << 10,
    CAP_COPY = 1u << 11, CAP_NUMERIC = 1u << 12, CAP_OCTET = 1u << 13, CAP_CASEMAP = 1u << 14,
};

static const struct {
    const char *name;
    unsigned bits;
} caps[] = {
    {"fileinto", CAP_FILEINTO}, {"envelope", CAP_ENVELOPE}, {"reject", CAP_REJECT},
    {"ereject", CAP_EREJECT}, {"vacation", CAP_VACATION}, {"editheader", CAP_EDITHEADER},
    {"addtag", CAP_ADDTAG}, {"spamtest", CAP_SPAMTEST},
    {"spamtestplus", CAP_SPAMTESTPLUS | CAP_SPAMTEST}, {"virustest", CAP_VIRUSTEST},
    {"relational", CAP_RELATIONAL}, {"copy", CAP_COPY},
    {"comparator-i;ascii-numeric", CAP_NUMERIC}, {"comparator-i;octet", CAP_OCTET},
    {"comparator-i;ascii-casemap", CAP_CASEMAP},
};

#define SV_MAX_ARGS 16

typedef enum { ARG_TAG, ARG_NUM, ARG_STR } sv_arg_kind;

/* One argument as written. */
typedef struct {
    sv_arg_kind kind;
    int line;
    char *tag;       /* ARG_TAG, lowercased, no ':' */
    uint64_t num;    /* ARG_NUM */
    strvec sl;       /* ARG_STR: one string, or the strings of a list */
    bool list;       /* written as [ ... ] */
} sv_arg;

/* A command's or test's arguments, with the tests that follow them. */
typedef struct {
    sv_arg v[SV_MAX_ARGS];
    size_t n;
    sv_test **tests;
    size_t ntests;
    bool test_list;  /* the tests were written as ( ... ) */
} sv_args;

typedef struct {
    sv_lexer lx;
    char *err;
    size_t errlen;
    bool failed;
    unsigned caps;
    bool other_seen;  /* a command other than require was seen */
} sv_parser;

static void test_free(sv_test *t);

/* perr - record the first error at a line. */
static void perr(sv_parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void perr(sv_parser *p, int line, const char *fmt, ...)
{
    if (p->failed) return;
    p->failed = true;
    if (!p->err || !p->errlen) return;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "line %d: %s", line, msg);
}

/* next - advance to the next token; false (error recorded) on a lexical error. */
static bool next(sv_parser *p)
{
    if (sv_lex_next(&p->lx) == SV_T_ERR) {
        perr(p, p->lx.tok_line, "%s", p->lx.err);
        return false;
    }
    return true;
}

/* args_free - release the arguments and the tests after them. */
static void args_free(sv_args *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].tag);
        sv_free(&a->v[i].sl);
    }
    for (size_t i = 0; i < a->ntests; i++) test_free(a->tests[i]);
    free(a->tests);
    memset(a, 0, sizeof *a);
}

/* test_free - free a test and its children (depth bounded by the parser). */
static void test_free(sv_test *t)
{
    if (!t) return;
    sv_free(&t->names);
    sv_free(&t->keys);
    for (size_t i = 0; i < t->nkids; i++) test_free(t->kids[i]);
    free(t->kids);
    free(t);
}

/* cmd_free - free one command (its blocks too). */
static void cmd_free(sv_cmd *c)
{
    for (size_t i = 0; i < c->ncond; i++) test_free(c->conds[i]);
    if (c->blocks)
        for (size_t i = 0; i <= c->ncond; i++) sv_cmd_free_list(c->blocks[i]);
    free(c->conds);
    free(c->blocks);
    free(c->s1);
    free(c->s2);
    sv_free(&c->keys);
    free(c->subject);
    free(c->from);
    free(c->handle);
    sv_free(&c->addresses);
    free(c);
}

/* sv_cmd_free_list - free a command list and everything below it. */
void sv_cmd_free_list(sv_cmd *c)
{
    while (c) {
        sv_cmd *n = c->next;
        cmd_free(c);
        c = n;
    }
}

/* has_cap - whether the script required what a name needs; records an error if not. */
static bool has_cap(sv_parser *p, int line, unsigned bits, const char *what, const char *cap)
{
    if ((p->caps & bits) == bits) return true;
    perr(p, line, "%s needs require \"%s\"", what, cap);
    return false;
}

/* ---- the generic syntax ---- */

static sv_test *parse_test(sv_parser *p, int depth);

/* parse_string_list - "[" string *("," string) "]" after the "[" (the current token). */
static bool parse_string_list(sv_parser *p, sv_arg *a)
{
    if (!next(p)) return false;
    for (;;) {
        if (p->lx.tok != SV_T_STR) {
            perr(p, p->lx.tok_line, "a string list holds strings only");
            return false;
        }
        if (a->sl.n >= SIEVE_MAX_LIST) {
            perr(p, p->lx.tok_line, "string list too long (over %d strings)", SIEVE_MAX_LIST);
            return false;
        }
        sv_push_owned(&a->sl, p->lx.text);
        p->lx.text = NULL;
        if (!next(p)) return false;
        if (p->lx.tok == SV_T_RBRACK) return next(p);
        if (p->lx.tok != SV_T_COMMA) {
            perr(p, p->lx.tok_line, "expected \",\" or \"]\" in a string list");
            return false;
        }
        if (!next(p)) return false;
    }
}

/* parse_args - *argument [test / test-list], from the current token on. Only the names that
 * take tests (if, elsif, not, allof, anyof) read one, so "if true keep;" is a missing "{". */
static bool parse_args(sv_parser *p, sv_args *a, int depth, bool takes_tests)
{
    for (;;) {
        enum sv_tok t = p->lx.tok;
        if (t != SV_T_TAG && t != SV_T_NUM && t != SV_T_STR && t != SV_T_LBRACK) break;
        if (a->n >= SV_MAX_ARGS) {
            perr(p, p->lx.tok_line, "too many arguments");
            return false;
        }
        sv_arg *g = &a->v[a->n++];
        g->line = p->lx.tok_line;
        if (t == SV_T_TAG) {
            g->kind = ARG_TAG;
            g->tag = p->lx.text;
            p->lx.text = NULL;
        } else if (t == SV_T_NUM) {
            g->kind = ARG_NUM;
            g->num = p->lx.num;
        } else if (t == SV_T_STR) {
            g->kind = ARG_STR;
            sv_push_owned(&g->sl, p->lx.text);
            p->lx.text = NULL;
        } else {
            g->kind = ARG_STR;
            g->list = true;
            if (!parse_string_list(p, g)) return false;
            continue;
        }
        if (!next(p)) return false;
    }
    if (!takes_tests) return true;
    if (p->lx.tok == SV_T_IDENT) {
        sv_test *t = parse_test(p, depth + 1);
        if (!t) return false;
        a->tests = xmalloc(sizeof *a->tests);
        a->tests[0] = t;
        a->ntests = 1;
    } else if (p->lx.tok == SV_T_LPAREN) {
        a->test_list = true;
        if (!next(p)) return false;
        for (;;) {
            if (a->ntests >= SIEVE_MAX_LIST) {
                perr(p, p->lx.tok_line, "test list too long (over %d tests)", SIEVE_MAX_LIST);
                return false;
            }
            if (p->lx.tok != SV_T_IDENT) {
                perr(p, p->lx.tok_line, "expected a test");
                return false;
            }
            sv_test *t = parse_test(p, depth + 1);
            if (!t) return false;
            a->tests = xrealloc(a->tests, (a->ntests + 1) * sizeof *a->tests);
            a->tests[a->ntests++] = t;
            if (p->lx.tok == SV_T_RPAREN) break;
            if (p->lx.tok != SV_T_COMMA) {
                perr(p, p->lx.tok_line, "expected \",\" or \")\" in a test list");
                return false;
            }
            if (!next(p)) return false;
        }
        if (!next(p)) return false;
    }
    return true;
}

/* ---- argument helpers for the compile functions ---- */

/* take_strlist - the positional string or string list at args[*i] into out. */
static bool take_strlist(sv_parser *p, sv_args *a, size_t *i, int line, const char *what, strvec *out)
{
    if (*i >= a->n || a->v[*i].kind != ARG_STR) {
        perr(p, *i < a->n ? a->v[*i].line : line, "expected %s", what);
        return false;
    }
    *out = a->v[*i].sl;
    memset(&a->v[*i].sl, 0, sizeof a->v[*i].sl);
    (*i)++;
    return true;
}

/* take_string - the positional single string at args[*i]; caller frees. */
static char *take_string(sv_parser *p, sv_args *a, size_t *i, int line, const char *what)
{
    if (*i >= a->n || a->v[*i].kind != ARG_STR || a->v[*i].sl.n != 1 || a->v[*i].list) {
        perr(p, *i < a->n ? a->v[*i].line : line, "expected %s (one string)", what);
        return NULL;
    }
    char *s = a->v[*i].sl.v[0];
    a->v[*i].sl.v[0] = NULL;
    (*i)++;
    return s;
}

/* take_number - the number at args[*i]. */
static bool take_number(sv_parser *p, sv_args *a, size_t *i, int line, const char *what, uint64_t *out)
{
    if (*i >= a->n || a->v[*i].kind != ARG_NUM) {
        perr(p, *i < a->n ? a->v[*i].line : line, "expected %s (a number)", what);
        return false;
    }
    *out = a->v[(*i)++].num;
    return true;
}

/* at_end - no argument left after the positional ones. */
static bool at_end(sv_parser *p, sv_args *a, size_t i, const char *name)
{
    if (i < a->n) {
        perr(p, a->v[i].line, "too many arguments to %s", name);
        return false;
    }
    return true;
}

/* Which of the optional tagged groups were seen. */
typedef struct {
    bool cmp, mt, part;
} sv_seen;

/* take_match_tag - a comparator, match type or (when part is given) address part tag at
 * args[*i]. 1 taken, 0 not such a tag, -1 error. */
static int take_match_tag(sv_parser *p, sv_args *a, size_t *i, sv_matchspec *ms, enum sv_addrpart *part,
                          sv_seen *seen)
{
    sv_arg *g = &a->v[*i];
    const char *t = g->tag;
    if (strcmp(t, "comparator") == 0) {
        if (seen->cmp) return perr(p, g->line, "comparator given twice"), -1;
        seen->cmp = true;
        (*i)++;
        char *name = take_string(p, a, i, g->line, "a comparator name");
        if (!name) return -1;
        int ok = 1;
        if (str_ieq(name, "i;ascii-casemap")) ms->cmp = SV_CMP_CASEMAP;
        else if (str_ieq(name, "i;octet")) ms->cmp = SV_CMP_OCTET;
        else if (str_ieq(name, "i;ascii-numeric")) {
            ms->cmp = SV_CMP_NUMERIC;
            if (!has_cap(p, g->line, CAP_NUMERIC, "comparator i;ascii-numeric", "comparator-i;ascii-numeric"))
                ok = -1;
        } else {
            perr(p, g->line, "unknown comparator \"%.60s\"", name);
            ok = -1;
        }
        free(name);
        return ok;
    }
    static const struct { const char *tag; enum sv_mt mt; } mts[] = {
        {"is", SV_MT_IS}, {"contains", SV_MT_CONTAINS}, {"matches", SV_MT_MATCHES},
        {"count", SV_MT_COUNT}, {"value", SV_MT_VALUE},
    };
    for (size_t k = 0; k < SL_ARRAY_LEN(mts); k++) {
        if (strcmp(t, mts[k].tag) != 0) continue;
        if (seen->mt) return perr(p, g->line, "match type given twice"), -1;
        seen->mt = true;
        ms->mt = mts[k].mt;
        (*i)++;
        if (ms->mt == SV_MT_COUNT || ms->mt == SV_MT_VALUE) {
            if (!has_cap(p, g->line, CAP_RELATIONAL, t, "relational")) return -1;
            char *rel = take_string(p, a, i, g->line, "a relation (gt, ge, lt, le, eq, ne)");
            if (!rel) return -1;
            int r = sv_rel_parse(rel);
            free(rel);
            if (r < 0) return perr(p, g->line, "unknown relation after :%s", t), -1;
            ms->rel = (enum sv_rel)r;
        }
        return 1;
    }
    if (part) {
        static const struct { const char *tag; enum sv_addrpart part; } parts[] = {
            {"all", SV_AP_ALL}, {"localpart", SV_AP_LOCAL}, {"domain", SV_AP_DOMAIN},
        };
        for (size_t k = 0; k < SL_ARRAY_LEN(parts); k++) {
            if (strcmp(t, parts[k].tag) != 0) continue;
            if (seen->part) return perr(p, g->line, "address part given twice"), -1;
            seen->part = true;
            *part = parts[k].part;
            (*i)++;
            return 1;
        }
    }
    return 0;
}

/* check_matchspec - comparator and match type agree (i;ascii-numeric has no substrings). */
static bool check_matchspec(sv_parser *p, int line, const sv_matchspec *ms)
{
    if (ms->cmp == SV_CMP_NUMERIC && (ms->mt == SV_MT_CONTAINS || ms->mt == SV_MT_MATCHES)) {
        perr(p, line, "comparator i;ascii-numeric cannot do :contains or :matches");
        return false;
    }
    return true;
}

/* check_names - every string of names is a valid header field name. */
static bool check_names(sv_parser *p, int line, const strvec *names)
{
    for (size_t k = 0; k < names->n; k++) {
        if (!sv_field_name_ok(names->v[k])) {
            perr(p, line, "invalid header name \"%.60s\"", names->v[k]);
            return false;
        }
    }
    return true;
}

/* bad_tag - report an unexpected tag. */
static void bad_tag(sv_parser *p, const sv_arg *g, const char *name)
{
    perr(p, g->line, "unknown tag :%.40s for %s", g->tag, name);
}

/* ---- tests ---- */

/* compile_match_test - address, envelope, header, spamtest, virustest: tags then positionals. */
static bool compile_match_test(sv_parser *p, sv_test *t, const char *name, sv_args *a, int line)
{
    size_t i = 0;
    sv_seen seen = {0};
    bool addr = t->kind == SV_TEST_ADDRESS || t->kind == SV_TEST_ENVELOPE;
    while (i < a->n && a->v[i].kind == ARG_TAG) {
        if (t->kind == SV_TEST_SPAMTEST && strcmp(a->v[i].tag, "percent") == 0) {
            if (!has_cap(p, a->v[i].line, CAP_SPAMTESTPLUS, "spamtest :percent", "spamtestplus")) return false;
            t->percent = true;
            i++;
            continue;
        }
        int r = take_match_tag(p, a, &i, &t->ms, addr ? &t->part : NULL, &seen);
        if (r < 0) return false;
        if (r == 0) return bad_tag(p, &a->v[i], name), false;
    }
    if (!check_matchspec(p, line, &t->ms)) return false;
    if (t->kind == SV_TEST_SPAMTEST || t->kind == SV_TEST_VIRUSTEST) {
        char *v = take_string(p, a, &i, line, "a value");
        if (!v) return false;
        sv_push_owned(&t->keys, v);
        return at_end(p, a, i, name);
    }
    if (!take_strlist(p, a, &i, line, t->kind == SV_TEST_ENVELOPE ? "envelope parts" : "header names", &t->names))
        return false;
    if (!take_strlist(p, a, &i, line, "a key list", &t->keys)) return false;
    if (!at_end(p, a, i, name)) return false;
    if (t->kind == SV_TEST_ENVELOPE) {
        for (size_t k = 0; k < t->names.n; k++) {
            if (!str_ieq(t->names.v[k], "from") && !str_ieq(t->names.v[k], "to")) {
                perr(p, line, "unsupported envelope part \"%.40s\" (from and to are)", t->names.v[k]);
                return false;
            }
        }
        return true;
    }
    return check_names(p, line, &t->names);
}

/* compile_test - check a test's arguments and build its node (a's tests move into it). */
static bool compile_test(sv_parser *p, sv_test *t, const char *name, sv_args *a, int line)
{
    static const struct { const char *name; enum sv_test_kind kind; unsigned cap; const char *capname; } tests[] = {
        {"true", SV_TEST_TRUE, 0, NULL}, {"false", SV_TEST_FALSE, 0, NULL},
        {"not", SV_TEST_NOT, 0, NULL}, {"allof", SV_TEST_ALLOF, 0, NULL},
        {"anyof", SV_TEST_ANYOF, 0, NULL}, {"address", SV_TEST_ADDRESS, 0, NULL},
        {"envelope", SV_TEST_ENVELOPE, CAP_ENVELOPE, "envelope"},
        {"header", SV_TEST_HEADER, 0, NULL}, {"exists", SV_TEST_EXISTS, 0, NULL},
        {"size", SV_TEST_SIZE, 0, NULL}, {"spamtest", SV_TEST_SPAMTEST, CAP_SPAMTEST, "spamtest"},
        {"virustest", SV_TEST_VIRUSTEST, CAP_VIRUSTEST, "virustest"},
    };
    size_t k = 0;
    while (k < SL_ARRAY_LEN(tests) && strcmp(tests[k].name, name) != 0) k++;
    if (k == SL_ARRAY_LEN(tests)) {
        perr(p, line, "unknown test \"%.40s\"", name);
        return false;
    }
    t->kind = tests[k].kind;
    if (tests[k].cap && !has_cap(p, line, tests[k].cap, name, tests[k].capname)) return false;
    bool takes_tests = t->kind == SV_TEST_NOT || t->kind == SV_TEST_ALLOF || t->kind == SV_TEST_ANYOF;
    if (!takes_tests && a->ntests) {
        perr(p, line, "%s takes no test", name);
        return false;
    }
    switch (t->kind) {
    case SV_TEST_TRUE:
    case SV_TEST_FALSE:
        return at_end(p, a, 0, name);
    case SV_TEST_NOT:
    case SV_TEST_ALLOF:
    case SV_TEST_ANYOF:
        if (!at_end(p, a, 0, name)) return false;
        if (t->kind == SV_TEST_NOT ? (a->ntests != 1 || a->test_list) : (!a->test_list || !a->ntests)) {
            if (t->kind == SV_TEST_NOT) perr(p, line, "not takes one test");
            else perr(p, line, "%s takes a test list ( ... )", name);
            return false;
        }
        t->kids = a->tests;
        t->nkids = a->ntests;
        a->tests = NULL;
        a->ntests = 0;
        return true;
    case SV_TEST_EXISTS: {
        size_t i = 0;
        if (!take_strlist(p, a, &i, line, "header names", &t->names)) return false;
        return at_end(p, a, i, name) && check_names(p, line, &t->names);
    }
    case SV_TEST_SIZE: {
        size_t i = 0;
        if (i < a->n && a->v[i].kind == ARG_TAG && (strcmp(a->v[i].tag, "over") == 0 || strcmp(a->v[i].tag, "under") == 0)) {
            t->over = a->v[i].tag[0] == 'o';
            i++;
        } else {
            perr(p, line, "size needs :over or :under");
            return false;
        }
        return take_number(p, a, &i, line, "a size limit", &t->limit) && at_end(p, a, i, name);
    }
    default:
        return compile_match_test(p, t, name, a, line);
    }
}

/* parse_test - identifier arguments, compiled; NULL on error. depth counts the nesting. */
static sv_test *parse_test(sv_parser *p, int depth)
{
    int line = p->lx.tok_line;
    if (depth > SIEVE_MAX_DEPTH) {
        perr(p, line, "nesting too deep (over %d)", SIEVE_MAX_DEPTH);
        return NULL;
    }
    char *name = p->lx.text;
    p->lx.text = NULL;
    sv_args a;
    memset(&a, 0, sizeof a);
    sv_test *t = xcalloc(1, sizeof *t);
    bool takes = strcmp(name, "not") == 0 || strcmp(name, "allof") == 0 || strcmp(name, "anyof") == 0;
    bool ok = next(p) && parse_args(p, &a, depth, takes) && compile_test(p, t, name, &a, line);
    args_free(&a);
    free(name);
    if (!ok) {
        test_free(t);
        return NULL;
    }
    return t;
}

/* ---- commands ---- */

/* folder_ok - a folder name: non-empty, no control characters. */
static bool folder_ok(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if ((unsigned char)*s < 32 || *s == 127) return false;
    return true;
}

/* compile_copy_target - fileinto and redirect: [:copy] <string>. */
static bool compile_copy_target(sv_parser *p, sv_cmd *c, const char *name, sv_args *a)
{
    size_t i = 0;
    while (i < a->n && a->v[i].kind == ARG_TAG) {
        if (strcmp(a->v[i].tag, "copy") != 0 || c->copy) return bad_tag(p, &a->v[i], name), false;
        if (!has_cap(p, a->v[i].line, CAP_COPY, ":copy", "copy")) return false;
        c->copy = true;
        i++;
    }
    c->s1 = take_string(p, a, &i, c->line, c->kind == SV_CMD_FILEINTO ? "a folder" : "an address");
    if (!c->s1 || !at_end(p, a, i, name)) return false;
    if (c->kind == SV_CMD_FILEINTO ? !folder_ok(c->s1) : !sv_addr_ok(c->s1)) {
        if (c->kind == SV_CMD_FILEINTO) perr(p, c->line, "invalid folder name");
        else perr(p, c->line, "invalid redirect address \"%.80s\"", c->s1);
        return false;
    }
    return true;
}

/* compile_deleteheader - [:index N [:last]] [COMPARATOR] [MATCH-TYPE] name [value-patterns]. */
static bool compile_deleteheader(sv_parser *p, sv_cmd *c, sv_args *a)
{
    size_t i = 0;
    sv_seen seen = {0};
    while (i < a->n && a->v[i].kind == ARG_TAG) {
        if (strcmp(a->v[i].tag, "index") == 0 && !c->index) {
            uint64_t n;
            int line = a->v[i++].line;
            if (!take_number(p, a, &i, line, "an index", &n)) return false;
            if (n < 1 || n > 1000000) return perr(p, line, ":index must be 1 or more"), false;
            c->index = (unsigned)n;
            continue;
        }
        if (strcmp(a->v[i].tag, "last") == 0 && !c->last) {
            c->last = true;
            i++;
            continue;
        }
        int r = take_match_tag(p, a, &i, &c->ms, NULL, &seen);
        if (r < 0) return false;
        if (r == 0) return bad_tag(p, &a->v[i], "deleteheader"), false;
    }
    if (c->last && !c->index) return perr(p, c->line, ":last needs :index"), false;
    if (c->ms.mt == SV_MT_COUNT) return perr(p, c->line, "deleteheader cannot use :count"), false;
    if (!check_matchspec(p, c->line, &c->ms)) return false;
    c->s1 = take_string(p, a, &i, c->line, "a header name");
    if (!c->s1) return false;
    if (!sv_field_name_ok(c->s1)) return perr(p, c->line, "invalid header name \"%.60s\"", c->s1), false;
    if (i < a->n && !take_strlist(p, a, &i, c->line, "value patterns", &c->keys)) return false;
    return at_end(p, a, i, "deleteheader");
}

/* compile_vacation - [:days N] [:subject s] [:from s] [:addresses list] [:mime] [:handle s] reason. */
static bool compile_vacation(sv_parser *p, sv_cmd *c, sv_args *a)
{
    size_t i = 0;
    bool days_seen = false;
    c->days = SIEVE_VACATION_DAYS;
    while (i < a->n && a->v[i].kind == ARG_TAG) {
        sv_arg *g = &a->v[i++];
        char **slot = NULL;
        if (strcmp(g->tag, "days") == 0 && !days_seen) {
            uint64_t d;
            if (!take_number(p, a, &i, g->line, "a number of days", &d)) return false;
            days_seen = true;
            c->days = d < 1 ? 1 : d > SIEVE_VACATION_MAX_DAYS ? SIEVE_VACATION_MAX_DAYS : (unsigned)d;
            continue;
        }
        if (strcmp(g->tag, "mime") == 0 && !c->mime) {
            c->mime = true;
            continue;
        }
        if (strcmp(g->tag, "addresses") == 0 && !c->addresses.n) {
            if (!take_strlist(p, a, &i, g->line, "addresses", &c->addresses)) return false;
            continue;
        }
        if (strcmp(g->tag, "subject") == 0) slot = &c->subject;
        else if (strcmp(g->tag, "from") == 0) slot = &c->from;
        else if (strcmp(g->tag, "handle") == 0) slot = &c->handle;
        if (!slot || *slot) return bad_tag(p, g, "vacation"), false;
        *slot = take_string(p, a, &i, g->line, g->tag);
        if (!*slot) return false;
    }
    if (c->subject && strpbrk(c->subject, "\r\n")) return perr(p, c->line, "vacation :subject holds a line break"), false;
    if (c->from && !sv_addr_ok(c->from)) return perr(p, c->line, "invalid vacation :from address"), false;
    c->s1 = take_string(p, a, &i, c->line, "a reason");
    return c->s1 && at_end(p, a, i, "vacation");
}

/* header_value_ok - an addheader value fits: at most SIEVE_MAX_HEADER_VALUE octets, and no
 * word (a run without blanks or line breaks) so long that its line would pass 998 octets even
 * folded (RFC 5322 §2.1.1). */
static bool header_value_ok(const char *name, const char *v)
{
    size_t n = strlen(v), room = 998 - 2 - strlen(name), run = 0;
    if (n > SIEVE_MAX_HEADER_VALUE) return false;
    for (size_t i = 0; i < n; i++) {
        run = v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n' ? 0 : run + 1;
        if (run > room) return false;
    }
    return true;
}

/* compile_action - check an action's arguments and fill c. */
static bool compile_action(sv_parser *p, sv_cmd *c, const char *name, sv_args *a)
{
    static const struct { const char *name; enum sv_cmd_kind kind; unsigned cap; const char *capname; } acts[] = {
        {"stop", SV_CMD_STOP, 0, NULL}, {"keep", SV_CMD_KEEP, 0, NULL},
        {"discard", SV_CMD_DISCARD, 0, NULL}, {"fileinto", SV_CMD_FILEINTO, CAP_FILEINTO, "fileinto"},
        {"redirect", SV_CMD_REDIRECT, 0, NULL}, {"reject", SV_CMD_REJECT, CAP_REJECT, "reject"},
        {"ereject", SV_CMD_REJECT, CAP_EREJECT, "ereject"},
        {"addheader", SV_CMD_ADDHEADER, CAP_EDITHEADER, "editheader"},
        {"deleteheader", SV_CMD_DELETEHEADER, CAP_EDITHEADER, "editheader"},
        {"addtag", SV_CMD_ADDTAG, CAP_ADDTAG, "addtag"}, {"vacation", SV_CMD_VACATION, CAP_VACATION, "vacation"},
    };
    size_t k = 0;
    while (k < SL_ARRAY_LEN(acts) && strcmp(acts[k].name, name) != 0) k++;
    if (k == SL_ARRAY_LEN(acts)) {
        perr(p, c->line, "unknown command \"%.40s\"", name);
        return false;
    }
    c->kind = acts[k].kind;
    if (acts[k].cap && !has_cap(p, c->line, acts[k].cap, name, acts[k].capname)) return false;
    if (a->ntests) {
        perr(p, c->line, "%s takes no test", name);
        return false;
    }
    size_t i = 0;
    switch (c->kind) {
    case SV_CMD_STOP:
    case SV_CMD_KEEP:
    case SV_CMD_DISCARD:
        return at_end(p, a, 0, name);
    case SV_CMD_FILEINTO:
    case SV_CMD_REDIRECT:
        return compile_copy_target(p, c, name, a);
    case SV_CMD_REJECT:
        c->ereject = name[0] == 'e';
        c->s1 = take_string(p, a, &i, c->line, "a reason");
        return c->s1 && at_end(p, a, i, name);
    case SV_CMD_ADDHEADER:
        if (i < a->n && a->v[i].kind == ARG_TAG) {
            if (strcmp(a->v[i].tag, "last") != 0) return bad_tag(p, &a->v[i], name), false;
            c->last = true;
            i++;
        }
        if (!(c->s1 = take_string(p, a, &i, c->line, "a header name"))) return false;
        if (!(c->s2 = take_string(p, a, &i, c->line, "a header value"))) return false;
        if (!sv_field_name_ok(c->s1)) return perr(p, c->line, "invalid header name \"%.60s\"", c->s1), false;
        if (!header_value_ok(c->s1, c->s2))
            return perr(p, c->line, "header value too long (%u octets, or a word that cannot fold within 998)",
                        SIEVE_MAX_HEADER_VALUE), false;
        return at_end(p, a, i, name);
    case SV_CMD_DELETEHEADER:
        return compile_deleteheader(p, c, a);
    case SV_CMD_ADDTAG:
        if (!(c->s1 = take_string(p, a, &i, c->line, "a tag"))) return false;
        if (!*c->s1 || strlen(c->s1) > 256 || strpbrk(c->s1, "\r\n"))
            return perr(p, c->line, "addtag needs a one-line tag of at most 256 octets"), false;
        return at_end(p, a, i, name);
    case SV_CMD_VACATION:
        return compile_vacation(p, c, a);
    default:
        return false;
    }
}

/* compile_require - record the capabilities; unknown ones are errors (RFC 5228 §3.2). */
static bool compile_require(sv_parser *p, int line, sv_args *a, int depth)
{
    if (depth > 0 || p->other_seen) {
        perr(p, line, "require must come before any other command");
        return false;
    }
    size_t i = 0;
    strvec names = {0};
    if (a->ntests || !take_strlist(p, a, &i, line, "capability names", &names) || !at_end(p, a, i, "require")) {
        sv_free(&names);
        if (a->ntests) perr(p, line, "require takes no test");
        return false;
    }
    bool ok = true;
    for (size_t k = 0; k < names.n && ok; k++) {
        size_t j = 0;
        while (j < SL_ARRAY_LEN(caps) && !str_ieq(caps[j].name, names.v[k])) j++;
        if (j == SL_ARRAY_LEN(caps)) {
            perr(p, line, "unsupported extension \"%.60s\"", names.v[k]);
            ok = false;
        } else {
            p->caps |= caps[j].bits;
        }
    }
    sv_free(&names);
    return ok;
}

static sv_cmd *parse_block(sv_parser *p, int depth);

/* parse_braced - "{" commands "}" (the current token is the "{"); *out NULL for an empty one. */
static bool parse_braced(sv_parser *p, int depth, sv_cmd **out)
{
    *out = NULL;
    if (p->lx.tok != SV_T_LBRACE) {
        perr(p, p->lx.tok_line, "expected \"{\"");
        return false;
    }
    if (depth > SIEVE_MAX_DEPTH) {
        perr(p, p->lx.tok_line, "nesting too deep (over %d)", SIEVE_MAX_DEPTH);
        return false;
    }
    if (!next(p)) return false;
    *out = parse_block(p, depth);
    if (p->failed) return false;
    if (p->lx.tok != SV_T_RBRACE) {
        perr(p, p->lx.tok_line, "expected \"}\"");
        return false;
    }
    return next(p);
}

/* parse_if - if/elsif chain with an optional else; the current token follows "if". */
static bool parse_if(sv_parser *p, sv_cmd *c, int depth)
{
    const char *word = "if";
    for (;;) {
        sv_args a;
        memset(&a, 0, sizeof a);
        int line = p->lx.tok_line;
        bool ok = parse_args(p, &a, depth, true);
        if (ok && (a.n || a.ntests != 1 || a.test_list)) {
            perr(p, line, "%s takes one test", word);
            ok = false;
        }
        if (!ok) {
            args_free(&a);
            return false;
        }
        c->conds = xrealloc(c->conds, (c->ncond + 1) * sizeof *c->conds);
        c->blocks = xrealloc(c->blocks, (c->ncond + 2) * sizeof *c->blocks);
        c->conds[c->ncond] = a.tests[0];
        c->blocks[c->ncond] = NULL;
        c->blocks[c->ncond + 1] = NULL;
        c->ncond++;
        free(a.tests);
        if (!parse_braced(p, depth + 1, &c->blocks[c->ncond - 1])) return false;
        if (p->lx.tok != SV_T_IDENT) return true;
        if (strcmp(p->lx.text, "elsif") == 0) {
            word = "elsif";
            if (!next(p)) return false;
            continue;
        }
        if (strcmp(p->lx.text, "else") == 0) {
            c->has_else = true;
            if (!next(p)) return false;
            return parse_braced(p, depth + 1, &c->blocks[c->ncond]);
        }
        return true;
    }
}

/* parse_command - one command at the current identifier; NULL for require (or on error). */
static sv_cmd *parse_command(sv_parser *p, int depth)
{
    int line = p->lx.tok_line;
    char *name = p->lx.text;
    p->lx.text = NULL;
    sv_cmd *c = xcalloc(1, sizeof *c);
    c->line = line;
    bool ok = next(p);
    if (ok && strcmp(name, "if") == 0) {
        p->other_seen = true;
        c->kind = SV_CMD_IF;
        ok = parse_if(p, c, depth);
    } else if (ok && (strcmp(name, "elsif") == 0 || strcmp(name, "else") == 0)) {
        perr(p, line, "%s without if", name);
        ok = false;
    } else if (ok) {
        sv_args a;
        memset(&a, 0, sizeof a);
        ok = parse_args(p, &a, depth, false);
        if (ok && p->lx.tok != SV_T_SEMI) {
            perr(p, p->lx.tok_line, p->lx.tok == SV_T_LBRACE ? "%s takes no block" : "expected \";\" after %s",
                 name);
            ok = false;
        }
        if (ok && strcmp(name, "require") == 0) {
            ok = compile_require(p, line, &a, depth);
            cmd_free(c);
            c = NULL;
        } else if (ok) {
            p->other_seen = true;
            ok = compile_action(p, c, name, &a);
        }
        args_free(&a);
        ok = ok && next(p);
    }
    free(name);
    if (!ok) {
        if (c) cmd_free(c);
        return NULL;
    }
    return c;
}

/* parse_block - commands until "}" or the end; the list (NULL if empty or on error). */
static sv_cmd *parse_block(sv_parser *p, int depth)
{
    sv_cmd *first = NULL, **tail = &first;
    while (!p->failed && p->lx.tok != SV_T_EOF && p->lx.tok != SV_T_RBRACE) {
        if (p->lx.tok != SV_T_IDENT) {
            perr(p, p->lx.tok_line, "expected a command");
            break;
        }
        sv_cmd *c = parse_command(p, depth);
        if (c) {
            *tail = c;
            tail = &c->next;
        }
    }
    if (p->failed) {
        sv_cmd_free_list(first);
        return NULL;
    }
    return first;
}

/* sieve_parse - compile text (len bytes); NULL with "line N: message" in err on any error. */
sieve_script *sieve_parse(const char *text, size_t len, char *err, size_t errlen)
{
    sv_parser p;
    memset(&p, 0, sizeof p);
    p.err = err;
    p.errlen = errlen;
    if (err && errlen) err[0] = '\0';
    if (!text) text = "", len = 0;
    if (len > SIEVE_MAX_SCRIPT) {
        perr(&p, 1, "script too big (%zu octets, at most %u)", len, SIEVE_MAX_SCRIPT);
        return NULL;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *q = text; q < nul; q++) line += *q == '\n';
        perr(&p, line, "NUL byte in script");
        return NULL;
    }
    sv_lex_init(&p.lx, text, len);
    sv_cmd *first = NULL;
    if (next(&p)) {
        first = parse_block(&p, 0);
        if (!p.failed && p.lx.tok != SV_T_EOF) perr(&p, p.lx.tok_line, "unexpected \"}\"");
    }
    sv_lex_free(&p.lx);
    if (p.failed) {
        sv_cmd_free_list(first);
        return NULL;
    }
    sieve_script *s = xcalloc(1, sizeof *s);
    s->first = first;
    return s;
}

/* sieve_parse_url - compile a "data:[;base64],<script>" URL, or a plain script as it is. */
sieve_script *sieve_parse_url(const char *text, char *err, size_t errlen)
{
    if (!str_has_prefix_ci(text, "data:")) return sieve_parse(text, strlen(text), err, errlen);
    const char *comma = strchr(text, ',');
    if (!comma) {
        if (err && errlen) snprintf(err, errlen, "line 1: data: URL without \",\"");
        return NULL;
    }
    const char *body = comma + 1;
    size_t mlen = (size_t)(comma - (text + 5));
    bool base64 = mlen >= 7 && strncasecmp(comma - 7, ";base64", 7) == 0;
    if (!base64) return sieve_parse(body, strlen(body), err, errlen);
    strbuf sb;
    sb_init(&sb);
    sieve_script *s = NULL;
    if (b64_decode(body, strlen(body), &sb) < 0) {
        if (err && errlen) snprintf(err, errlen, "line 1: bad base64 in data: URL");
    } else {
        s = sieve_parse(sb.data ? sb.data : "", sb.len, err, errlen);
    }
    sb_free(&sb);
    return s;
}

/* sieve_free - release a compiled script; NULL is fine. */
void sieve_free(sieve_script *s)
{
    if (!s) return;
    sv_cmd_free_list(s->first);
    free(s);
}

/* trace_mapping.c - mapping tables: file format, every pattern and template metacharacter, flow
 * control and its limits, nested probes, input flags, the seed's PORT_ACCESS/BE_IP tables (through
 * mapping_probe and through cli_test_mapping), and every parse error with its file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/trace_mapping.h"
#include "conf/conf.h"
#include "rewrite/mapping.h"

/* The seed's tables, verbatim from the issue (with its comment line: PORT_ACCESS entries on lines 4-5). */
static const char *SEED =
    "! mappings\n"
    "PORT_ACCESS\n"
    "\n"
    "  *|*|2025|*|*   $C$|BE_IP;$2|$Y$E\n"
    "  *|*|2025|*|*   $N\n"
    "\n"
    "BE_IP\n"
    "\n"
    "  127.0.0.2   $Y\n"
    "  *           $N\n";

/* Tables exercising every metacharacter; each case below names the line that must decide. */
static const char *MAIN =
    "CASE\n"                                   /* 1 */
    "  *.example.com    host=$0\n"            /* 2 */
    "  a*b              star=[$0]\n"          /* 3 */
    "  x%z              pct=$0\n"             /* 4 */
    "  q$*q             quoted-star\n"        /* 5 */
    "  p$%p             quoted-pct\n"         /* 6 */
    "  sp$ ace          quoted-space\n"       /* 7 */
    "  *@*.%            $2$1$0\n"             /* 8 */
    "  lit              a$$b$ c\n"            /* 9 */
    "  n$D*             digits=$0\n"          /* 10 */
    "  h$A%$H*          alpha=$0,hex=$1\n"    /* 11 */
    "  c!d              bang\n"               /* 12 */
    "\n"                                       /* 13 */
    "IP\n"                                     /* 14 */
    "  $(10.0.0.0/8)|*               ten=$0,rest=$1\n"   /* 15 */
    "  $(2001:db8::/32)              v6=$0\n"            /* 16 */
    "  TCP|*|*|$(127.0.0.0/8)|*      lo=$2,port=$3\n"    /* 17 */
    "  $(192.0.2.1)                  single\n"           /* 18 */
    "\n"                                       /* 19 */
    "RESULT\n"                                 /* 20 */
    "  spam*    $NNo$ spam$ here\n"           /* 21 */
    "  fail*    $FFailed\n"                   /* 22 */
    "  busy*    $WTry$ later\n"               /* 23 */
    "  x5*      $N$X5.7.1|Go$ away\n"         /* 24 */
    "  x4*      $N$X4.7.0|Later\n"            /* 25 */
    "  relay*   $N$D30|Relaying$ not$ allowed\n"  /* 26 (the documentation's example) */
    "  order*   30|Relaying$ not$ allowed$D$N\n"  /* 27 (flags in any order) */
    "  slow*    -200|$D$Yok\n"                /* 28 */
    "  ok*      $Y\n"                          /* 29 */
    "  plain*   just$ text\n"                 /* 30 */
    "\n"                                       /* 31 */
    "FLOW\n"                                   /* 32 */
    "  a*       $Cb$0\n"                      /* 33 */
    "  b*       $Yfinal$0\n"                  /* 34 */
    "  e*       $Yone\n"                      /* 35 */
    "  e*       $Ytwo\n"                      /* 36 */
    "  r*       $R$0\n"                       /* 37 */
    "  *        $Ydone-$0\n"                  /* 38 */
    "\n"                                       /* 39 */
    "ONLYC\n"                                  /* 40 */
    "  *        $Cz$0$Y\n"                    /* 41 */
    "\n"                                       /* 42 */
    "LPASS\n"                                  /* 43 */
    "  b*       $Yb-$0\n"                     /* 44 */
    "  a*       $Lb$0\n"                      /* 45 */
    "\n"                                       /* 46 */
    "CPASS\n"                                  /* 47 */
    "  b*       $Yb-$0\n"                     /* 48 */
    "  a*       $Cb$0\n"                      /* 49 */
    "\n"                                       /* 50 */
    "LOOP\n"                                   /* 51 */
    "  *        $R$0\n"                       /* 52 */
    "\n"                                       /* 53 */
    "SELF\n"                                   /* 54 */
    "  *        $Y$|SELF;$0|\n"               /* 55 */
    "\n"                                       /* 56 */
    "TLS\n"                                    /* 57 */
    "  *        $C$:T$Ytls$E\n"               /* 58 */
    "  *        $Nno-tls\n"                   /* 59 */
    "\n"                                       /* 60 */
    "AUTH\n"                                   /* 61 */
    "  *        $C$;A$NAuth$ required$E\n"    /* 62 */
    "  *        $Yauthenticated\n"            /* 63 */
    "\n"                                       /* 64 */
    "NOC\n"                                    /* 65 */
    "  *        $:A$Y\n"                      /* 66 */
    "  *        $Nnever-reached\n"            /* 67 */
    "\n"                                       /* 68 */
    "INNER\n"                                  /* 69 */
    "  foo      $Ybar\n"                      /* 70 */
    "  no*      $Nrefused\n"                  /* 71 */
    "  plain    noflag\n"                     /* 72 */
    "  w*       $Ywrapped-$0\n"               /* 73 */
    "\n"                                       /* 74 */
    "OUTER\n"                                  /* 75 */
    "  x|*      $Y<$|INNER;$0|>\n"            /* 76 */
    "  n|*      $C$|INNER;$0|$Y$E\n"          /* 77 */
    "  d|*      $Y$|INNER;w$|INNER;$0||\n"    /* 78 */
    "  *        $Nfallback\n"                 /* 79 */
    "\n"                                       /* 80 */
    "CONT\n"                                   /* 81 */
    "  long*pat \\\n"                         /* 82 */
    "      $Ycontinued\n"                      /* 83 */
    "  after    $Yafter\n";                    /* 84 */

/* The kinds of result a case expects. */
enum want { W_NONE, W_ALLOW, W_REJECT, W_TEMP, W_MATCHED };

typedef struct {
    const char *table, *input, *flags;
    sl_result rc;
    enum want want;
    const char *output; /* NULL: not checked */
    int line;           /* deciding entry (0: none) */
} probe_case;

static const probe_case MAIN_CASES[] = {
    /* '*' and case-insensitive matching; the saved text keeps the input's case */
    {"CASE", "FOO.Example.COM", NULL, SL_OK, W_MATCHED, "host=FOO", 2},
    {"case", "ab", NULL, SL_OK, W_MATCHED, "star=[]", 3},
    {"CASE", "aXYZb", NULL, SL_OK, W_MATCHED, "star=[XYZ]", 3},
    /* '%' is exactly one character */
    {"CASE", "xyz", NULL, SL_OK, W_MATCHED, "pct=y", 4},
    {"CASE", "xz", NULL, SL_OK, W_NONE, "xz", 0},
    {"CASE", "xyyz", NULL, SL_OK, W_NONE, NULL, 0},
    /* '$' quoting in patterns */
    {"CASE", "q*q", NULL, SL_OK, W_MATCHED, "quoted-star", 5},
    {"CASE", "qzq", NULL, SL_OK, W_NONE, NULL, 0},
    {"CASE", "p%p", NULL, SL_OK, W_MATCHED, "quoted-pct", 6},
    {"CASE", "pxp", NULL, SL_OK, W_NONE, NULL, 0},
    {"CASE", "sp ace", NULL, SL_OK, W_MATCHED, "quoted-space", 7},
    /* numbering: $0 first wildcard, left to right */
    {"CASE", "user@host.x", NULL, SL_OK, W_MATCHED, "xhostuser", 8},
    /* template quoting */
    {"CASE", "lit", NULL, SL_OK, W_MATCHED, "a$b c", 9},
    /* glob classes */
    {"CASE", "n123", NULL, SL_OK, W_MATCHED, "digits=123", 10},
    {"CASE", "n12a", NULL, SL_OK, W_NONE, NULL, 0},
    {"CASE", "hqBEEF", NULL, SL_OK, W_MATCHED, "alpha=q,hex=BEEF", 11},
    {"CASE", "h1BEEF", NULL, SL_OK, W_NONE, NULL, 0},
    /* '!' inside an entry is text (bang paths), not a comment */
    {"CASE", "C!D", NULL, SL_OK, W_MATCHED, "bang", 12},
    /* IP patterns save the address */
    {"IP", "10.1.2.3|x", NULL, SL_OK, W_MATCHED, "ten=10.1.2.3,rest=x", 15},
    {"IP", "11.1.2.3|x", NULL, SL_OK, W_NONE, NULL, 0},
    {"IP", "2001:DB8::1", NULL, SL_OK, W_MATCHED, "v6=2001:DB8::1", 16},
    {"IP", "2001:db9::1", NULL, SL_OK, W_NONE, NULL, 0},
    {"IP", "TCP|127.0.0.3|2025|127.0.0.9|4100", NULL, SL_OK, W_MATCHED, "lo=127.0.0.9,port=4100", 17},
    {"IP", "TCP|127.0.0.3|2025|128.0.0.9|4100", NULL, SL_OK, W_NONE, NULL, 0},
    {"IP", "192.0.2.1", NULL, SL_OK, W_MATCHED, "single", 18},
    {"IP", "192.0.2.2", NULL, SL_OK, W_NONE, NULL, 0},
    /* results */
    {"RESULT", "spam.test", NULL, SL_OK, W_REJECT, "No spam here", 21},
    {"RESULT", "fail", NULL, SL_OK, W_REJECT, "Failed", 22},
    {"RESULT", "busy", NULL, SL_OK, W_TEMP, "Try later", 23},
    {"RESULT", "x5", NULL, SL_OK, W_REJECT, "Go away", 24},
    {"RESULT", "x4", NULL, SL_OK, W_TEMP, "Later", 25},
    {"RESULT", "relay", NULL, SL_OK, W_REJECT, "Relaying not allowed", 26},
    {"RESULT", "order", NULL, SL_OK, W_REJECT, "Relaying not allowed", 27},
    {"RESULT", "slow", NULL, SL_OK, W_ALLOW, "ok", 28},
    {"RESULT", "ok", NULL, SL_OK, W_ALLOW, "", 29},
    {"RESULT", "plain", NULL, SL_OK, W_MATCHED, "just text", 30},
    {"RESULT", "other", NULL, SL_OK, W_NONE, "other", 0},
    /* $C continues with the output as input; $E (the default) ends at the first match */
    {"FLOW", "ax", NULL, SL_OK, W_ALLOW, "finalx", 34},
    {"FLOW", "ex", NULL, SL_OK, W_ALLOW, "one", 35},
    /* $R restarts at the top: "rrxy" -> "rxy" -> "xy" -> "done-xy" */
    {"FLOW", "rrxy", NULL, SL_OK, W_ALLOW, "done-xy", 38},
    /* a $C entry that runs off the end of the table is the result */
    {"ONLYC", "x", NULL, SL_OK, W_ALLOW, "zx", 41},
    /* $L: one more pass from the top; with $C no second pass */
    {"LPASS", "ax", NULL, SL_OK, W_ALLOW, "b-x", 44},
    {"CPASS", "ax", NULL, SL_OK, W_MATCHED, "bx", 49},
    /* pass and nesting limits: a temporary failure, never a match */
    {"LOOP", "x", NULL, SL_TEMP, W_NONE, NULL, 0},
    {"SELF", "x", NULL, SL_TEMP, W_NONE, NULL, 0},
    /* input flags */
    {"TLS", "x", "T", SL_OK, W_ALLOW, "tls", 58},
    {"TLS", "x", "t", SL_OK, W_ALLOW, "tls", 58},
    {"TLS", "x", "AE", SL_OK, W_REJECT, "no-tls", 59},
    {"TLS", "x", NULL, SL_OK, W_REJECT, "no-tls", 59},
    {"AUTH", "x", "", SL_OK, W_REJECT, "Auth required", 62},
    {"AUTH", "x", "TAE", SL_OK, W_ALLOW, "authenticated", 63},
    /* a failure with no $C to its left ends the mapping (Messaging Server semantics) */
    {"NOC", "x", "A", SL_OK, W_ALLOW, "", 66},
    {"NOC", "x", "", SL_OK, W_NONE, "x", 0},
    /* nested probes: output substituted; failure (no match, $N, no $Y) fails the entry */
    {"OUTER", "x|foo", NULL, SL_OK, W_ALLOW, "<bar>", 76},
    {"OUTER", "x|nomatch-at-all", NULL, SL_OK, W_NONE, NULL, 0},
    {"OUTER", "n|foo", NULL, SL_OK, W_ALLOW, "bar", 77},
    {"OUTER", "n|no", NULL, SL_OK, W_REJECT, "fallback", 79},
    {"OUTER", "n|plain", NULL, SL_OK, W_REJECT, "fallback", 79},
    {"OUTER", "n|zzz", NULL, SL_OK, W_REJECT, "fallback", 79},
    {"OUTER", "d|foo", NULL, SL_OK, W_ALLOW, "wrapped-bar", 78},
    /* '\' continuation: the entry keeps the line it starts on */
    {"CONT", "longXpat", NULL, SL_OK, W_ALLOW, "continued", 82},
    {"CONT", "after", NULL, SL_OK, W_ALLOW, "after", 84},
    /* a table that does not exist is no match */
    {"NOSUCH", "x", NULL, SL_OK, W_NONE, "x", 0},
};

static enum want want_of(const mapping_result *r)
{
    if (!r->matched) return W_NONE;
    if (r->temp) return W_TEMP;
    if (r->no_flag) return W_REJECT;
    if (r->ok_flag) return W_ALLOW;
    return W_MATCHED;
}

static sl_mappings *parse_ok(const char *file, const char *text, const char *confdir)
{
    conf_errors errs = {0};
    sl_mappings *m = mappings_parse(file, text, confdir, &errs);
    for (size_t i = 0; i < errs.msgs.n; i++) print_error("unexpected: %s\n", errs.msgs.v[i]);
    assert_int_equal(errs.msgs.n, 0);
    assert_non_null(m);
    sv_free(&errs.msgs);
    return m;
}

static void dump_trace(const mapping_result *r)
{
    for (size_t i = 0; i < r->trace.n; i++) print_message("    %s\n", r->trace.v[i]);
}

static void run_cases(const char *text, const probe_case *cases, size_t n)
{
    sl_mappings *m = parse_ok("m", text, ".");
    for (size_t i = 0; i < n; i++) {
        const probe_case *c = &cases[i];
        mapping_result r;
        sl_result rc = mapping_probe(m, c->table, c->input, c->flags, &r);
        bool ok = rc == c->rc && want_of(&r) == c->want && (!c->output || !strcmp(r.output, c->output)) &&
                  r.entry_line == c->line && r.trace.n > 0;
        if (!ok) {
            print_error("case %zu: %s '%s' flags '%s': rc %d want %d got %d, output '%s' want '%s', line %d want %d\n", i,
                        c->table, c->input, c->flags ? c->flags : "", rc, c->want, want_of(&r), r.output,
                        c->output ? c->output : "(any)", r.entry_line, c->line);
            dump_trace(&r);
        }
        assert_true(ok);
        if (c->line) assert_string_equal(r.entry_file, "m");
        mapping_result_free(&r);
    }
    mappings_free(m);
}

static void test_metacharacters(void **state)
{
    (void)state;
    run_cases(MAIN, MAIN_CASES, SL_ARRAY_LEN(MAIN_CASES));
}

/* The seed verbatim: 127.0.0.2 allowed by entry 1; 127.0.0.9 fails BE_IP ($N), so entry 2 rejects. */
static void test_seed_tables(void **state)
{
    (void)state;
    static const probe_case cases[] = {
        {"PORT_ACCESS", "TCP|127.0.0.3|2025|127.0.0.2|41000", NULL, SL_OK, W_ALLOW, "", 4},
        {"PORT_ACCESS", "TCP|127.0.0.3|2025|127.0.0.9|41000", NULL, SL_OK, W_REJECT, "", 5},
        {"PORT_ACCESS", "TCP|::1|2025|::1|41000", NULL, SL_OK, W_REJECT, "", 5},
        {"PORT_ACCESS", "TCP|127.0.0.3|25|127.0.0.9|41000", NULL, SL_OK, W_NONE, NULL, 0},
        {"BE_IP", "127.0.0.2", NULL, SL_OK, W_ALLOW, "", 9},
        {"BE_IP", "127.0.0.9", NULL, SL_OK, W_REJECT, "", 10},
    };
    run_cases(SEED, cases, SL_ARRAY_LEN(cases));
}

/* Saved-wildcard numbering of the PORT_ACCESS probe, as doc/mappings.md states it. */
static void test_port_access_numbering(void **state)
{
    (void)state;
    sl_mappings *m = parse_ok("m", "PORT_ACCESS\n  *|*|2025|*|*  $Y$0/$1/$2/$3\n", ".");
    mapping_result r;
    assert_int_equal(mapping_probe(m, "PORT_ACCESS", "TCP|192.0.2.1|2025|198.51.100.7|5555", "", &r), SL_OK);
    assert_string_equal(r.output, "TCP/192.0.2.1/198.51.100.7/5555");
    mapping_result_free(&r);
    mappings_free(m);
}

/* The trace names every entry tried, with its file:line and pattern, and the nested probe. */
static void test_trace(void **state)
{
    (void)state;
    sl_mappings *m = parse_ok("mappings", SEED, ".");
    mapping_result r;
    assert_int_equal(mapping_probe(m, "PORT_ACCESS", "TCP|127.0.0.3|2025|127.0.0.9|41000", NULL, &r), SL_OK);
    const char *want[] = {"mappings:4: '*|*|2025|*|*' matches $0='TCP' $1='127.0.0.3' $2='127.0.0.9' $3='41000'",
                          "BE_IP: probe '127.0.0.9'", "mappings:9: '127.0.0.2' does not match",
                          "mappings:10: '*' matches", "failed (rejected)", "mappings:5: '*|*|2025|*|*' matches"};
    size_t at = 0;
    for (size_t i = 0; i < r.trace.n && at < SL_ARRAY_LEN(want); i++)
        if (strstr(r.trace.v[i], want[at])) at++;
    if (at != SL_ARRAY_LEN(want)) dump_trace(&r);
    assert_int_equal(at, SL_ARRAY_LEN(want));
    assert_string_equal(r.entry_pattern, "*|*|2025|*|*");
    mapping_result_free(&r);
    mappings_free(m);
}

/* $D in hundredths of a second (negative: MAIL/RCPT only) and $X status codes. */
static void test_delay_and_status(void **state)
{
    (void)state;
    sl_mappings *m = parse_ok("m", MAIN, ".");
    mapping_result r;
    assert_int_equal(mapping_probe(m, "RESULT", "relay", NULL, &r), SL_OK);
    assert_int_equal(r.delay_ms, 300);
    assert_int_equal(r.delay_secs, 1);
    assert_false(r.delay_addr_only);
    assert_null(r.status_code);
    mapping_result_free(&r);
    assert_int_equal(mapping_probe(m, "RESULT", "slow", NULL, &r), SL_OK);
    assert_int_equal(r.delay_ms, 2000);
    assert_int_equal(r.delay_secs, 2);
    assert_true(r.delay_addr_only);
    mapping_result_free(&r);
    assert_int_equal(mapping_probe(m, "RESULT", "x4", NULL, &r), SL_OK);
    assert_string_equal(r.status_code, "4.7.0");
    assert_true(r.temp && r.no_flag);
    mapping_result_free(&r);
    assert_int_equal(mapping_probe(m, "RESULT", "x5", NULL, &r), SL_OK);
    assert_string_equal(r.status_code, "5.7.1");
    assert_false(r.temp);
    assert_int_equal(r.delay_ms, 0);
    mapping_result_free(&r);
    assert_int_equal(mapping_probe(m, "NOC", "x", "", &r), SL_OK);
    assert_true(r.failed);
    assert_false(r.matched);
    mapping_result_free(&r);
    assert_int_equal(mapping_probe(NULL, "X", "x", "", &r), SL_ERR);
    mapping_result_free(&r);
    mappings_free(m);
}

/* Hostile input against many stars stays fast (the failure memo keeps matching polynomial). */
static void test_no_exponential_backtracking(void **state)
{
    (void)state;
    sl_mappings *m = parse_ok("m", "T\n  *a*a*a*a*a*a*a*a*a*a*b  $Y\n", ".");
    char input[4001];
    memset(input, 'a', sizeof input - 1);
    input[sizeof input - 1] = '\0';
    mapping_result r;
    assert_int_equal(mapping_probe(m, "T", input, NULL, &r), SL_OK);
    assert_false(r.matched);
    mapping_result_free(&r);
    mappings_free(m);
}

/* test_output_limit - a table that multiplies its input on each pass ($R restarts, $L extra
 * passes) fails temporarily at MAPPING_MAX_OUTPUT instead of doubling 64 times (found by
 * fuzz/fuzz_mapping.c: the probe ran out of time and memory). */
static void test_output_limit(void **state)
{
    (void)state;
    sl_mappings *m = parse_ok("m",
                              "DOUBLE\n  *  $0$0$R\n"
                              "LDOUBLE\n  *  $0$0$L\n"
                              "SHORT\n  xxxx*  done$Y$E\n  *  $0$0$R\n"
                              "BIG\n  *  $Y$0\n",
                              ".");
    static const char *const growing[] = {"DOUBLE", "LDOUBLE"};
    for (size_t i = 0; i < SL_ARRAY_LEN(growing); i++) {
        mapping_result r;
        assert_int_equal(mapping_probe(m, growing[i], "x", NULL, &r), SL_TEMP);
        assert_false(r.matched);
        bool said = false;
        for (size_t k = 0; k < r.trace.n; k++) said |= strstr(r.trace.v[k], "the probe fails temporarily") != NULL;
        assert_true(said);
        mapping_result_free(&r);
    }
    /* growth that stops in time is fine: x -> xx -> xxxx, which the first entry takes */
    mapping_result r;
    assert_int_equal(mapping_probe(m, "SHORT", "x", NULL, &r), SL_OK);
    assert_true(r.matched && r.ok_flag);
    assert_string_equal(r.output, "done");
    mapping_result_free(&r);
    /* an output of exactly the limit passes, one octet more does not */
    char *in = xmalloc(MAPPING_MAX_OUTPUT + 2);
    memset(in, 'a', MAPPING_MAX_OUTPUT + 1);
    in[MAPPING_MAX_OUTPUT] = '\0';
    assert_int_equal(mapping_probe(m, "BIG", in, NULL, &r), SL_OK);
    assert_true(r.matched && r.ok_flag);
    mapping_result_free(&r);
    in[MAPPING_MAX_OUTPUT] = 'a';
    in[MAPPING_MAX_OUTPUT + 1] = '\0';
    assert_int_equal(mapping_probe(m, "BIG", in, NULL, &r), SL_TEMP);
    assert_false(r.matched);
    mapping_result_free(&r);
    free(in);
    mappings_free(m);
}

/* ---- files: includes, and errors ---- */

static char *make_dir(void)
{
    char tmpl[] = "/tmp/sluice-maptest-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return strdup(tmpl);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    free(path);
}

static void remove_dir(char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(dir);
}

static void test_include(void **state)
{
    (void)state;
    char *dir = make_dir();
    write_file(dir, "be_ip", "BE_IP\n\n  127.0.0.2   $Y\n  *   $N\n");
    write_file(dir, "more", "  extra  $Yfrom-include\n");
    sl_mappings *m = parse_ok("mappings", "<be_ip\nT\n<more\n  other  $Yhere\n", dir);
    assert_int_equal(mappings_table_count(m), 2);
    assert_true(mappings_has_table(m, "be_ip"));
    mapping_result r;
    assert_int_equal(mapping_probe(m, "BE_IP", "127.0.0.2", NULL, &r), SL_OK);
    assert_true(r.ok_flag);
    char *want = xasprintf("%s/be_ip", dir);
    assert_string_equal(r.entry_file, want);
    assert_int_equal(r.entry_line, 3);
    free(want);
    mapping_result_free(&r);
    /* the included entries belong to the table open at the include */
    assert_int_equal(mapping_probe(m, "T", "extra", NULL, &r), SL_OK);
    assert_string_equal(r.output, "from-include");
    mapping_result_free(&r);
    assert_int_equal(mapping_probe(m, "T", "other", NULL, &r), SL_OK);
    assert_string_equal(r.output, "here");
    assert_int_equal(r.entry_line, 4);
    mapping_result_free(&r);
    mappings_free(m);
    remove_dir(dir);
}

typedef struct {
    const char *text;
    const char *error; /* expected "m:LINE: message" prefix text */
} error_case;

static const error_case ERROR_CASES[] = {
    {"  a  $Y\n", "m:1: entry 'a' outside a table"},
    {"! c\nT\n\n  a\n", "m:4: pattern 'a' without a template"},
    {"T\n  a  $Q\n", "m:2: unknown metacharacter '$Q' in the template"},
    {"T\n  a  $Yok$\n", "m:2: template ends with a lone '$'"},
    {"T\n  a$\n", "m:2: pattern 'a$' without a template"},
    {"T\n  a  b  c\n", "m:2: text after the template: 'c'"},
    {"T\n  $(10.0.0.0/33)  $Y\n", "m:2: bad IP pattern '$(10.0.0.0/33)'"},
    {"T\n  $(10.0.0.300)  $Y\n", "m:2: bad IP pattern '$(10.0.0.300)'"},
    {"T\n  $(2001:db8::/129)  $Y\n", "m:2: bad IP pattern"},
    {"T\n  $(10.0.0.0/8  $Y\n", "m:2: bad IP pattern"},
    {"T\n  $A  $Y\n", "m:2: '$A' in a pattern must be followed by '*' or '%'"},
    {"T\n  $_*  $Y\n", "m:2: unsupported metacharacter '$_' in the pattern"},
    {"T\n  $0*  $Y\n", "m:2: unsupported metacharacter '$0' in the pattern"},
    {"T\n  a*  $C$|T;$0\n", "m:2: unterminated '$|T;$0'"},
    {"T\n  a*  $|T;$|T;x|\n", "m:2: unterminated"},
    {"T\n  a*  $|T|\n", "m:2: '$|T|': expected $|TABLE;argument|"},
    {"T\n  a*  $|;x|\n", "m:2: '$|;x|': expected $|TABLE;argument|"},
    {"T\n  a*  $|NOPE;$0|\n", "m:2: $|NOPE;...|: no table NOPE in the mappings file"},
    {"T\n  a*  $|T;$Y|\n", "m:2: '$Y' in a $|...| argument"},
    {"T\n  a*b%  $2\n", "m:2: '$2': the pattern saves only 2 wildcards"},
    {"T\n  ab  $0\n", "m:2: '$0': the pattern saves only 0 wildcards"},
    {"T\n  a  $:\n", "m:2: '$:' needs a flag letter"},
    {"T\n  a  $;1\n", "m:2: '$;' needs a flag letter"},
    {"T\n  a  $Y\n\nU\n\nt\n  b  $Y\n", "m:6: duplicate table 't' (first defined at m:1)"},
    {"T\na  $Y\n", "m:2: 'a  $Y': a line in column 1 names a table"},
    {"T$\n", "m:1: bad table name 'T$'"},
    {"T\n<nosuch-file\n", "m:2: cannot read include file"},
    {"T\n<\n", "m:2: '<' without a file name"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(ERROR_CASES); i++) {
        conf_errors errs = {0};
        sl_mappings *m = mappings_parse("m", ERROR_CASES[i].text, "/nonexistent-dir", &errs);
        bool found = false;
        for (size_t j = 0; j < errs.msgs.n; j++)
            if (strncmp(errs.msgs.v[j], ERROR_CASES[i].error, strlen(ERROR_CASES[i].error)) == 0) found = true;
        if (!found || m) {
            print_error("case %zu: want '%s', got %zu errors:\n", i, ERROR_CASES[i].error, errs.msgs.n);
            for (size_t j = 0; j < errs.msgs.n; j++) print_error("  %s\n", errs.msgs.v[j]);
        }
        assert_null(m);
        assert_true(found);
        sv_free(&errs.msgs);
    }
}

/* Every error of a file is reported, not only the first. */
static void test_errors_all_reported(void **state)
{
    (void)state;
    conf_errors errs = {0};
    sl_mappings *m = mappings_parse("m", "  a $Y\nT\n  b\n  c  $Q\n  $(1.2.3/8)  $Y\n", ".", &errs);
    assert_null(m);
    assert_int_equal(errs.msgs.n, 4);
    sv_free(&errs.msgs);
}

static void test_include_errors(void **state)
{
    (void)state;
    char *dir = make_dir();
    write_file(dir, "self", "<self\n");
    conf_errors errs = {0};
    assert_null(mappings_parse("m", "T\n<self\n", dir, &errs));
    assert_int_equal(errs.msgs.n, 1);
    char *want = xasprintf("%s/self:1: include 'self' too deep", dir);
    assert_true(strncmp(errs.msgs.v[0], want, strlen(want)) == 0);
    free(want);
    sv_free(&errs.msgs);
    /* an error inside an included file names that file and its line */
    write_file(dir, "bad", "T\n\n  x  $Q\n");
    assert_null(mappings_parse("m", "<bad\n", dir, &errs));
    want = xasprintf("%s/bad:3: unknown metacharacter", dir);
    assert_int_equal(errs.msgs.n, 1);
    assert_true(strncmp(errs.msgs.v[0], want, strlen(want)) == 0);
    free(want);
    sv_free(&errs.msgs);
    remove_dir(dir);
}

/* ---- cli_test_mapping ---- */

/* run_cli - call cli_test_mapping with stdout and stderr captured into *out. */
static int run_cli(const char *confdir, char **out, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) argv[i] = va_arg(ap, char *);
    va_end(ap);
    char path[] = "/tmp/sluice-mapcli-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(fd, 1);
    dup2(fd, 2);
    int rc = cli_test_mapping(argc, argv, confdir);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    lseek(fd, 0, SEEK_SET);
    strbuf sb;
    sb_init(&sb);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) sb_append(&sb, buf, (size_t)n);
    close(fd);
    unlink(path);
    *out = sb_steal(&sb);
    return rc;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) print_error("missing '%s' in:\n%s\n", needle, hay);
    assert_non_null(strstr(hay, needle));
}

static void test_cli(void **state)
{
    (void)state;
    char *dir = make_dir();
    write_file(dir, "mappings", SEED);
    char *out, *want;
    assert_int_equal(run_cli(dir, &out, 2, "PORT_ACCESS", "TCP|127.0.0.3|2025|127.0.0.2|41000"), 0);
    assert_contains(out, "result       = allow\n");
    want = xasprintf("entry        = %s/mappings:4 '*|*|2025|*|*'\n", dir);
    assert_contains(out, want);
    free(want);
    assert_contains(out, "flags        = allow($Y)\n");
    free(out);

    assert_int_equal(run_cli(dir, &out, 2, "PORT_ACCESS", "TCP|127.0.0.3|2025|127.0.0.9|41000"), 0);
    assert_contains(out, "result       = reject\n");
    want = xasprintf("entry        = %s/mappings:5 '*|*|2025|*|*'\n", dir);
    assert_contains(out, want);
    free(want);
    want = xasprintf("%s/mappings:4: '*|*|2025|*|*' matches", dir);
    assert_contains(out, want);
    free(want);
    assert_contains(out, "$|BE_IP;127.0.0.9| failed (rejected)");
    free(out);

    assert_int_equal(run_cli(dir, &out, 2, "PORT_ACCESS", "TCP|127.0.0.3|25|127.0.0.9|41000"), 1);
    assert_contains(out, "result       = no match\n");
    assert_contains(out, "entry        = (none)\n");
    free(out);

    /* --flags, and -C given after the arguments overrides the directory */
    write_file(dir, "mappings", "TLS\n  *  $C$:T$Ytls$E\n  *  $W4.7.0|$XTLS$ required\n");
    assert_int_equal(run_cli("/nonexistent", &out, 6, "TLS", "x", "--flags", "TE", "-C", dir), 0);
    assert_contains(out, "(input flags: TE)");
    assert_contains(out, "output       = tls\n");
    free(out);
    assert_int_equal(run_cli(dir, &out, 3, "TLS", "x", "--flags=E"), 0);
    assert_contains(out, "result       = temporary reject\n");
    assert_contains(out, "output       = TLS required\n");
    assert_contains(out, "status code  = 4.7.0\n");
    free(out);

    /* usage and configuration errors exit 2 */
    assert_int_equal(run_cli(dir, &out, 1, "TLS"), 2);
    free(out);
    assert_int_equal(run_cli(dir, &out, 3, "TLS", "x", "y"), 2);
    free(out);
    assert_int_equal(run_cli(dir, &out, 3, "TLS", "x", "--flags"), 2);
    free(out);
    assert_int_equal(run_cli(dir, &out, 4, "TLS", "x", "--flags", "T1"), 2);
    free(out);
    assert_int_equal(run_cli("/nonexistent-sluice-dir", &out, 2, "TLS", "x"), 2);
    assert_contains(out, "/nonexistent-sluice-dir/mappings: cannot read");
    free(out);
    write_file(dir, "mappings", "T\n  a  $Q\n");
    assert_int_equal(run_cli(dir, &out, 2, "T", "a"), 2);
    want = xasprintf("%s/mappings:2: unknown metacharacter '$Q'", dir);
    assert_contains(out, want);
    free(want);
    free(out);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metacharacters),
        cmocka_unit_test(test_seed_tables),
        cmocka_unit_test(test_port_access_numbering),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_delay_and_status),
        cmocka_unit_test(test_no_exponential_backtracking),
        cmocka_unit_test(test_output_limit),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_all_reported),
        cmocka_unit_test(test_include_errors),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

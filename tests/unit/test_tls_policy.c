/*
 * test_tls_policy.c - unit tests for src/core/tls_policy.c: parsing the outbound TLS policy
 * table (good entries, every kind of malformed line) and looking destinations up in it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/tls_policy.h"

typedef struct {
    int lines[16];
    char msgs[16][256];
    int n;
} errs_t;

/* on_err - collect the parser's complaints. */
static void on_err(void *arg, int line, const char *msg)
{
    errs_t *e = arg;
    if (e->n < 16) {
        e->lines[e->n] = line;
        snprintf(e->msgs[e->n], sizeof e->msgs[0], "%s", msg);
    }
    e->n++;
}

/* test_parse_good - every level, comments, blank lines, case and match= names. */
static void test_parse_good(void **state)
{
    (void)state;
    const char *text = "# outbound TLS\n"
                       "\n"
                       "Example.COM   verify  match=MX1.example.net:.example.net\n"
                       ".example.org\tencrypt   # below example.org\n"
                       "plain.test none\n"
                       "*  may\n"
                       "d.test dane\n"
                       "e.test dane-only\n"
                       "s.test sts\n"
                       "abs.test. verify";
    errs_t e = {0};
    tls_policy_table *t = tls_policy_parse(text, on_err, &e);
    assert_int_equal(e.n, 0);
    assert_int_equal(t->n, 8);
    assert_string_equal(t->v[0].pattern, "example.com");
    assert_int_equal(t->v[0].level, TLS_LEVEL_VERIFY);
    assert_int_equal(t->v[0].match.n, 2);
    assert_string_equal(t->v[0].match.v[0], "mx1.example.net");
    assert_string_equal(t->v[0].match.v[1], ".example.net");
    assert_int_equal(t->v[1].level, TLS_LEVEL_ENCRYPT);
    assert_int_equal(t->v[2].level, TLS_LEVEL_NONE);
    assert_int_equal(t->v[3].level, TLS_LEVEL_MAY);
    assert_int_equal(t->v[4].level, TLS_LEVEL_DANE);
    assert_int_equal(t->v[5].level, TLS_LEVEL_DANE_ONLY);
    assert_int_equal(t->v[6].level, TLS_LEVEL_STS);
    assert_string_equal(t->v[7].pattern, "abs.test");
    assert_int_equal(t->v[0].line, 3);
    assert_int_equal(t->v[7].line, 10);
    assert_int_equal(t->v[7].match.n, 0);
    tls_policy_free(t);
}

/* test_parse_bad - each malformed line is reported with its line number and skipped. */
static void test_parse_bad(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *want; /* a piece of the message */
    } cases[] = {
        {"lonely.test", "a TLS level must follow"},
        {"x.test secure", "unknown TLS level"},
        {"x..test may", "is not a domain"},
        {"x_te$t may", "is not a domain"},
        {"x.test may match=a.test", "only with verify"},
        {"x.test verify match=", "at least one name"},
        {"x.test verify match=a..b", "is not a host name"},
        {"x.test verify match=a.test match=b.test", "given once"},
        {"x.test verify protocols=TLSv1.3", "unknown attribute"},
        {". may", "is not a domain"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[300];
        snprintf(text, sizeof text, "ok.test may\n%s\n", cases[i].line);
        errs_t e = {0};
        tls_policy_table *t = tls_policy_parse(text, on_err, &e);
        print_message("case %zu: %s -> %s\n", i, cases[i].line, e.n ? e.msgs[0] : "(no error)");
        assert_int_equal(e.n, 1);
        assert_int_equal(e.lines[0], 2);
        assert_non_null(strstr(e.msgs[0], cases[i].want));
        assert_int_equal(t->n, 1);
        tls_policy_free(t);
    }
}

/* test_parse_duplicate - a second entry for one pattern is an error, the first stays. */
static void test_parse_duplicate(void **state)
{
    (void)state;
    errs_t e = {0};
    tls_policy_table *t = tls_policy_parse("a.test may\nA.TEST verify\na.test. none\n", on_err, &e);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.lines[1], 3);
    assert_int_equal(e.lines[0], 2);
    assert_int_equal(t->n, 1);
    assert_int_equal(t->v[0].level, TLS_LEVEL_MAY);
    tls_policy_free(t);
}

/* test_lookup - exact before the longest suffix before "*"; a suffix never matches itself. */
static void test_lookup(void **state)
{
    (void)state;
    tls_policy_table *t = tls_policy_parse("example.com verify\n"
                                           ".example.com encrypt\n"
                                           ".deep.example.com none\n"
                                           "*  may\n",
                                           on_err, &(errs_t){0});
    static const struct {
        const char *domain;
        enum tls_level want;
    } cases[] = {
        {"example.com", TLS_LEVEL_VERIFY},      {"EXAMPLE.com.", TLS_LEVEL_VERIFY},
        {"a.example.com", TLS_LEVEL_ENCRYPT},   {"b.a.example.com", TLS_LEVEL_ENCRYPT},
        {"x.deep.example.com", TLS_LEVEL_NONE}, {"deep.example.com", TLS_LEVEL_ENCRYPT},
        {"other.test", TLS_LEVEL_MAY},          {"notexample.com", TLS_LEVEL_MAY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const tls_policy_entry *e = tls_policy_lookup(t, cases[i].domain);
        print_message("case %zu: %s\n", i, cases[i].domain);
        assert_non_null(e);
        assert_int_equal(e->level, cases[i].want);
    }
    tls_policy_free(t);
    t = tls_policy_parse("example.com verify\n", on_err, &(errs_t){0});
    assert_null(tls_policy_lookup(t, "other.test"));
    assert_null(tls_policy_lookup(t, "a.example.com"));
    assert_null(tls_policy_lookup(NULL, "example.com"));
    tls_policy_free(t);
}

/* test_level_names - names and parsing agree; unknown names are TLS_LEVEL_DEFAULT. */
static void test_level_names(void **state)
{
    (void)state;
    for (int l = TLS_LEVEL_NONE; l <= TLS_LEVEL_STS; l++)
        assert_int_equal(tls_level_parse(tls_level_name((enum tls_level)l)), l);
    assert_int_equal(tls_level_parse("default"), TLS_LEVEL_DEFAULT);
    assert_int_equal(tls_level_parse("secure"), TLS_LEVEL_DEFAULT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),   cmocka_unit_test(test_parse_bad),  cmocka_unit_test(test_parse_duplicate),
        cmocka_unit_test(test_lookup),       cmocka_unit_test(test_level_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_tls_sni.c - unit tests for src/core/tls_sni.c, the tls_sni_file table: entries and their
 * paths, every kind of malformed line reported with its line number, and lookups of client
 * server names (exact, wildcard one label deep, case, final dot, names that are not host names).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/tls_sni.h"
#include "core/util.h"

/* on_err - collect "line: message". */
static void on_err(void *arg, int line, const char *msg)
{
    sv_push_owned((strvec *)arg, xasprintf("%d: %s", line, msg));
}

static const char TABLE[] =
    "# name            certificate         key\n"
    "mail.example.com  certs/mail.pem      certs/mail.key\n"
    "\n"
    "*.Example.ORG     /etc/ssl/wild.pem   # key in the same file\n"
    "MX.example.net.   both.pem\r\n";

/* test_parse_entries - names in lower case without the final dot, paths joined to the directory. */
static void test_parse_entries(void **state)
{
    (void)state;
    strvec errs = {0};
    tls_sni_table *t = tls_sni_parse(TABLE, "/etc/sluice", on_err, &errs);
    assert_int_equal(errs.n, 0);
    assert_int_equal(t->n, 3);
    assert_string_equal(t->v[0].name, "mail.example.com");
    assert_string_equal(t->v[0].cert, "/etc/sluice/certs/mail.pem");
    assert_string_equal(t->v[0].key, "/etc/sluice/certs/mail.key");
    assert_int_equal(t->v[0].line, 2);
    assert_string_equal(t->v[1].name, "*.example.org");
    assert_string_equal(t->v[1].cert, "/etc/ssl/wild.pem");
    assert_string_equal(t->v[1].key, "/etc/ssl/wild.pem");
    assert_int_equal(t->v[1].line, 4);
    assert_string_equal(t->v[2].name, "mx.example.net");
    assert_string_equal(t->v[2].cert, "/etc/sluice/both.pem");
    assert_string_equal(t->v[2].key, "/etc/sluice/both.pem");
    tls_sni_free(t);
    t = tls_sni_parse("a.example c.pem\n", NULL, on_err, &errs); /* no directory: paths as written */
    assert_string_equal(t->v[0].cert, "c.pem");
    tls_sni_free(t);
    t = tls_sni_parse("a.example c.pem\n", "/conf/", on_err, &errs);
    assert_string_equal(t->v[0].cert, "/conf/c.pem");
    tls_sni_free(t);
    t = tls_sni_parse("", "/x", on_err, &errs);
    assert_int_equal(t->n, 0);
    tls_sni_free(t);
    sv_free(&errs);
}

/* test_parse_errors - each malformed line is reported with its number and skipped. */
static void test_parse_errors(void **state)
{
    (void)state;
    static const char bad[] =
        "good.example g.pem\n"          /* 1 */
        "lonely.example\n"              /* 2: no certificate */
        "a.example c.pem k.pem extra\n" /* 3: too many fields */
        "*  all.pem\n"                  /* 4: a bare wildcard */
        "a..example c.pem\n"            /* 5: empty label */
        "*.*.example c.pem\n"           /* 6: wildcard not leftmost-only */
        "bad_char!.example c.pem\n"     /* 7 */
        "GOOD.example. other.pem\n"     /* 8: the same name again */
        "ex*.example c.pem\n";          /* 9: partial wildcard */
    strvec errs = {0};
    tls_sni_table *t = tls_sni_parse(bad, "/c", on_err, &errs);
    assert_int_equal(t->n, 1);
    assert_string_equal(t->v[0].name, "good.example");
    const int lines[] = {2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(errs.n, SL_ARRAY_LEN(lines));
    for (size_t i = 0; i < errs.n; i++) {
        print_message("%s\n", errs.v[i]);
        assert_int_equal(atoi(errs.v[i]), lines[i]);
    }
    assert_non_null(strstr(errs.v[0], "certificate file must follow"));
    assert_non_null(strstr(errs.v[1], "too many fields"));
    assert_non_null(strstr(errs.v[6], "already has an entry"));
    tls_sni_free(t);
    sv_free(&errs);
}

/* test_lookup - exact names first, then "*." one label up; never deeper, never invalid names. */
static void test_lookup(void **state)
{
    (void)state;
    static const char table[] = "mail.example.org m.pem\n*.example.org w.pem\n*.example.com c.pem\n";
    tls_sni_table *t = tls_sni_parse(table, "/c", NULL, NULL);
    assert_int_equal(t->n, 3);
    assert_int_equal(tls_sni_lookup(t, "mail.example.org"), 0);
    assert_int_equal(tls_sni_lookup(t, "MAIL.Example.Org."), 0);
    assert_int_equal(tls_sni_lookup(t, "mx.example.org"), 1);
    assert_int_equal(tls_sni_lookup(t, "mx.EXAMPLE.com"), 2);
    assert_int_equal(tls_sni_lookup(t, "a.mx.example.org"), -1); /* a wildcard covers one label */
    assert_int_equal(tls_sni_lookup(t, "example.org"), -1);
    assert_int_equal(tls_sni_lookup(t, "other.test"), -1);
    assert_int_equal(tls_sni_lookup(t, ""), -1);
    assert_int_equal(tls_sni_lookup(t, "*.example.org"), -1);
    assert_int_equal(tls_sni_lookup(t, "x y.example.org"), -1);
    assert_int_equal(tls_sni_lookup(t, NULL), -1);
    assert_int_equal(tls_sni_lookup(NULL, "mail.example.org"), -1);
    char *longname = xmalloc(400);
    memset(longname, 'a', 399);
    longname[399] = '\0';
    assert_int_equal(tls_sni_lookup(t, longname), -1);
    free(longname);
    tls_sni_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_entries),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_dmarc.c - unit tests for the pure parts of DMARC (src/dkim/dmarc.c): organizational
 * domains on a small public suffix list with wildcard and exception rules, and on Debian's list
 * when it is installed; alignment, strict and relaxed; DMARC records, valid and not. Also the
 * DKIM keys table (src/dkim/dkim_keys.c): the parent-domain lookup and file:line errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/util.h"
#include "dkim/dkim_keys.h"
#include "dkim/dmarc.h"

static const char *const PSL = "// comment\n"
                               "com\n"
                               "uk\n"
                               "co.uk\n"
                               "*.ck\n"
                               "!www.ck\n"
                               "\n"
                               "jp\n"
                               "kyoto.jp\n"
                               "*.kobe.jp\n";

/* test_org_domain - the PSL algorithm's cases (a rule, a longer rule, a wildcard, an exception, no rule). */
static void test_org_domain(void **state)
{
    (void)state;
    dmarc_psl *l = dmarc_psl_parse(PSL);
    static const char *const cases[][2] = {
        {"example.com", "example.com"},       {"a.b.example.com", "example.com"},
        {"Mail.Example.COM", "example.com"},  {"example.co.uk", "example.co.uk"},
        {"x.example.co.uk", "example.co.uk"}, {"co.uk", "co.uk"},
        {"a.b.ck", "a.b.ck"},                 {"z.a.b.ck", "a.b.ck"},
        {"www.ck", "www.ck"},                 {"a.www.ck", "www.ck"},
        {"x.y.kobe.jp", "x.y.kobe.jp"},       {"city.kyoto.jp", "city.kyoto.jp"},
        {"a.city.kyoto.jp", "city.kyoto.jp"}, {"host.example.test", "example.test"},
        {"example.test.", "example.test"},    {"test", "test"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o = dmarc_org_domain(l, cases[i][0]);
        if (strcmp(o, cases[i][1])) fail_msg("%s: got %s, expected %s", cases[i][0], o, cases[i][1]);
        free(o);
    }
    assert_true(dmarc_aligned(l, "mail.example.com", "example.com", false));
    assert_false(dmarc_aligned(l, "mail.example.com", "example.com", true));
    assert_true(dmarc_aligned(l, "EXAMPLE.com", "example.com", true));
    assert_false(dmarc_aligned(l, "a.co.uk", "b.co.uk", false));
    assert_false(dmarc_aligned(l, NULL, "b.co.uk", false));
    dmarc_psl_free(l);
}

/* test_debian_list - the installed list knows multi-label suffixes. */
static void test_debian_list(void **state)
{
    (void)state;
    const char *f = "/usr/share/publicsuffix/public_suffix_list.dat";
    if (access(f, R_OK) != 0) skip();
    conf_errors errs = {0};
    dmarc_psl *l = dmarc_psl_load(f, &errs);
    assert_non_null(l);
    char *o = dmarc_org_domain(l, "a.b.example.co.uk");
    assert_string_equal(o, "example.co.uk");
    free(o);
    o = dmarc_org_domain(l, "x.user.github.io");
    assert_string_equal(o, "user.github.io");
    free(o);
    dmarc_psl_free(l);
}

/* test_records - DMARC records, valid and not. */
static void test_records(void **state)
{
    (void)state;
    dmarc_record r;
    assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject; sp=none; adkim=s; pct=20; rua=mailto:a@b", &r), 0);
    assert_int_equal(r.p, DMARC_P_REJECT);
    assert_int_equal(r.sp, DMARC_P_NONE);
    assert_true(r.sp_given && r.adkim_strict && !r.aspf_strict);
    assert_int_equal(r.pct, 20);
    assert_int_equal(dmarc_record_parse("v=DMARC1;p=quarantine", &r), 0);
    assert_int_equal(r.sp, DMARC_P_QUARANTINE);
    assert_int_equal(r.pct, 100);
    assert_false(r.sp_given);
    assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject; pct=500", &r), 0);
    assert_int_equal(r.pct, 100);
    static const char *const bad[] = {"p=reject; v=DMARC1", "v=DMARC2; p=reject", "v=DMARC1", "v=DMARC1; p=maybe",
                                      "v=DMARC1; p", "", "v=DMARC1; p=reject; p=none"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (dmarc_record_parse(bad[i], &r) == 0) fail_msg("accepted: %s", bad[i]);
}

/* test_keys_table - parent-domain lookup, and errors naming the line. */
static void test_keys_table(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_dmarc_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *key = xasprintf("%s/ed.pem", dir), *tab = xasprintf("%s/keys", dir);
    char *cmd = xasprintf("openssl genpkey -algorithm ed25519 -out %s 2>/dev/null", key);
    if (system(cmd) != 0) skip();
    FILE *f = fopen(tab, "w");
    fprintf(f, "# comment\nexample.com s1 ed25519-sha256 ed.pem\n\nexample.com s2 ed25519-sha256 %s headers=from:to\n", key);
    fclose(f);
    conf_errors errs = {0};
    dkim_keys *t = dkim_keys_load(tab, &errs);
    assert_non_null(t);
    assert_int_equal(t->n, 2);
    assert_int_equal(t->k[1].n_headers, 2);
    assert_string_equal(dkim_keys_domain(t, "mail.sub.example.com"), "example.com");
    assert_string_equal(dkim_keys_domain(t, "EXAMPLE.COM"), "example.com");
    assert_null(dkim_keys_domain(t, "example.org"));
    assert_null(dkim_keys_domain(t, "badexample.com"));
    dkim_keys_free(t);
    f = fopen(tab, "w");
    fprintf(f, "example.com s1 ed25519-sha256 ed.pem\nexample.com s1 rsa-sha256 ed.pem\nexample.com s3 ed25519-sha256 missing.pem\n");
    fclose(f);
    assert_null(dkim_keys_load(tab, &errs));
    assert_int_equal(errs.msgs.n, 2);
    assert_non_null(strstr(errs.msgs.v[0], "keys:2:"));
    assert_non_null(strstr(errs.msgs.v[1], "keys:3:"));
    sv_free(&errs.msgs);
    free(cmd);
    cmd = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(key);
    free(tab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_org_domain),
        cmocka_unit_test(test_debian_list),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_keys_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_sts_policy.c - unit tests for src/sts/sts_policy.c and sts_result.c: the _mta-sts TXT record
 * and the policy file of RFC 8461 (table-driven: what is accepted and what is refused), MX
 * pattern matching (§4.1), the cache file round trip and damage, and the RFC 8460 result types.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sts/sts_fetch.h"
#include "sts/sts_policy.h"
#include "sts/sts_result.h"

/* ---- TXT record ------------------------------------------------------------------------ */

static const struct {
    const char *txt;
    const char *id; /* NULL: refused */
} txt_cases[] = {
    {"v=STSv1; id=20160831085700Z;", "20160831085700Z"},
    {"v=STSv1; id=20160831085700Z", "20160831085700Z"},
    {"v=STSv1;id=abc", "abc"},
    {"v=STSv1;\tid=abc;\t", "abc"},
    {"v=STSv1; id=abc; ext_1.a-b=val!ue", "abc"},
    {"v=STSv1; foo=bar; id=X1", "X1"},
    {"v=STSv1 ; id=abc", "abc"},                       /* the ABNF allows WSP before ";" */
    {"v=STSv1; id=12345678901234567890123456789012", "12345678901234567890123456789012"},
    {"v=STSv1; id=123456789012345678901234567890123", NULL}, /* 33 characters */
    {"v=STSv1;", NULL},                                /* no field */
    {"v=STSv1", NULL},
    {"v=STSv1; id=", NULL},
    {"v=STSv1; id=ab-c", NULL},                        /* id: letters and digits only */
    {"v=STSv1; id=abc; id=def", NULL},                 /* twice */
    {"v=STSv1; ID=abc", NULL},                         /* names are case-sensitive: no id */
    {"v=STSv2; id=abc", NULL},
    {"V=STSv1; id=abc", NULL},
    {" v=STSv1; id=abc", NULL},
    {"v=STSv1; id=abc ", NULL},                        /* WSP not followed by ";" */
    {"v=STSv1; id=abc;;", NULL},
    {"v=STSv1; =abc; id=1", NULL},
    {"v=STSv1; _x=1; id=1", NULL},                     /* a name starts with a letter or digit */
    {"v=STSv1; x=a=b; id=1", NULL},
    {"v=STSv1; id=abc x=1", NULL},
    {"v=STSv1; aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1; id=1", NULL}, /* a 33-character name */
};

/* test_txt_cases - every TXT case parses to its id or is refused with a reason. */
static void test_txt_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof txt_cases / sizeof *txt_cases; i++) {
        char id[STS_ID_MAX + 1], why[256] = "";
        bool ok = sts_txt_parse(txt_cases[i].txt, id, why, sizeof why);
        if (txt_cases[i].id) {
            if (!ok) fail_msg("refused \"%s\": %s", txt_cases[i].txt, why);
            assert_string_equal(id, txt_cases[i].id);
        } else {
            if (ok) fail_msg("accepted \"%s\"", txt_cases[i].txt);
            assert_true(why[0] != '\0');
            assert_string_equal(id, "");
        }
    }
}

/* test_txt_select - other records are discarded; none or two records mean no policy. */
static void test_txt_select(void **state)
{
    (void)state;
    char id[STS_ID_MAX + 1], why[256];
    char *one[] = {"v=spf1 -all", "v=STSv1; id=a1;", "google-site-verification=x"};
    assert_true(sts_txt_select(one, 3, id, why, sizeof why));
    assert_string_equal(id, "a1");
    char *two[] = {"v=STSv1; id=a1;", "v=STSv1; id=b2;"};
    assert_false(sts_txt_select(two, 2, id, why, sizeof why));
    assert_non_null(strstr(why, "2 TXT records"));
    char *none[] = {"v=spf1 -all", "v=STSv1 ; id=x"}; /* not beginning with "v=STSv1;" */
    assert_false(sts_txt_select(none, 2, id, why, sizeof why));
    assert_false(sts_txt_select(NULL, 0, id, why, sizeof why));
    char *bad[] = {"v=STSv1; id=a_b"};
    assert_false(sts_txt_select(bad, 1, id, why, sizeof why));
}

/* ---- policy file ----------------------------------------------------------------------- */

static const struct {
    const char *body;
    int mode;      /* -1: refused */
    unsigned age;
    size_t mx;
    const char *why; /* a part of the reason when refused */
} policy_cases[] = {
    {"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
     STS_MODE_ENFORCE, 604800, 2, NULL},
    {"version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400", STS_MODE_TESTING, 86400, 1, NULL},
    {"mode: none\nmax_age: 0\nversion: STSv1\n", STS_MODE_NONE, 0, 0, NULL},
    {"version:STSv1\nmode:\tenforce  \nmx:  MX.Example.COM\t\nmax_age: 31557600\n", STS_MODE_ENFORCE, 31557600, 1, NULL},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\nfoo_bar.x-y: any thing, even UTF-8 \xc3\xa9\xe2\x82\xac\n",
     STS_MODE_ENFORCE, 10, 1, NULL},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 0000000010\n", STS_MODE_ENFORCE, 10, 1, NULL},
    {"", -1, 0, 0, "empty"},
    {"version: STSv1\nmode: enforce\nmax_age: 10\n", -1, 0, 0, "no mx"},
    {"version: STSv1\nmode: testing\nmax_age: 10\n", -1, 0, 0, "no mx"},
    {"mode: enforce\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "no version"},
    {"version: STSv1\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "no mode"},
    {"version: STSv1\nmode: enforce\nmx: a.test\n", -1, 0, 0, "no max_age"},
    {"version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "not STSv1"},
    {"version: STSv1\nmode: Enforce\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "mode is not"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601\n", -1, 0, 0, "above"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 12345678901\n", -1, 0, 0, "10 digits"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n", -1, 0, 0, "not a number"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1e3\n", -1, 0, 0, "not a number"},
    {"version: STSv1\nmode: enforce\nmode: testing\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "twice"},
    {"version: STSv1\nversion: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "twice"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\nmax_age: 10\n", -1, 0, 0, "twice"},
    {"version: STSv1\nmode: enforce\nmx: a_b.test\nmax_age: 10\n", -1, 0, 0, "mx is not"},
    {"version: STSv1\nmode: enforce\nmx: a.test.\nmax_age: 10\n", -1, 0, 0, "mx is not"},
    {"version: STSv1\nmode: enforce\nmx: *.*.test\nmax_age: 10\n", -1, 0, 0, "mx is not"},
    {"version: STSv1\nmode: enforce\nmx: mx*.test\nmax_age: 10\n", -1, 0, 0, "mx is not"},
    {"version: STSv1\nmode: enforce\nmx: -a.test\nmax_age: 10\n", -1, 0, 0, "mx is not"},
    {"version: STSv1\nmode: enforce\nmx: a-.test\nmax_age: 10\n", -1, 0, 0, "mx is not"},
    {"version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 10\n", -1, 0, 0, "mx is not"},
    {"version: STSv1\nmode: enforce\nmx: a.test other.test\nmax_age: 10\n", -1, 0, 0, "mx is not"},
    {"version: STSv1\n\nmode: enforce\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "empty line"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\n\n", -1, 0, 0, "empty line"},
    {"version: STSv1\rmode: enforce\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "bare CR"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\r", -1, 0, 0, "bare CR"},
    {" version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "name: value"},
    {"version : STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "name: value"},
    {"Version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\n", -1, 0, 0, "no version"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\nx:\n", -1, 0, 0, "empty value"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\nx: a\x01b\n", -1, 0, 0, "control"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\nx: \xc3\n", -1, 0, 0, "control"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\nx: \xc0\xaf\n", -1, 0, 0, "control"},
    {"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 10\n<html>\n", -1, 0, 0, "name: value"},
};

/* test_policy_cases - every policy case parses to its mode/max_age/mx count or is refused for its reason. */
static void test_policy_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof policy_cases / sizeof *policy_cases; i++) {
        sts_policy p;
        char why[256] = "";
        const char *b = policy_cases[i].body;
        bool ok = sts_policy_parse(b, strlen(b), &p, why, sizeof why);
        if (policy_cases[i].mode >= 0) {
            if (!ok) fail_msg("case %zu refused: %s", i, why);
            assert_int_equal(p.mode, policy_cases[i].mode);
            assert_int_equal(p.max_age, policy_cases[i].age);
            assert_int_equal(p.mx.n, policy_cases[i].mx);
        } else {
            if (ok) fail_msg("case %zu accepted", i);
            if (!strstr(why, policy_cases[i].why)) fail_msg("case %zu: \"%s\" does not say \"%s\"", i, why, policy_cases[i].why);
        }
        sts_policy_free(&p);
    }
}

/* test_policy_nul_and_size - a NUL byte or more than 64 KiB is refused. */
static void test_policy_nul_and_size(void **state)
{
    (void)state;
    const char b[] = "version: STSv1\nmode: none\nmax_age: 1\0\n";
    sts_policy p;
    char why[256];
    assert_false(sts_policy_parse(b, sizeof b - 1, &p, why, sizeof why));
    assert_non_null(strstr(why, "NUL"));
    sts_policy_free(&p);
    size_t n = STS_POLICY_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, 'a', n);
    assert_false(sts_policy_parse(big, n, &p, why, sizeof why));
    sts_policy_free(&p);
    free(big);
}

/* test_policy_mx_lower_and_copy - mx patterns are kept in lower case; a copy is deep. */
static void test_policy_mx_lower_and_copy(void **state)
{
    (void)state;
    const char *b = "version: STSv1\nmode: enforce\nmx: MX1.Example.COM\nmx: *.Backup.example.net\nmax_age: 60\n";
    sts_policy p, q;
    char why[256];
    assert_true(sts_policy_parse(b, strlen(b), &p, why, sizeof why));
    assert_string_equal(p.mx.v[0], "mx1.example.com");
    assert_string_equal(p.mx.v[1], "*.backup.example.net");
    /* the lines as served (case kept, line ends dropped): TLS-RPT's policy-string */
    assert_int_equal(p.lines.n, 5);
    assert_string_equal(p.lines.v[0], "version: STSv1");
    assert_string_equal(p.lines.v[2], "mx: MX1.Example.COM");
    assert_string_equal(p.lines.v[4], "max_age: 60");
    sts_policy_copy(&q, &p);
    sts_policy_free(&p);
    assert_int_equal(q.mx.n, 2);
    assert_string_equal(q.mx.v[1], "*.backup.example.net");
    assert_int_equal(q.lines.n, 5);
    assert_string_equal(q.lines.v[3], "mx: *.Backup.example.net");
    assert_string_equal(sts_mode_name(q.mode), "enforce");
    sts_policy_free(&q);
}

/* ---- MX matching ----------------------------------------------------------------------- */

static const struct {
    const char *pattern, *host;
    bool match;
} mx_cases[] = {
    {"mail.example.com", "mail.example.com", true},
    {"mail.example.com", "MAIL.Example.com.", true},
    {"mail.example.com", "mail.example.com.evil.test", false},
    {"mail.example.com", "xmail.example.com", false},
    {"*.example.net", "mx1.example.net", true},
    {"*.example.net", "MX1.EXAMPLE.NET.", true},
    {"*.example.net", "example.net", false},
    {"*.example.net", "a.b.example.net", false},
    {"*.example.net", ".example.net", false},
    {"*.example.net", "mx1.example.network", false},
    {"*.example.net", "mx1example.net", false},
    {"*.example.net", "", false},
};

/* test_mx_match - §4.1: exact names, and "*." for exactly one left-most label. */
static void test_mx_match(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mx_cases / sizeof *mx_cases; i++)
        if (sts_mx_pattern_match(mx_cases[i].pattern, mx_cases[i].host) != mx_cases[i].match)
            fail_msg("%s vs %s: expected %d", mx_cases[i].pattern, mx_cases[i].host, mx_cases[i].match);
    const char *b = "version: STSv1\nmode: enforce\nmx: mx.a.test\nmx: *.b.test\nmax_age: 60\n";
    sts_policy p;
    char why[256];
    assert_true(sts_policy_parse(b, strlen(b), &p, why, sizeof why));
    assert_true(sts_mx_match(&p, "mx.a.test"));
    assert_true(sts_mx_match(&p, "x.b.test"));
    assert_false(sts_mx_match(&p, "mx.c.test"));
    sts_policy_free(&p);
}

/* ---- cache file ------------------------------------------------------------------------ */

/* cached_sample - a cache record for tests (owned strings). */
static void cached_sample(sts_cached *c, const char *body)
{
    memset(c, 0, sizeof *c);
    c->domain = strdup("example.com");
    snprintf(c->id, sizeof c->id, "%s", "abc123");
    c->fetched = 1733440000;
    c->body = strdup(body);
    c->body_len = strlen(body);
    char why[256];
    assert_true(sts_policy_parse(c->body, c->body_len, &c->policy, why, sizeof why));
}

/* test_cache_round_trip - a cache file decodes to what was encoded; expiry is fetched + max_age. */
static void test_cache_round_trip(void **state)
{
    (void)state;
    sts_cached c, d;
    cached_sample(&c, "version: STSv1\r\nmode: testing\r\nmx: *.example.com\r\nmax_age: 86400\r\n");
    strbuf sb;
    sb_init(&sb);
    sts_cache_encode(&c, &sb);
    char why[256] = "";
    if (!sts_cache_decode(sb.data, sb.len, &d, why, sizeof why)) fail_msg("%s", why);
    assert_string_equal(d.domain, "example.com");
    assert_string_equal(d.id, "abc123");
    assert_int_equal(d.fetched, 1733440000);
    assert_int_equal(d.body_len, c.body_len);
    assert_memory_equal(d.body, c.body, c.body_len);
    assert_int_equal(d.policy.mode, STS_MODE_TESTING);
    assert_int_equal(sts_cached_expires(&d), 1733440000 + 86400);
    sts_cached_free(&d);
    sts_cached_free(&c);
    sb_free(&sb);
}

/* test_cache_damage - a torn file, a changed length, a bad header or a policy that no longer parses is refused. */
static void test_cache_damage(void **state)
{
    (void)state;
    sts_cached c, d;
    cached_sample(&c, "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 600\n");
    strbuf sb;
    sb_init(&sb);
    sts_cache_encode(&c, &sb);
    char why[256];
    for (size_t cut = 0; cut < sb.len; cut++) { /* every truncation */
        assert_false(sts_cache_decode(sb.data, cut, &d, why, sizeof why));
        sts_cached_free(&d);
    }
    char *t = strdup(sb.data);
    char *len = strstr(t, "length ");
    len[7] = (char)(len[7] == '9' ? '8' : len[7] + 1);
    assert_false(sts_cache_decode(t, strlen(t), &d, why, sizeof why));
    sts_cached_free(&d);
    free(t);
    const char *bad[] = {
        "sluice-mta-sts 2\ndomain a.test\nid x\nfetched 1\nlength 0\n\n",
        "sluice-mta-sts 1\ndomain ../etc\nid x\nfetched 1\nlength 0\n\n",
        "sluice-mta-sts 1\ndomain a.test\nid x-y\nfetched 1\nlength 0\n\n",
        "sluice-mta-sts 1\ndomain a.test\nid x\nfetched -1\nlength 0\n\n",
        "sluice-mta-sts 1\ndomain a.test\nid x\nfetched 1\nlength 4\n\nabcd",
        "sluice-mta-sts 1\nid x\ndomain a.test\nfetched 1\nlength 0\n\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (sts_cache_decode(bad[i], strlen(bad[i]), &d, why, sizeof why)) fail_msg("accepted bad[%zu]", i);
        sts_cached_free(&d);
    }
    sts_cached_free(&c);
    sb_free(&sb);
}

/* test_domain_ok - policy domains are host names, so they are safe file names. */
static void test_domain_ok(void **state)
{
    (void)state;
    assert_true(sts_domain_ok("example.com"));
    assert_true(sts_domain_ok("a-b.c0.test"));
    assert_false(sts_domain_ok(""));
    assert_false(sts_domain_ok(".."));
    assert_false(sts_domain_ok("a/b.test"));
    assert_false(sts_domain_ok(".a.test"));
    assert_false(sts_domain_ok("a.test."));
    assert_false(sts_domain_ok("under_score.test"));
}

/* ---- result types, fetch helpers -------------------------------------------------------- */

/* test_result_types - each failure's RFC 8460 result type. */
static void test_result_types(void **state)
{
    (void)state;
    struct {
        sts_fail_facts f;
        const char *name;
    } cases[] = {
        {{.stage = STS_FAIL_FETCH}, "sts-policy-fetch-error"},
        {{.stage = STS_FAIL_FETCH, .webpki = true}, "sts-webpki-invalid"},
        {{.stage = STS_FAIL_POLICY}, "sts-policy-invalid"},
        {{.stage = STS_FAIL_MX}, "validation-failure"},
        {{.stage = STS_FAIL_STARTTLS}, "starttls-not-supported"},
        {{.stage = STS_FAIL_HANDSHAKE}, "validation-failure"},
        {{.stage = STS_FAIL_CERT, .chain_ok = true, .name_ok = false}, "certificate-host-mismatch"},
        {{.stage = STS_FAIL_CERT, .chain_ok = false, .name_ok = true}, "certificate-not-trusted"},
        {{.stage = STS_FAIL_CERT, .chain_ok = false, .expired = true}, "certificate-expired"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_string_equal(sts_result_type_name(sts_result_type_of(&cases[i].f)), cases[i].name);
    assert_string_equal(sts_result_type_name(STS_RT_NONE), "none");
}

/* test_fetch_helpers - the URL (port only when not 443) and the Content-Type check. */
static void test_fetch_helpers(void **state)
{
    (void)state;
    char *u = sts_fetch_url("example.com", 443);
    assert_string_equal(u, "https://mta-sts.example.com/.well-known/mta-sts.txt");
    free(u);
    u = sts_fetch_url("example.com", 8443);
    assert_string_equal(u, "https://mta-sts.example.com:8443/.well-known/mta-sts.txt");
    free(u);
    assert_true(sts_content_type_ok("text/plain"));
    assert_true(sts_content_type_ok("Text/Plain; charset=utf-8"));
    assert_false(sts_content_type_ok("text/plainx"));
    assert_false(sts_content_type_ok("text/html"));
    assert_false(sts_content_type_ok(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt_cases),          cmocka_unit_test(test_txt_select),
        cmocka_unit_test(test_policy_cases),       cmocka_unit_test(test_policy_nul_and_size),
        cmocka_unit_test(test_policy_mx_lower_and_copy), cmocka_unit_test(test_mx_match),
        cmocka_unit_test(test_cache_round_trip),   cmocka_unit_test(test_cache_damage),
        cmocka_unit_test(test_domain_ok),          cmocka_unit_test(test_result_types),
        cmocka_unit_test(test_fetch_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

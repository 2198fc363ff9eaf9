/*
 * test_dane_out.c - unit tests for src/deliver/dane_out.c: the DANE decision per MX host
 * (RFC 7672 2.2 for the levels dane and dane-only) as a table, the RFC 8460 result types a
 * failure reports, and dane_host_set keeping only the usable records of a TLSA RRset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/dane_out.h"

static void test_decide_table(void **state)
{
    (void)state;
    static const struct {
        enum tls_level level;
        bool mx_secure;
        sl_result res;
        bool secure;
        size_t n, usable;
        dane_host_mode mode;
        dane_result_type rt;
    } cases[] = {
        /* dane: opportunistic */
        {TLS_LEVEL_DANE, true, SL_OK, true, 2, 1, DANE_HOST_VERIFY, DANE_RT_NONE},
        {TLS_LEVEL_DANE, true, SL_OK, true, 2, 0, DANE_HOST_ENCRYPT, DANE_RT_TLSA_INVALID},
        {TLS_LEVEL_DANE, true, SL_OK, false, 2, 2, DANE_HOST_NONE, DANE_RT_NONE},   /* insecure TLSA */
        {TLS_LEVEL_DANE, true, SL_OK, true, 0, 0, DANE_HOST_NONE, DANE_RT_NONE},    /* no TLSA (secure NODATA) */
        {TLS_LEVEL_DANE, true, SL_PERM, true, 0, 0, DANE_HOST_NONE, DANE_RT_NONE},  /* NXDOMAIN */
        {TLS_LEVEL_DANE, true, SL_TEMP, false, 0, 0, DANE_HOST_SKIP, DANE_RT_DNSSEC_INVALID}, /* bogus: never clear */
        {TLS_LEVEL_DANE, false, SL_OK, true, 2, 2, DANE_HOST_NONE, DANE_RT_NONE},   /* insecure MX */
        {TLS_LEVEL_DANE, false, SL_TEMP, false, 0, 0, DANE_HOST_NONE, DANE_RT_NONE},
        /* dane-only: mandatory */
        {TLS_LEVEL_DANE_ONLY, true, SL_OK, true, 1, 1, DANE_HOST_VERIFY, DANE_RT_NONE},
        {TLS_LEVEL_DANE_ONLY, true, SL_OK, true, 1, 0, DANE_HOST_SKIP, DANE_RT_TLSA_INVALID},
        {TLS_LEVEL_DANE_ONLY, true, SL_OK, false, 1, 1, DANE_HOST_SKIP, DANE_RT_DANE_REQUIRED},
        {TLS_LEVEL_DANE_ONLY, true, SL_PERM, true, 0, 0, DANE_HOST_SKIP, DANE_RT_DANE_REQUIRED},
        {TLS_LEVEL_DANE_ONLY, true, SL_TEMP, false, 0, 0, DANE_HOST_SKIP, DANE_RT_DNSSEC_INVALID},
        {TLS_LEVEL_DANE_ONLY, false, SL_OK, true, 1, 1, DANE_HOST_SKIP, DANE_RT_DANE_REQUIRED},
        /* other levels: never DANE */
        {TLS_LEVEL_MAY, true, SL_OK, true, 1, 1, DANE_HOST_NONE, DANE_RT_NONE},
        {TLS_LEVEL_VERIFY, true, SL_TEMP, false, 0, 0, DANE_HOST_NONE, DANE_RT_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dane_verdict v = dane_decide(cases[i].level, cases[i].mx_secure, cases[i].res, cases[i].secure, cases[i].n,
                                     cases[i].usable);
        if (v.mode != cases[i].mode || v.rt != cases[i].rt)
            fail_msg("case %zu: mode %s rt \"%s\", want %s \"%s\"", i, dane_mode_name(v.mode),
                     dane_result_type_name(v.rt), dane_mode_name(cases[i].mode), dane_result_type_name(cases[i].rt));
        assert_non_null(v.why);
    }
}

static void test_result_type_names(void **state)
{
    (void)state;
    assert_string_equal(dane_result_type_name(DANE_RT_NONE), "");
    assert_string_equal(dane_result_type_name(DANE_RT_STARTTLS_NOT_SUPPORTED), "starttls-not-supported");
    assert_string_equal(dane_result_type_name(DANE_RT_CERT_HOST_MISMATCH), "certificate-host-mismatch");
    assert_string_equal(dane_result_type_name(DANE_RT_VALIDATION_FAILURE), "validation-failure");
    assert_string_equal(dane_result_type_name(DANE_RT_TLSA_INVALID), "tlsa-invalid");
    assert_string_equal(dane_result_type_name(DANE_RT_DNSSEC_INVALID), "dnssec-invalid");
    assert_string_equal(dane_result_type_name(DANE_RT_DANE_REQUIRED), "dane-required");
    assert_string_equal(dane_result_type_name((dane_result_type)99), "");
}

static void test_host_set_keeps_usable_records(void **state)
{
    (void)state;
    unsigned char ee[35] = {3, 1, 1}, ta[67] = {2, 0, 2}, pkix[35] = {1, 1, 1}, shortsha[10] = {3, 1, 1}, tiny[2] = {3, 1};
    memset(ee + 3, 0x11, 32);
    memset(ta + 3, 0x22, 64);
    const dns_rdata rr[] = {{pkix, sizeof pkix}, {ee, sizeof ee}, {shortsha, sizeof shortsha}, {tiny, sizeof tiny},
                            {ta, sizeof ta}};
    dane_host h = {0};
    dane_host_set(&h, "mx.example.test", TLS_LEVEL_DANE, true, SL_OK, true, rr, 5);
    assert_int_equal(h.v.mode, DANE_HOST_VERIFY);
    assert_true(dane_host_authenticates(&h));
    assert_string_equal(h.host, "mx.example.test");
    assert_int_equal(h.n, 2);
    assert_int_equal(h.recs[0].usage, 3);
    assert_int_equal(h.recs[0].len, 32);
    assert_memory_equal(h.recs[0].data, ee + 3, 32);
    assert_int_equal(h.recs[1].usage, 2);
    assert_int_equal(h.recs[1].mtype, 2);
    assert_int_equal(h.recs[1].len, 64);
    /* the usable records in presentation form: TLS-RPT's policy-string */
    strvec strs = {0};
    dane_host_strings(&h, &strs);
    assert_int_equal(strs.n, 2);
    assert_string_equal(strs.v[0], "3 1 1 1111111111111111111111111111111111111111111111111111111111111111");
    assert_int_equal(strlen(strs.v[1]), 6 + 128);
    assert_memory_equal(strs.v[1], "2 0 2 2222", 10);
    sv_free(&strs);
    /* only unusable ones: encrypt, and not an authenticating host (MTA-STS does not yield) */
    dane_host_set(&h, "mx2.example.test", TLS_LEVEL_DANE, true, SL_OK, true, rr, 1);
    assert_int_equal(h.v.mode, DANE_HOST_ENCRYPT);
    assert_false(dane_host_authenticates(&h));
    assert_int_equal(h.n, 0);
    dane_host_strings(&h, &strs);
    assert_int_equal(strs.n, 0);
    /* a failed lookup with dane-only */
    dane_host_set(&h, "mx3.example.test", TLS_LEVEL_DANE_ONLY, true, SL_TEMP, false, NULL, 0);
    assert_int_equal(h.v.mode, DANE_HOST_SKIP);
    assert_int_equal(h.v.rt, DANE_RT_DNSSEC_INVALID);
    dane_host_clear(&h);
    assert_null(h.host);
    assert_false(dane_host_authenticates(&h));
    assert_false(dane_host_authenticates(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_table),
        cmocka_unit_test(test_result_type_names),
        cmocka_unit_test(test_host_set_keeps_usable_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

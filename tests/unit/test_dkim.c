/*
 * test_dkim.c - unit tests for the pure parts of src/dkim/: tag-lists (RFC 6376 §3.2), the
 * simple and relaxed canonicalisations of header fields and bodies (§3.4, with the example of
 * §3.4.5), bodies fed in pieces of every size, the l= limit, and b= stripping (§3.7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/util.h"
#include "dkim/dkim.h"

/* ------------------------------------------------------------------ tag-lists */

struct tag_case {
    const char *in;
    int rc;
    const char *want; /* "name=value|name=value" */
};

static const struct tag_case tag_cases[] = {
    {"v=1; a=rsa-sha256; d=example.net; s=brisbane;", 0, "v=1|a=rsa-sha256|d=example.net|s=brisbane"},
    {"v=1;a=ed25519-sha256", 0, "v=1|a=ed25519-sha256"},
    {"", 0, ""},
    {" ; ", -1, NULL},
    {"v = 1 ;\r\n\tk =\trsa ; p= MIGf MA0G\r\n\t CSqG ", 0, "v=1|k=rsa|p=MIGf MA0G\r\n\t CSqG"},
    {"t=; x=", 0, "t=|x="},
    {"h=from:to:subject; l=0", 0, "h=from:to:subject|l=0"},
    {"z=From:foo@eng.example.net|To:joe@example.com|Subject:demo=20run", 0,
     "z=From:foo@eng.example.net|To:joe@example.com|Subject:demo=20run"},
    {"n_1=x", 0, "n_1=x"},
    {"1a=x", -1, NULL},
    {"_a=x", -1, NULL},
    {"a", -1, NULL},
    {"a=1; a=2", -1, NULL},
    {"a=b\x01", -1, NULL},
    {"a=b\r\nc=d", -1, NULL}, /* CRLF not followed by WSP is no folding */
    {"a=\xc3\xa9", -1, NULL},
    {"a=1;;b=2", -1, NULL},
    {"A=1; a=2", 0, "A=1|a=2"}, /* names are case-sensitive */
};

static void test_tags(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(tag_cases); i++) {
        const struct tag_case *c = &tag_cases[i];
        print_message("case %zu\n", i);
        dkim_tags t;
        char err[128] = "";
        int rc = dkim_tags_parse(c->in, strlen(c->in), &t, err, sizeof err);
        assert_int_equal(rc, c->rc);
        if (rc < 0) {
            assert_true(err[0] != '\0');
            assert_int_equal(t.n, 0);
            assert_null(t.tag);
            continue;
        }
        strbuf sb;
        sb_init(&sb);
        for (size_t k = 0; k < t.n; k++) sb_printf(&sb, "%s%s=%s", k ? "|" : "", t.tag[k].name, t.tag[k].value);
        assert_string_equal(sb.data ? sb.data : "", c->want);
        sb_free(&sb);
        dkim_tags_free(&t);
    }
    dkim_tags t;
    char err[128];
    assert_int_equal(dkim_tags_parse("v=1; d=example.com", 18, &t, err, sizeof err), 0);
    assert_string_equal(dkim_tags_get(&t, "d"), "example.com");
    assert_null(dkim_tags_get(&t, "D"));
    assert_null(dkim_tags_get(&t, "s"));
    dkim_tags_free(&t);
}

static void test_canon_parse(void **state)
{
    (void)state;
    dkim_canon h, b;
    assert_int_equal(dkim_canon_parse("relaxed/simple", &h, &b), 0);
    assert_int_equal(h, DKIM_CANON_RELAXED);
    assert_int_equal(b, DKIM_CANON_SIMPLE);
    assert_int_equal(dkim_canon_parse("relaxed", &h, &b), 0);
    assert_int_equal(b, DKIM_CANON_SIMPLE);
    assert_int_equal(dkim_canon_parse("simple/relaxed", &h, &b), 0);
    assert_int_equal(h, DKIM_CANON_SIMPLE);
    assert_int_equal(b, DKIM_CANON_RELAXED);
    assert_int_equal(dkim_canon_parse("Relaxed", &h, &b), -1);
    assert_int_equal(dkim_canon_parse("relaxed/", &h, &b), -1);
    assert_int_equal(dkim_canon_parse("nofws", &h, &b), -1);
}

/* ------------------------------------------------------------------ headers */

struct hdr_case {
    dkim_canon c;
    const char *in, *out;
};

static const struct hdr_case hdr_cases[] = {
    /* RFC 6376 §3.4.5 */
    {DKIM_CANON_RELAXED, "A: X", "a:X\r\n"},
    {DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  ", "b:Y Z\r\n"},
    {DKIM_CANON_SIMPLE, "A: X", "A: X\r\n"},
    {DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  ", "B : Y\t\r\n\tZ  \r\n"},
    /* more relaxed cases */
    {DKIM_CANON_RELAXED, "Subject:   hello    world  ", "subject:hello world\r\n"},
    {DKIM_CANON_RELAXED, "SUBJECT:", "subject:\r\n"},
    {DKIM_CANON_RELAXED, "To: a@b,\r\n  c@d", "to:a@b, c@d\r\n"},
    {DKIM_CANON_RELAXED, "X-Y\t:\tv", "x-y:v\r\n"},
    {DKIM_CANON_RELAXED, "From: \"A  B\" <a@b>", "from:\"A B\" <a@b>\r\n"},
};

static void test_canon_header(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(hdr_cases); i++) {
        print_message("case %zu\n", i);
        strbuf out;
        sb_init(&out);
        dkim_canon_header(hdr_cases[i].c, hdr_cases[i].in, strlen(hdr_cases[i].in), &out);
        assert_string_equal(out.data, hdr_cases[i].out);
        sb_free(&out);
    }
}

/* ------------------------------------------------------------------ bodies */

struct body_case {
    dkim_canon c;
    const char *in, *out;
};

static const struct body_case body_cases[] = {
    /* RFC 6376 §3.4.5 */
    {DKIM_CANON_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n"},
    {DKIM_CANON_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n"},
    /* empty bodies: simple is one CRLF, relaxed nothing */
    {DKIM_CANON_SIMPLE, "", "\r\n"},
    {DKIM_CANON_SIMPLE, "\r\n\r\n", "\r\n"},
    {DKIM_CANON_RELAXED, "", ""},
    {DKIM_CANON_RELAXED, "\r\n \r\n\t\r\n", ""},
    /* a missing final CRLF is added */
    {DKIM_CANON_SIMPLE, "abc", "abc\r\n"},
    {DKIM_CANON_RELAXED, "abc  ", "abc \r\n"}, /* no CRLF yet: the whitespace is not at a line end (dkimpy) */
    {DKIM_CANON_RELAXED, "abc  \r\n", "abc\r\n"},
    /* inner empty lines stay; whitespace-only lines are empty in relaxed only */
    {DKIM_CANON_SIMPLE, "a\r\n\r\nb\r\n \r\n", "a\r\n\r\nb\r\n \r\n"},
    {DKIM_CANON_RELAXED, "a\r\n\r\nb\r\n \r\n", "a\r\n\r\nb\r\n"},
    {DKIM_CANON_RELAXED, "a\r\n  \r\nb", "a\r\n\r\nb\r\n"},
    /* a bare CR or LF is content */
    {DKIM_CANON_SIMPLE, "a\rb\nc\r\n", "a\rb\nc\r\n"},
    {DKIM_CANON_SIMPLE, "a\r", "a\r\r\n"},
    {DKIM_CANON_RELAXED, "a \r \n", "a \r \n\r\n"},
    {DKIM_CANON_RELAXED, "b\r\n \r\n \t", "b\r\n\r\n \r\n"},
};

/* sink_sb - a body sink appending to a strbuf. */
static void sink_sb(void *arg, const char *p, size_t n)
{
    sb_append(arg, p, n);
}

/* canon_body - c of in fed in pieces of step octets (0: at once) with limit. */
static char *canon_body(dkim_canon c, const char *in, size_t step, int64_t limit, uint64_t *total)
{
    strbuf out;
    sb_init(&out);
    sb_puts(&out, "");
    dkim_body b;
    dkim_body_init(&b, c, limit, sink_sb, &out);
    size_t n = strlen(in);
    if (!step) step = n ? n : 1;
    for (size_t i = 0; i < n; i += step) dkim_body_feed(&b, in + i, i + step <= n ? step : n - i);
    dkim_body_end(&b);
    if (total) *total = b.total;
    return sb_steal(&out);
}

static void test_canon_body(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(body_cases); i++) {
        for (size_t step = 0; step <= 4; step++) {
            print_message("case %zu step %zu\n", i, step);
            char *out = canon_body(body_cases[i].c, body_cases[i].in, step, -1, NULL);
            assert_string_equal(out, body_cases[i].out);
            free(out);
        }
    }
}

static void test_body_limit(void **state)
{
    (void)state;
    uint64_t total;
    char *out = canon_body(DKIM_CANON_RELAXED, "Hello  world\r\nmore\r\n\r\n", 3, 7, &total);
    assert_string_equal(out, "Hello w");
    assert_int_equal(total, strlen("Hello world\r\nmore\r\n"));
    free(out);
    out = canon_body(DKIM_CANON_SIMPLE, "abc\r\n", 0, 0, &total);
    assert_string_equal(out, "");
    assert_int_equal(total, 5);
    free(out);
    out = canon_body(DKIM_CANON_SIMPLE, "abc\r\n", 1, 100, &total);
    assert_string_equal(out, "abc\r\n");
    free(out);
}

/* ------------------------------------------------------------------ b= */

static void test_strip_b(void **state)
{
    (void)state;
    const struct {
        const char *in, *out;
    } cases[] = {
        {"DKIM-Signature: v=1; a=rsa-sha256; b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSb\r\n\tav+yuU4zGeeruD00lszZVoG4ZHRNiYzR; bh=abc=",
         "DKIM-Signature: v=1; a=rsa-sha256; b=; bh=abc="},
        {"DKIM-Signature: v=1; bh=x; b=AAAA", "DKIM-Signature: v=1; bh=x; b="},
        {"DKIM-Signature: b = AAAA ;v=1", "DKIM-Signature: b =;v=1"},
        {"dkim-signature:v=1;bh=b=x;b=Y", "dkim-signature:v=1;bh=b=x;b="},
        {"DKIM-Signature: v=1", "DKIM-Signature: v=1"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        print_message("case %zu\n", i);
        strbuf out;
        sb_init(&out);
        dkim_strip_b(cases[i].in, strlen(cases[i].in), &out);
        assert_string_equal(out.data, cases[i].out);
        sb_free(&out);
    }
}

/* ------------------------------------------------------------------ sign and verify */

static const char MSG[] = "From: Alice <alice@example.test>\r\n"
                          "To: bob@example.net\r\n"
                          "Subject:  a   test\r\n\tfolded\r\n"
                          "\r\n"
                          "Hello  Bob,\r\n\r\n";

/* key_record - "v=DKIM1; k=...; p=..." for the public half of key. */
static char *key_record(EVP_PKEY *key)
{
    strbuf b64, out;
    sb_init(&b64);
    sb_init(&out);
    if (EVP_PKEY_get_id(key) == EVP_PKEY_ED25519) {
        unsigned char raw[32];
        size_t n = sizeof raw;
        assert_int_equal(EVP_PKEY_get_raw_public_key(key, raw, &n), 1);
        b64_encode(raw, n, &b64);
        sb_printf(&out, "v=DKIM1; k=ed25519; p=%s", b64.data);
    } else {
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(key, &der);
        assert_true(n > 0);
        b64_encode(der, (size_t)n, &b64);
        OPENSSL_free(der);
        sb_printf(&out, "v=DKIM1; k=rsa; p=%s", b64.data);
    }
    sb_free(&b64);
    return sb_steal(&out);
}

/* verify_text - the result of verifying signature 0 of msg with record. */
static dkim_res verify_text(const char *msg, const char *record, char *reason, size_t len)
{
    dkim_sig_info info;
    dkim_verify(msg, strlen(msg), 0, record, 0, &info);
    snprintf(reason, len, "%s", info.reason);
    dkim_res r = info.res;
    dkim_sig_info_free(&info);
    return r;
}

/* replace - a copy of s with the first from replaced by to. */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    assert_non_null(at);
    return xasprintf("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

static void sign_verify(EVP_PKEY *key, const char *alg)
{
    char *record = key_record(key);
    for (int hc = 0; hc < 2; hc++) {
        for (int bc = 0; bc < 2; bc++) {
            print_message("%s c=%d/%d\n", alg, hc, bc);
            dkim_sign_opts o = {.domain = "example.test", .selector = "sel", .key = key,
                                .header_canon = (dkim_canon)hc, .body_canon = (dkim_canon)bc, .oversign = true,
                                .now = 1700000000};
            strbuf sig;
            sb_init(&sig);
            char err[256] = "", reason[160];
            assert_int_equal(dkim_sign(MSG, strlen(MSG), &o, &sig, err, sizeof err), 0);
            assert_non_null(strstr(sig.data, alg));
            char *signed_msg = xasprintf("%s%s", sig.data, MSG);
            assert_int_equal(dkim_sig_count(signed_msg, strlen(signed_msg)), 1);
            char *name = dkim_sig_key_name(signed_msg, strlen(signed_msg), 0);
            assert_string_equal(name, "sel._domainkey.example.test");
            free(name);
            assert_int_equal(verify_text(signed_msg, record, reason, sizeof reason), DKIM_PASS);
            char *body = replace(signed_msg, "Hello  Bob", "Hello  Eve");
            assert_int_equal(verify_text(body, record, reason, sizeof reason), DKIM_FAIL);
            assert_string_equal(reason, "body hash did not verify");
            char *hdr = replace(signed_msg, "To: bob", "To: eve");
            assert_int_equal(verify_text(hdr, record, reason, sizeof reason), DKIM_FAIL);
            assert_string_equal(reason, "signature did not verify");
            char *added = replace(signed_msg, "From: Alice", "To: eve@example.net\r\nFrom: Alice");
            assert_int_equal(verify_text(added, record, reason, sizeof reason), DKIM_FAIL); /* oversigned */
            /* whitespace changes survive relaxed canonicalisation only */
            char *ws = replace(signed_msg, "Subject:  a   test", "Subject: a test");
            assert_int_equal(verify_text(ws, record, reason, sizeof reason), hc ? DKIM_PASS : DKIM_FAIL);
            free(body);
            free(hdr);
            free(added);
            free(ws);
            free(signed_msg);
            sb_free(&sig);
        }
    }
    free(record);
}

static void test_sign_verify(void **state)
{
    (void)state;
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(ed);
    assert_non_null(rsa);
    sign_verify(ed, "a=ed25519-sha256;");
    sign_verify(rsa, "a=rsa-sha256;");
    /* the wrong kind of key, a revoked key, no From */
    char *ed_rec = key_record(ed), reason[160];
    strbuf sig;
    sb_init(&sig);
    char err[256];
    dkim_sign_opts o = {.domain = "example.test", .selector = "sel", .key = rsa};
    assert_int_equal(dkim_sign(MSG, strlen(MSG), &o, &sig, err, sizeof err), 0);
    char *signed_msg = xasprintf("%s%s", sig.data, MSG);
    assert_int_equal(verify_text(signed_msg, ed_rec, reason, sizeof reason), DKIM_PERMERROR);
    assert_non_null(strstr(reason, "does not match"));
    assert_int_equal(verify_text(signed_msg, "v=DKIM1; p=", reason, sizeof reason), DKIM_PERMERROR);
    assert_non_null(strstr(reason, "revoked"));
    assert_int_equal(verify_text(MSG, ed_rec, reason, sizeof reason), DKIM_PERMERROR);
    static const char *const only_to[] = {"to"};
    o.headers = only_to;
    o.n_headers = 1;
    sb_reset(&sig);
    assert_int_equal(dkim_sign(MSG, strlen(MSG), &o, &sig, err, sizeof err), -1);
    assert_non_null(strstr(err, "From"));
    free(signed_msg);
    free(ed_rec);
    sb_free(&sig);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tags),       cmocka_unit_test(test_canon_parse), cmocka_unit_test(test_canon_header),
        cmocka_unit_test(test_canon_body), cmocka_unit_test(test_body_limit),  cmocka_unit_test(test_strip_b),
        cmocka_unit_test(test_sign_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

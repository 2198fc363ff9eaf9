/*
 * test_dane.c - unit tests for src/core/dane.c: TLSA RDATA parsing, which records RFC 7672 lets
 * an SMTP client use, and matching a fixed certificate against records whose digests were
 * computed independently with the openssl and sha256sum/sha512sum command-line tools.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/dane.h"

/* A self-signed P-256 certificate for mx.dane.test (valid until 2126). */
static const char CERT_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBhjCCASugAwIBAgIUfM6V3hONCIhJcbRsPex/ih/2W14wCgYIKoZIzj0EAwIw\n"
    "FzEVMBMGA1UEAwwMbXguZGFuZS50ZXN0MCAXDTI2MTIwNTIyMDU1MloYDzIxMjYx\n"
    "MTExMjIwNTUyWjAXMRUwEwYDVQQDDAxteC5kYW5lLnRlc3QwWTATBgcqhkjOPQIB\n"
    "BggqhkjOPQMBBwNCAATCJzYHsV5KFiAuKpwB7UrOagc7hn6QEVNA+tDkFSsj/VSk\n"
    "L61nzM+iRqfvuYEsrQ6jNIWqu4INJEdkXrRFbnRjo1MwUTAdBgNVHQ4EFgQU+tJr\n"
    "SGX+b9Q7jAntOrVJrthGEHAwHwYDVR0jBBgwFoAU+tJrSGX+b9Q7jAntOrVJrthG\n"
    "EHAwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA/jshYHV7PMVM\n"
    "7o7W05pva0sWC1GBv8Q1F688uDYiTVsCIQDGAkPJw9cLXi3OGsgJX8qE207UV+16\n"
    "hnvnkEH2OCgUxw==\n"
    "-----END CERTIFICATE-----\n";

/* sha256(DER certificate), sha256(DER SubjectPublicKeyInfo), sha512(SPKI), the SPKI itself */
static const char CERT_SHA256[] = "36dcd45c4db3228a5b218d84b5e37b92f6b16ceb371f22c9680962f3ea7de164";
static const char SPKI_SHA256[] = "11200ab4591b34a9309a1eb798b8df2c69cc44ca1ba9db12127f6f4f1f5992de";
static const char SPKI_SHA512[] = "7d3e3ac47326398a326858dc306dbf3ad4861f62ce336b52ef2772ea90c6178b711ebdd1fa5dfcf96a76454595edabdf9dbb814fe70c2702a0c42049bfebfd83";
static const char SPKI_FULL[] = "3059301306072a8648ce3d020106082a8648ce3d03010703420004c2273607b15e4a16202e2a9c01ed4ace6a073b867e90115340fad0e4152b23fd54a42fad67cccfa246a7efb9812cad0ea33485aabb820d2447645eb4456e7463";

/* load_cert - the test certificate. */
static X509 *load_cert(void)
{
    BIO *b = BIO_new_mem_buf(CERT_PEM, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

/* rdata - usage, selector, matching type, then the hex data as bytes into buf; returns the length. */
static size_t rdata(unsigned char *buf, int u, int s, int m, const char *hex)
{
    buf[0] = (unsigned char)u, buf[1] = (unsigned char)s, buf[2] = (unsigned char)m;
    size_t n = 3;
    for (const char *p = hex; p[0] && p[1]; p += 2) {
        unsigned v;
        sscanf(p, "%2x", &v);
        buf[n++] = (unsigned char)v;
    }
    return n;
}

/* test_parse - fields, data pointing into the RDATA; too short is refused. */
static void test_parse(void **state)
{
    (void)state;
    unsigned char buf[200];
    dane_tlsa r;
    size_t n = rdata(buf, 3, 1, 1, SPKI_SHA256);
    assert_true(dane_tlsa_parse(buf, n, &r));
    assert_int_equal(r.usage, 3);
    assert_int_equal(r.selector, 1);
    assert_int_equal(r.mtype, 1);
    assert_int_equal(r.len, 32);
    assert_ptr_equal(r.data, buf + 3);
    assert_false(dane_tlsa_parse(buf, 3, &r));
    assert_false(dane_tlsa_parse(buf, 0, &r));
    assert_false(dane_tlsa_parse(NULL, 10, &r));
}

/* test_usable - RFC 7672: PKIX usages, unknown selectors and matching types, wrong digest lengths are unusable. */
static void test_usable(void **state)
{
    (void)state;
    static const struct {
        int u, s, m;
        size_t len;
        bool want;
    } cases[] = {
        {3, 1, 1, 32, true},  {3, 0, 1, 32, true},  {2, 0, 1, 32, true},  {2, 1, 2, 64, true},
        {3, 1, 0, 91, true},  {0, 0, 1, 32, false}, {1, 1, 1, 32, false}, {4, 1, 1, 32, false},
        {3, 2, 1, 32, false}, {3, 1, 3, 32, false}, {3, 1, 1, 31, false}, {3, 1, 2, 32, false},
        {3, 1, 1, 33, false}, {255, 1, 1, 32, false},
    };
    unsigned char data[100] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dane_tlsa r = {(uint8_t)cases[i].u, (uint8_t)cases[i].s, (uint8_t)cases[i].m, data, cases[i].len};
        print_message("case %zu: %d %d %d len %zu\n", i, cases[i].u, cases[i].s, cases[i].m, cases[i].len);
        assert_int_equal(dane_tlsa_usable(&r), cases[i].want);
    }
}

/* test_match - each selector and matching type against digests made by other tools; one flipped bit fails. */
static void test_match(void **state)
{
    (void)state;
    X509 *x = load_cert();
    static const struct {
        int s, m;
        const char *hex;
    } cases[] = {
        {0, 1, CERT_SHA256}, {1, 1, SPKI_SHA256}, {1, 2, SPKI_SHA512}, {1, 0, SPKI_FULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unsigned char buf[200];
        dane_tlsa r;
        print_message("case %zu: selector %d matching %d\n", i, cases[i].s, cases[i].m);
        assert_true(dane_tlsa_parse(buf, rdata(buf, 3, cases[i].s, cases[i].m, cases[i].hex), &r));
        assert_true(dane_match_cert(x, &r));
        buf[3 + r.len / 2] ^= 0x01;
        assert_false(dane_match_cert(x, &r));
        buf[3 + r.len / 2] ^= 0x01;
        r.selector = (uint8_t)(1 - cases[i].s); /* the other selector's bytes differ */
        assert_false(dane_match_cert(x, &r));
    }
    unsigned char buf[200];
    dane_tlsa r;
    assert_true(dane_tlsa_parse(buf, rdata(buf, 1, 1, 1, SPKI_SHA256), &r)); /* PKIX-EE: unusable */
    assert_false(dane_match_cert(x, &r));
    assert_false(dane_match_cert(NULL, &r));
    X509_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_usable),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

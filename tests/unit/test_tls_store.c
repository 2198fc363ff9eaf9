/*
 * test_tls_store.c - unit tests for the client context's trust store (src/core/tls.c): the
 * system CAs are found through the hashed directory without loading the bundle at start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/tls.h"

/* verifies - whether the certificate in PEM file path chains to ctx's trust store. */
static bool verifies(SSL_CTX *ctx, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!cert) return false;
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    bool ok = sc && X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(ctx), cert, NULL) == 1 && X509_verify_cert(sc) == 1;
    X509_STORE_CTX_free(sc);
    X509_free(cert);
    return ok;
}

/* test_system_root_found - a root of the system store (ca-certificates) verifies through the
 * lazily read directory. Skipped when the machine has no such root. */
static void test_system_root_found(void **state)
{
    (void)state;
    const char *root = "/etc/ssl/certs/ISRG_Root_X1.pem";
    if (access(root, R_OK) != 0) skip();
    char err[256] = "";
    SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof err);
    assert_non_null(ctx);
    assert_true(verifies(ctx, root));
    SSL_CTX_free(ctx);
}

/* test_bad_ca_file - a tls_ca_file that cannot be read is an error naming it. */
static void test_bad_ca_file(void **state)
{
    (void)state;
    char err[256] = "";
    SSL_CTX *ctx = tls_client_ctx("/nonexistent/ca.pem", err, sizeof err);
    assert_null(ctx);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_root_found),
        cmocka_unit_test(test_bad_ca_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

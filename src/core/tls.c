/* tls.c - OpenSSL contexts (see tls.h). */
#include "core/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

void tls_last_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, len, "unknown TLS error");
        return;
    }
    ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

static SSL_CTX *ctx_common(const SSL_METHOD *m, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(m);
    if (!ctx) {
        tls_last_error(err, errlen);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

bool tls_cipher_list_ok(const char *list)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    bool ok = ctx && SSL_CTX_set_cipher_list(ctx, list) == 1;
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *ciphers, int min_version, char *err,
                        size_t errlen)
{
    SSL_CTX *ctx = ctx_common(TLS_server_method(), err, errlen);
    if (!ctx) return NULL;
    if (min_version == 13) SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, ciphers ? ciphers : TLS_DEFAULT_CIPHERS) != 1) {
        char why[256];
        tls_last_error(why, sizeof why);
        snprintf(err, errlen, "tls_ciphers: %s", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key ? key : cert, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char why[256];
        tls_last_error(why, sizeof why);
        snprintf(err, errlen, "%s: %s", cert, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *tls_client_ctx(char *err, size_t errlen)
{
    SSL_CTX *ctx = ctx_common(TLS_client_method(), err, errlen);
    if (ctx) SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

void tls_describe(SSL *ssl, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

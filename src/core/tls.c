/* tls.c - OpenSSL contexts (see tls.h). */
#include "core/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "core/tls_sni.h"
#include "core/util.h"

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

/* The per-name contexts of a server context (tls_server_sni), kept in its ex_data so that they
 * live exactly as long as it: a handshake that started before a reload still finds them. */
typedef struct {
    tls_sni_table *names; /* a copy of the names: the configuration may go before the context */
    SSL_CTX **ctx;        /* one per entry */
} sni_set;

static int sni_index = -1;
static pthread_once_t sni_once = PTHREAD_ONCE_INIT;
static char sni_marker; /* the ex_data of a per-name context: "chosen by name" */

/* sni_set_free - ex_data free function: the server context is being freed. */
static void sni_set_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    sni_set *set = ptr;
    if (!set || ptr == &sni_marker) return;
    for (size_t i = 0; i < set->names->n; i++) SSL_CTX_free(set->ctx[i]);
    free(set->ctx);
    tls_sni_free(set->names);
    free(set);
}

/* sni_index_init - the ex_data slot of the per-name contexts (once per process). */
static void sni_index_init(void)
{
    sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_set_free);
}

/* sni_pick - the servername callback: switch the connection to the context for the client's name. */
static int sni_pick(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const sni_set *set = arg; /* owned by the server context the connection was made with: alive */
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    long i = name && set ? tls_sni_lookup(set->names, name) : -1;
    if (i < 0) return SSL_TLSEXT_ERR_NOACK; /* no name, or none of ours: the default certificate */
    if (SSL_get_SSL_CTX(ssl) != set->ctx[i]) SSL_set_SSL_CTX(ssl, set->ctx[i]);
    return SSL_TLSEXT_ERR_OK;
}

/* sni_copy - a copy of table t (names and paths). */
static tls_sni_table *sni_copy(const tls_sni_table *t)
{
    tls_sni_table *c = xcalloc(1, sizeof *c);
    c->v = xcalloc(t->n ? t->n : 1, sizeof *c->v);
    for (size_t i = 0; i < t->n; i++)
        c->v[i] = (tls_sni_entry){xstrdup(t->v[i].name), xstrdup(t->v[i].cert), xstrdup(t->v[i].key), t->v[i].line};
    c->n = t->n;
    return c;
}

bool tls_server_sni(SSL_CTX *def, const tls_sni_table *t, const char *ciphers, int min_version, char *err,
                    size_t errlen)
{
    if (!t || !t->n) return true;
    pthread_once(&sni_once, sni_index_init);
    if (sni_index < 0) {
        snprintf(err, errlen, "no ex_data index for SNI");
        return false;
    }
    sni_set *set = xcalloc(1, sizeof *set);
    set->names = sni_copy(t);
    set->ctx = xcalloc(t->n, sizeof *set->ctx);
    for (size_t i = 0; i < t->n; i++) {
        char why[512];
        set->ctx[i] = tls_server_ctx(t->v[i].cert, t->v[i].key, ciphers, min_version, why, sizeof why);
        if (!set->ctx[i]) {
            snprintf(err, errlen, "%d: %s: %s", t->v[i].line, t->v[i].name, why);
            sni_set_free(NULL, set, NULL, 0, 0, NULL);
            return false;
        }
        SSL_CTX_set_ex_data(set->ctx[i], sni_index, &sni_marker);
    }
    sni_set_free(NULL, SSL_CTX_get_ex_data(def, sni_index), NULL, 0, 0, NULL); /* a set given before */
    SSL_CTX_set_ex_data(def, sni_index, set);
    SSL_CTX_set_tlsext_servername_callback(def, sni_pick);
    SSL_CTX_set_tlsext_servername_arg(def, set);
    return true;
}

const char *tls_server_name(SSL *ssl, bool *matched)
{
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    *matched = name && sni_index >= 0 && SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sni_index) == &sni_marker;
    return name;
}

/* load_system_store - make the system's trusted CAs available to ctx. The hashed directory
 * (/etc/ssl/certs on Debian, or $SSL_CERT_DIR) is looked up lazily, one certificate when a chain
 * needs it; OpenSSL's default paths would also parse the whole bundle file into memory at start
 * (about 4 MiB of resident memory for a daemon that may never verify a certificate). The bundle
 * is loaded only when the directory is missing. */
static void load_system_store(SSL_CTX *ctx)
{
    const char *dir = getenv(X509_get_default_cert_dir_env());
    if (!dir || !*dir) dir = X509_get_default_cert_dir();
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && SSL_CTX_load_verify_dir(ctx, dir) == 1) return;
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) ERR_clear_error(); /* no system store: ca_file only */
}

SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = ctx_common(TLS_client_method(), err, errlen);
    if (!ctx) return NULL;
    /* SSL_VERIFY_NONE still builds and checks the chain: SSL_get_verify_result tells the outcome */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* DANE (RFC 7672): only connections that call SSL_dane_enable use it (deliver/dane_out.c) */
    if (SSL_CTX_dane_enable(ctx) <= 0) {
        tls_last_error(err, errlen);
        SSL_CTX_free(ctx);
        return NULL;
    }
    load_system_store(ctx);
    if (ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        char why[256];
        tls_last_error(why, sizeof why);
        snprintf(err, errlen, "tls_ca_file %s: %s", ca_file, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void tls_client_sni(SSL *ssl, const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (!host || !*host || host[0] == '[' || inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
        return; /* RFC 6066 3: literal IP addresses are not permitted in "HostName" */
    SSL_set_tlsext_host_name(ssl, host);
}

bool tls_client_verify(SSL *ssl, const char *const *names, size_t n, char *why, size_t whylen)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert) {
        snprintf(why, whylen, "no server certificate");
        return false;
    }
    bool ok = false;
    long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK) {
        snprintf(why, whylen, "certificate not trusted: %s", X509_verify_cert_error_string(vr));
        goto out;
    }
    for (size_t i = 0; i < n && !ok; i++) /* a leading '.' matches any host below it (X509_check_host) */
        ok = names[i] && X509_check_host(cert, names[i], 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
    if (!ok) snprintf(why, whylen, "certificate name does not match %s%s", n ? names[0] : "(no name)", n > 1 ? " or the other match= names" : "");
out:
    X509_free(cert);
    ERR_clear_error();
    return ok;
}

void tls_describe(SSL *ssl, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

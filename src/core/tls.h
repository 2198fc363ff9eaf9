/*
 * tls.h - OpenSSL 3 contexts for STARTTLS, server and client side (TLS 1.2 and 1.3; SNI and certificate checks on the client).
 * Contexts are created at start-up and on reload (loop thread) and are read-only afterwards.
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H
#include <stdbool.h>
#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

/* The TLS 1.2 cipher suites a server offers unless option.dat says otherwise: forward secrecy and
 * AEAD only (no static RSA key exchange, no CBC). TLS 1.3 suites are OpenSSL's defaults. */
#define TLS_DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

/* tls_server_ctx - a server context with the certificate chain and key (PEM), the TLS <= 1.2 cipher
 * list ciphers (NULL: TLS_DEFAULT_CIPHERS) and the lowest version min_version (12 or 13); NULL +
 * err on failure. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *ciphers, int min_version, char *err,
                        size_t errlen);
struct tls_sni_table;
/* tls_server_sni - give the server context def one context per entry of t (core/tls_sni.h), each
 * with the entry's certificate and key and def's other settings (ciphers, min_version as for
 * tls_server_ctx), chosen in the handshake by the client's server name; a client without one or
 * with a name t has no entry for keeps def's certificate. The contexts live as long as def.
 * False + err ("N: name: file: why", N the table's line) when a certificate or key does not load (def unchanged). */
bool tls_server_sni(SSL_CTX *def, const struct tls_sni_table *t, const char *ciphers, int min_version, char *err,
                    size_t errlen);
/* tls_server_name - after a server handshake: the name the client asked for (SNI, NULL when
 * none) and whether a tls_sni_file entry's certificate was presented for it. */
const char *tls_server_name(SSL *ssl, bool *matched);
/* tls_cipher_list_ok - whether OpenSSL accepts list as a TLS <= 1.2 cipher list (at least one suite). */
bool tls_cipher_list_ok(const char *list);
/* tls_client_ctx - the client context. The handshake never fails on the certificate (opportunistic TLS,
 * RFC 7435): the chain is checked against the system CA store and ca_file (PEM, NULL: none), and
 * tls_client_verify judges the result afterwards when the destination's policy asks for it. DANE is
 * enabled on the context (SSL_CTX_dane_enable); only connections that enable it use it. */
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen);
/* tls_client_sni - send host as the server name (SNI, RFC 6066) unless it is an IP address literal. */
void tls_client_sni(SSL *ssl, const char *host);
/* tls_client_verify - after the handshake: whether the chain verified and the certificate carries one of
 * names[0..n) (a name starting with '.' matches any host below it); why gets the reason when not. */
bool tls_client_verify(SSL *ssl, const char *const *names, size_t n, char *why, size_t whylen);
/* tls_describe - "TLSv1.3 TLS_AES_256_GCM_SHA384" for an established connection, into buf. */
void tls_describe(SSL *ssl, char *buf, size_t len);
/* tls_last_error - the last OpenSSL error as text, into buf. */
void tls_last_error(char *buf, size_t len);

#endif

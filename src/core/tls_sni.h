/*
 * tls_sni.h - the server's certificates by name (option tls_sni_file, doc/tls.md): which
 * certificate and key the SMTP server presents to a client that asks for a server name (SNI,
 * RFC 6066) during STARTTLS or implicit TLS. Pure: text in, an immutable table out, no files or
 * OpenSSL; the configuration loader reads the file (conf/tls_sni_load.c), core/tls.c builds one
 * server context per entry and picks it in the handshake. Built at configuration load and
 * read-only afterwards, so any thread may look it up.
 *
 * File format, one entry a line ('#' comments and blank lines ignored):
 *     # name              certificate chain (PEM)     private key (PEM; default: the certificate file)
 *     mail.example.com    certs/example.com.pem       certs/example.com.key
 *     *.example.org       certs/wild.example.org.pem
 * A name is a host name (exactly that name) or "*.domain" (any name one label below domain, as a
 * wildcard certificate matches); names are compared without case and without a final dot. Paths
 * without a leading '/' are relative to the configuration directory. A client that sends no name
 * or a name without an entry gets the default certificate (tls_certificate).
 */
#ifndef SLUICE_TLS_SNI_H
#define SLUICE_TLS_SNI_H
#include <stddef.h>

typedef struct {
    char *name;     /* "mail.example.com" or "*.example.org", lower case */
    char *cert;     /* certificate chain file, absolute or relative to the configuration directory as given */
    char *key;      /* private key file (the certificate file when the line names none) */
    int line;       /* where it is in the file (from 1), for messages */
} tls_sni_entry;

typedef struct tls_sni_table {
    tls_sni_entry *v;
    size_t n;
} tls_sni_table;

/* tls_sni_err_cb - called once per malformed line (line numbers from 1). */
typedef void (*tls_sni_err_cb)(void *arg, int line, const char *msg);

/* tls_sni_parse - a table from the file's text, relative paths joined to dir (NULL: kept as
 * written); every malformed line is reported through err and skipped. The caller frees the
 * table (possibly empty) with tls_sni_free. */
tls_sni_table *tls_sni_parse(const char *text, const char *dir, tls_sni_err_cb err, void *arg);
/* tls_sni_free - free a table (NULL is fine). */
void tls_sni_free(tls_sni_table *t);
/* tls_sni_lookup - the index of the entry for a client's server name: the exact name, else
 * "*." and the name without its first label; -1 when none (or name is not a host name). */
long tls_sni_lookup(const tls_sni_table *t, const char *name);

#endif

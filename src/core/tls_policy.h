/*
 * tls_policy.h - the outbound TLS policy table (option tls_policy_file, doc/tls.md): which TLS a
 * destination domain gets, parsed from text into an immutable table, and the level a delivery
 * applies. Pure: no files, sockets or OpenSSL; the configuration loader reads the file (conf.c)
 * and the SMTP client adapter looks entries up (deliver/smtp_out.c). The table is built at
 * configuration load and read-only afterwards, so any thread may look it up.
 *
 * File format, one entry a line ('#' comments and blank lines ignored):
 *     example.com        verify match=mx1.example.net:.example.net
 *     .example.org       encrypt
 *     *                  may
 * The first field is a domain (exactly that domain), ".suffix" (every domain below the suffix,
 * not the suffix itself) or "*" (every domain without an entry of its own). Levels: none, may,
 * encrypt, verify, dane, dane-only, sts (see doc/tls.md for what each does).
 */
#ifndef SLUICE_TLS_POLICY_H
#define SLUICE_TLS_POLICY_H
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"

enum tls_level {
    TLS_LEVEL_DEFAULT = 0, /* no entry: the channel keyword decides (maytls = may, musttls = encrypt) */
    TLS_LEVEL_NONE,        /* never STARTTLS */
    TLS_LEVEL_MAY,         /* STARTTLS when offered, any certificate; clear text otherwise (RFC 7435) */
    TLS_LEVEL_ENCRYPT,     /* STARTTLS required, any certificate */
    TLS_LEVEL_VERIFY,      /* STARTTLS required, the chain must verify and a name match */
    TLS_LEVEL_DANE,        /* DANE where secure TLSA records exist, else may (RFC 7672 opportunistic) */
    TLS_LEVEL_DANE_ONLY,   /* DANE required: no secure TLSA records defers */
    TLS_LEVEL_STS          /* MTA-STS (RFC 8461) */
};

typedef struct {
    char *pattern;         /* "example.com", ".example.com" or "*", lower case */
    enum tls_level level;
    strvec match;          /* match= names the certificate must carry (empty: the MX host name) */
    int line;              /* where it is in the file (from 1), for messages */
} tls_policy_entry;

typedef struct tls_policy_table {
    tls_policy_entry *v;
    size_t n;
} tls_policy_table;

/* tls_policy_err_cb - called once per malformed line (line numbers from 1). */
typedef void (*tls_policy_err_cb)(void *arg, int line, const char *msg);

/* tls_policy_parse - a table from the file's text; every malformed line is reported through err
 * and skipped. Returns a table (possibly empty) that the caller frees with tls_policy_free. */
tls_policy_table *tls_policy_parse(const char *text, tls_policy_err_cb err, void *arg);
/* tls_policy_free - free a table (NULL is fine). */
void tls_policy_free(tls_policy_table *t);
/* tls_policy_lookup - the entry for domain: exact, then the longest ".suffix", then "*"; NULL when none. */
const tls_policy_entry *tls_policy_lookup(const tls_policy_table *t, const char *domain);
/* tls_level_name - "none", "may", ... for logs; "default" for TLS_LEVEL_DEFAULT. */
const char *tls_level_name(enum tls_level l);
/* tls_level_parse - the level named s, or TLS_LEVEL_DEFAULT when s names none. */
enum tls_level tls_level_parse(const char *s);

#endif

/*
 * dkim_keys.h - the DKIM signing keys table (option.dat dkim_keys_file), loaded whole with the
 * configuration so no key file is read while mail flows. One line per key:
 *
 *     domain selector algorithm keyfile [headers=from:to:subject...]
 *
 * algorithm is rsa-sha256 or ed25519-sha256 and must match the key in keyfile (PEM, relative
 * paths against the table's folder); "#" starts a comment. A domain may have several lines
 * (several selectors): every one of them signs. Errors are "file:line: message".
 *
 * Threads: loaded at configuration load; read-only afterwards, so any thread may read it.
 */
#ifndef SLUICE_DKIM_KEYS_H
#define SLUICE_DKIM_KEYS_H
#include "conf/conf.h"
#include "dkim/dkim.h"

/* One key of the table. */
typedef struct {
    char *domain, *selector;
    struct evp_pkey_st *key;
    char **headers;    /* headers= names (lower case), or NULL for the signer's default set */
    size_t n_headers;
} dkim_key;

typedef struct dkim_keys {
    dkim_key *k;
    size_t n;
} dkim_keys;

/* dkim_keys_load - the table in file (keys read now); NULL with errors added to errs (an empty table is not an error). */
dkim_keys *dkim_keys_load(const char *file, conf_errors *errs);
/* dkim_keys_free - release t (NULL allowed). */
void dkim_keys_free(dkim_keys *t);
/* dkim_keys_domain - the table's domain that signs for domain: itself, else its nearest parent
 * in the table; NULL when none. The result points into t. */
const char *dkim_keys_domain(const dkim_keys *t, const char *domain);

#endif

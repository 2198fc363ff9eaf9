/*
 * dkim_keys.c - the DKIM signing keys table (see dkim_keys.h).
 */
#include "dkim/dkim_keys.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* key_free - release one key's fields. */
static void key_free(dkim_key *k)
{
    free(k->domain);
    free(k->selector);
    EVP_PKEY_free(k->key);
    for (size_t i = 0; i < k->n_headers; i++) free(k->headers[i]);
    free(k->headers);
}

void dkim_keys_free(dkim_keys *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) key_free(&t->k[i]);
    free(t->k);
    free(t);
}

/* key_path - keyfile relative to the table's folder. */
static char *key_path(const char *table, const char *keyfile)
{
    if (keyfile[0] == '/') return xstrdup(keyfile);
    const char *slash = strrchr(table, '/');
    if (!slash) return xstrdup(keyfile);
    return xasprintf("%.*s/%s", (int)(slash - table), table, keyfile);
}

/* parse_headers - "from:to:subject" into k's header list; false when a name is empty or lacks From. */
static bool parse_headers(const char *v, dkim_key *k)
{
    bool from = false;
    char *copy = xstrdup(v), *save = NULL;
    for (char *n = strtok_r(copy, ":", &save); n; n = strtok_r(NULL, ":", &save)) {
        for (char *c = n; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        if (!strcmp(n, "from")) from = true;
        k->headers = xrealloc(k->headers, (k->n_headers + 1) * sizeof *k->headers);
        k->headers[k->n_headers++] = xstrdup(n);
    }
    free(copy);
    return from; /* RFC 6376 §5.4: From must be signed */
}

/* load_key - the PEM key of a line, of the type its algorithm names; NULL after an error. */
static struct evp_pkey_st *load_key(const char *file, int line, const char *path, const char *alg, conf_errors *errs)
{
    conf_errors tmp = {0};
    char *pem = conf_file_read(path, true, &tmp);
    if (!pem) {
        conf_error(errs, file, line, "cannot read key file %s", path);
        sv_free(&tmp.msgs);
        return NULL;
    }
    char err[200] = "";
    EVP_PKEY *key = dkim_key_pem(pem, err, sizeof err);
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    if (!key) {
        conf_error(errs, file, line, "%s: not a private key: %s", path, err);
        return NULL;
    }
    bool is_ed = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519, is_rsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
    if ((!strcmp(alg, "rsa-sha256") && !is_rsa) || (!strcmp(alg, "ed25519-sha256") && !is_ed)) {
        conf_error(errs, file, line, "%s: an %s key does not fit %s", path, is_ed ? "Ed25519" : is_rsa ? "RSA" : "unknown", alg);
        EVP_PKEY_free(key);
        return NULL;
    }
    if (is_rsa && EVP_PKEY_get_bits(key) < 1024) {
        conf_error(errs, file, line, "%s: an RSA key of %d bits (at least 1024, RFC 8301)", path, EVP_PKEY_get_bits(key));
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

/* parse_line - one table line (words in w) into t; false after an error. */
static bool parse_line(const char *file, int line, char **w, size_t n, dkim_keys *t, conf_errors *errs)
{
    if (n < 4 || n > 5) {
        conf_error(errs, file, line, "expected: domain selector rsa-sha256|ed25519-sha256 keyfile [headers=a:b:...]");
        return false;
    }
    if (strcmp(w[2], "rsa-sha256") && strcmp(w[2], "ed25519-sha256")) {
        conf_error(errs, file, line, "unknown algorithm '%s' (rsa-sha256 or ed25519-sha256)", w[2]);
        return false;
    }
    if (!strchr(w[0], '.') || strpbrk(w[0], ";= ") || strpbrk(w[1], ";= .")) {
        conf_error(errs, file, line, "bad domain '%s' or selector '%s'", w[0], w[1]);
        return false;
    }
    dkim_key k = {0};
    if (n == 5 && (strncmp(w[4], "headers=", 8) || !parse_headers(w[4] + 8, &k))) {
        conf_error(errs, file, line, "expected headers=NAME:NAME:... naming From, not '%s'", w[4]);
        key_free(&k);
        return false;
    }
    char *path = key_path(file, w[3]);
    k.key = load_key(file, line, path, w[2], errs);
    free(path);
    if (!k.key) {
        key_free(&k);
        return false;
    }
    k.domain = xstrdup(w[0]);
    for (char *c = k.domain; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    k.selector = xstrdup(w[1]);
    t->k = xrealloc(t->k, (t->n + 1) * sizeof *t->k);
    t->k[t->n++] = k;
    return true;
}

dkim_keys *dkim_keys_load(const char *file, conf_errors *errs)
{
    char *text = conf_file_read(file, true, errs);
    if (!text) return NULL;
    dkim_keys *t = xcalloc(1, sizeof *t);
    bool ok = true;
    int line = 0;
    for (char *l = text, *next; l && *l; l = next) {
        line++;
        char *nl = strchr(l, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        char *hash = strchr(l, '#');
        if (hash) *hash = '\0';
        char *w[6];
        size_t n = 0;
        char *wsave = NULL;
        for (char *x = strtok_r(l, " \t\r", &wsave); x && n < 6; x = strtok_r(NULL, " \t\r", &wsave)) w[n++] = x;
        if (n == 0) continue;
        if (!parse_line(file, line, w, n, t, errs)) ok = false;
    }
    free(text);
    if (ok) return t;
    dkim_keys_free(t);
    return NULL;
}

const char *dkim_keys_domain(const dkim_keys *t, const char *domain)
{
    for (const char *d = domain; d && *d; d = strchr(d, '.') ? strchr(d, '.') + 1 : NULL)
        for (size_t i = 0; t && i < t->n; i++)
            if (str_ieq(t->k[i].domain, d)) return t->k[i].domain;
    return NULL;
}

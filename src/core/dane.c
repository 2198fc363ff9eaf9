/* dane.c - TLSA records and certificate matching (see dane.h). */
#include "core/dane.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

bool dane_tlsa_parse(const unsigned char *rdata, size_t len, dane_tlsa *r)
{
    if (!rdata || len < 4) return false;
    r->usage = rdata[0];
    r->selector = rdata[1];
    r->mtype = rdata[2];
    r->data = rdata + 3;
    r->len = len - 3;
    return true;
}

bool dane_tlsa_usable(const dane_tlsa *r)
{
    if (r->usage != DANE_USAGE_DANE_TA && r->usage != DANE_USAGE_DANE_EE) return false;
    if (r->selector != DANE_SELECTOR_CERT && r->selector != DANE_SELECTOR_SPKI) return false;
    switch (r->mtype) {
    case DANE_MATCH_FULL: return r->len > 0;
    case DANE_MATCH_SHA256: return r->len == 32;
    case DANE_MATCH_SHA512: return r->len == 64;
    default: return false;
    }
}

/* selected_der - the DER bytes r's selector picks from cert (caller frees with OPENSSL_free); -1 on failure. */
static int selected_der(X509 *cert, uint8_t selector, unsigned char **der)
{
    *der = NULL;
    if (selector == DANE_SELECTOR_CERT) return i2d_X509(cert, der);
    if (selector == DANE_SELECTOR_SPKI) return i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), der);
    return -1;
}

bool dane_match_cert(X509 *cert, const dane_tlsa *r)
{
    if (!cert || !dane_tlsa_usable(r)) return false;
    unsigned char *der = NULL;
    int n = selected_der(cert, r->selector, &der);
    if (n <= 0) return false;
    bool ok = false;
    if (r->mtype == DANE_MATCH_FULL) {
        ok = (size_t)n == r->len && memcmp(der, r->data, r->len) == 0;
    } else {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        const EVP_MD *alg = r->mtype == DANE_MATCH_SHA256 ? EVP_sha256() : EVP_sha512();
        ok = EVP_Digest(der, (size_t)n, md, &mdlen, alg, NULL) == 1 && mdlen == r->len &&
             CRYPTO_memcmp(md, r->data, r->len) == 0;
    }
    OPENSSL_free(der);
    return ok;
}

/* dane_out.c - DANE decisions and certificate checks for the SMTP client (see dane_out.h). */
#include "deliver/dane_out.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dane.h"

/* verdict - a dane_verdict. */
static dane_verdict verdict(dane_host_mode mode, dane_result_type rt, const char *why)
{
    dane_verdict v = {mode, rt, why};
    return v;
}

dane_verdict dane_decide(enum tls_level level, bool mx_secure, sl_result tlsa_res, bool tlsa_secure,
                         size_t n_records, size_t n_usable)
{
    bool only = level == TLS_LEVEL_DANE_ONLY;
    if (level != TLS_LEVEL_DANE && !only) return verdict(DANE_HOST_NONE, DANE_RT_NONE, "not a DANE level");
    /* RFC 7672 2.2.1: TLSA records only count for MX hosts found through a secure MX RRset */
    if (!mx_secure)
        return only ? verdict(DANE_HOST_SKIP, DANE_RT_DANE_REQUIRED, "MX records not DNSSEC-validated")
                    : verdict(DANE_HOST_NONE, DANE_RT_NONE, "MX records not DNSSEC-validated");
    /* 2.2.2: a failed TLSA lookup of a secure MX host may be an attack: never fall back to clear text */
    if (tlsa_res == SL_TEMP) return verdict(DANE_HOST_SKIP, DANE_RT_DNSSEC_INVALID, "TLSA lookup failed");
    if (tlsa_res == SL_PERM || !tlsa_secure || n_records == 0) {
        const char *why = tlsa_res == SL_PERM || n_records == 0 ? "no TLSA records" : "TLSA records not DNSSEC-validated";
        return only ? verdict(DANE_HOST_SKIP, DANE_RT_DANE_REQUIRED, why) : verdict(DANE_HOST_NONE, DANE_RT_NONE, why);
    }
    /* 3.1.3 and 2.2: secure records but none usable: encrypt, without authentication */
    if (n_usable == 0)
        return only ? verdict(DANE_HOST_SKIP, DANE_RT_TLSA_INVALID, "no usable TLSA records")
                    : verdict(DANE_HOST_ENCRYPT, DANE_RT_TLSA_INVALID, "no usable TLSA records");
    return verdict(DANE_HOST_VERIFY, DANE_RT_NONE, "secure usable TLSA records");
}

const char *dane_result_type_name(dane_result_type rt)
{
    static const char *names[] = {
        [DANE_RT_NONE] = "",
        [DANE_RT_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
        [DANE_RT_CERT_HOST_MISMATCH] = "certificate-host-mismatch",
        [DANE_RT_VALIDATION_FAILURE] = "validation-failure",
        [DANE_RT_TLSA_INVALID] = "tlsa-invalid",
        [DANE_RT_DNSSEC_INVALID] = "dnssec-invalid",
        [DANE_RT_DANE_REQUIRED] = "dane-required",
    };
    return (size_t)rt < SL_ARRAY_LEN(names) ? names[rt] : "";
}

const char *dane_mode_name(dane_host_mode m)
{
    static const char *names[] = {"none", "verify", "encrypt", "skip"};
    return (size_t)m < SL_ARRAY_LEN(names) ? names[m] : "?";
}

void dane_host_clear(dane_host *h)
{
    for (size_t i = 0; i < h->n; i++) free(h->recs[i].data);
    free(h->recs);
    free(h->host);
    memset(h, 0, sizeof *h);
}

void dane_host_set(dane_host *h, const char *host, enum tls_level level, bool mx_secure, sl_result tlsa_res,
                   bool tlsa_secure, const dns_rdata *rr, size_t n)
{
    dane_host_clear(h);
    h->host = xstrdup(host);
    h->recs = xcalloc(n ? n : 1, sizeof *h->recs);
    for (size_t i = 0; i < n && tlsa_res == SL_OK; i++) {
        dane_tlsa t;
        if (!dane_tlsa_parse(rr[i].rdata, rr[i].len, &t) || !dane_tlsa_usable(&t)) continue;
        dane_rec *r = &h->recs[h->n++];
        r->usage = t.usage;
        r->selector = t.selector;
        r->mtype = t.mtype;
        r->data = xmalloc(t.len);
        memcpy(r->data, t.data, t.len);
        r->len = t.len;
    }
    h->v = dane_decide(level, mx_secure, tlsa_res, tlsa_secure, tlsa_res == SL_OK ? n : 0, h->n);
}

void dane_host_strings(const dane_host *h, strvec *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < h->n; i++) {
        const dane_rec *r = &h->recs[i];
        char head[16];
        int hl = snprintf(head, sizeof head, "%u %u %u ", r->usage, r->selector, r->mtype);
        char *s = xmalloc((size_t)hl + 2 * r->len + 1);
        memcpy(s, head, (size_t)hl);
        for (size_t k = 0; k < r->len; k++) {
            s[hl + 2 * k] = hex[r->data[k] >> 4];
            s[hl + 2 * k + 1] = hex[r->data[k] & 15];
        }
        s[(size_t)hl + 2 * r->len] = '\0';
        sv_push_owned(out, s);
    }
}

bool dane_host_authenticates(const dane_host *h)
{
    return h && h->host && h->v.mode == DANE_HOST_VERIFY;
}

bool dane_ssl_prepare(const dane_host *h, SSL *ssl, char *why, size_t whylen)
{
    if (SSL_dane_enable(ssl, h->host) <= 0) {
        snprintf(why, whylen, "DANE could not be enabled for %s", h->host);
        return false;
    }
    /* RFC 7672 3.1.1: DANE-EE(3) authenticates the key alone: no name, no validity period */
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    int added = 0;
    for (size_t i = 0; i < h->n; i++) {
        const dane_rec *r = &h->recs[i];
        if (SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype, r->data, r->len) > 0) added++;
    }
    if (!added) snprintf(why, whylen, "OpenSSL took none of the TLSA records of %s", h->host);
    return added > 0;
}

bool dane_ssl_check(const dane_host *h, SSL *ssl, char *match, size_t matchlen, char *why, size_t whylen,
                    dane_result_type *rt)
{
    X509 *mcert = NULL;
    EVP_PKEY *mspki = NULL;
    int depth = SSL_get0_dane_authority(ssl, &mcert, &mspki);
    long vr = SSL_get_verify_result(ssl);
    if (depth >= 0 && vr == X509_V_OK) {
        uint8_t usage = 0, selector = 0, mtype = 0;
        const unsigned char *data = NULL;
        size_t dlen = 0;
        SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, &data, &dlen);
        snprintf(match, matchlen, "usage=%u selector=%u mtype=%u depth=%d", usage, selector, mtype, depth);
        *rt = DANE_RT_NONE;
        return true;
    }
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH) {
        *rt = DANE_RT_CERT_HOST_MISMATCH;
        snprintf(why, whylen, "DANE-TA: the certificate does not name %s", h->host);
    } else {
        *rt = DANE_RT_VALIDATION_FAILURE;
        snprintf(why, whylen, "no TLSA record of %s matches the certificate (%s)", h->host,
                 vr == X509_V_OK ? "no DANE match" : X509_verify_cert_error_string(vr));
    }
    return false;
}

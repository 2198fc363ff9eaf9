/*
 * dane.h - TLSA records for DANE (RFC 6698, RFC 7672 for SMTP): parsing a record's RDATA and
 * matching a certificate against one. Pure functions on bytes (OpenSSL only for DER encoding and
 * digests): no DNS, no sockets. Any thread may call them.
 *
 * The SMTP client's DANE levels (deliver/dane_out.c) parse and filter TLSA records with these;
 * the certificate matching itself is OpenSSL's there (SSL_dane_tlsa_add).
 */
#ifndef SLUICE_DANE_H
#define SLUICE_DANE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct x509_st X509;

enum { DANE_USAGE_PKIX_TA = 0, DANE_USAGE_PKIX_EE = 1, DANE_USAGE_DANE_TA = 2, DANE_USAGE_DANE_EE = 3 };
enum { DANE_SELECTOR_CERT = 0, DANE_SELECTOR_SPKI = 1 };
enum { DANE_MATCH_FULL = 0, DANE_MATCH_SHA256 = 1, DANE_MATCH_SHA512 = 2 };

typedef struct {
    uint8_t usage, selector, mtype;
    const unsigned char *data; /* certificate association data: points into the RDATA given */
    size_t len;
} dane_tlsa;

/* dane_tlsa_parse - the TLSA RDATA rdata[0..len) into r (data points into rdata); false when it is
 * shorter than 4 bytes (usage, selector, matching type, at least one byte of data). */
bool dane_tlsa_parse(const unsigned char *rdata, size_t len, dane_tlsa *r);
/* dane_tlsa_usable - whether r can authenticate an SMTP server (RFC 7672 3.1.3: usages DANE-TA(2)
 * and DANE-EE(3) only, selector 0 or 1, matching 0, 1 or 2 with the digest's exact length). */
bool dane_tlsa_usable(const dane_tlsa *r);
/* dane_match_cert - whether cert is the one r associates (selector and matching type of r; the
 * usage is the caller's business: which certificate of the chain to offer). */
bool dane_match_cert(X509 *cert, const dane_tlsa *r);

#endif

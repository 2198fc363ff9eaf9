/*
 * dane_out.h - DANE for the SMTP client (RFC 7672): what the TLS policy levels `dane` and
 * `dane-only` make of one MX host, given what the DNSSEC-aware lookups (dns/dnssec.h) said, and
 * the certificate check of a connection to it with OpenSSL 3's DANE support.
 *
 * - dane_decide is the decision, pure (unit-tested): for a host, whether STARTTLS is mandatory and
 *   the certificate must match a TLSA record (DANE_HOST_VERIFY), TLS is mandatory without
 *   authentication (DANE_HOST_ENCRYPT), DANE does not apply (DANE_HOST_NONE: `may`), or the host
 *   must be skipped (DANE_HOST_SKIP: 4.7.5, next MX, then defer; never clear text).
 * - Every DANE failure is given its RFC 8460 4.3 result type here (dane_result_type), the one
 *   place a TLS-RPT reporter can take it from (dane_failure_of / the `result_type=` log value).
 * - dane_host keeps one host's verdict and usable records for its connection: the TLS adapter
 *   (smtp_out.c) asks dane_ssl_prepare before the handshake and dane_ssl_check after it.
 * - For MTA-STS (RFC 8461 2: DANE wins where both exist): dane_host_authenticates says "this MX
 *   host has secure, usable TLSA records", so a policy engine can step aside for it.
 *
 * Loop thread only (per connection state); dane_decide and the name functions are pure.
 */
#ifndef SLUICE_DANE_OUT_H
#define SLUICE_DANE_OUT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tls_policy.h"
#include "core/util.h"
#include "dns/dnssec.h"

typedef struct ssl_st SSL;

typedef enum {
    DANE_HOST_NONE = 0, /* DANE does not apply: opportunistic TLS (`may`) */
    DANE_HOST_VERIFY,   /* secure usable TLSA: STARTTLS required, the certificate must match */
    DANE_HOST_ENCRYPT,  /* secure TLSA, none usable: STARTTLS required, any certificate */
    DANE_HOST_SKIP      /* this host may not be used: 4.7.5, the next MX, then defer */
} dane_host_mode;

/* RFC 8460 4.3 result types of DANE failures (TLS-RPT). */
typedef enum {
    DANE_RT_NONE = 0,
    DANE_RT_STARTTLS_NOT_SUPPORTED, /* "starttls-not-supported" */
    DANE_RT_CERT_HOST_MISMATCH,     /* "certificate-host-mismatch" (DANE-TA: no name matched) */
    DANE_RT_VALIDATION_FAILURE,     /* "validation-failure" (no TLSA record matched the chain) */
    DANE_RT_TLSA_INVALID,           /* "tlsa-invalid" (secure TLSA records, none usable) */
    DANE_RT_DNSSEC_INVALID,         /* "dnssec-invalid" (the TLSA lookup failed: bogus, SERVFAIL, timeout) */
    DANE_RT_DANE_REQUIRED           /* "dane-required" (dane-only without secure usable TLSA) */
} dane_result_type;

typedef struct {
    dane_host_mode mode;
    dane_result_type rt; /* the failure to report (also with ENCRYPT: the TLSA set was unusable) */
    const char *why;     /* static text for logs */
} dane_verdict;

/* dane_decide - what level (TLS_LEVEL_DANE or TLS_LEVEL_DANE_ONLY) makes of one MX host: mx_secure
 * is the MX RRset's security; tlsa_res/tlsa_secure/n_records the TLSA lookup of the host
 * (dns_tlsa_cb); n_usable how many of the records dane_tlsa_usable accepts. Pure. */
dane_verdict dane_decide(enum tls_level level, bool mx_secure, sl_result tlsa_res, bool tlsa_secure,
                         size_t n_records, size_t n_usable);
/* dane_result_type_name - the RFC 8460 name ("validation-failure", ...); "" for DANE_RT_NONE. */
const char *dane_result_type_name(dane_result_type rt);
/* dane_mode_name - "none", "verify", "encrypt", "skip" for logs. */
const char *dane_mode_name(dane_host_mode m);

/* One usable TLSA record, owned. */
typedef struct {
    uint8_t usage, selector, mtype;
    unsigned char *data;
    size_t len;
} dane_rec;

/* One MX host's DANE state for the connections to it. */
typedef struct {
    char *host;        /* the MX host name: the TLSA base domain and the DANE-TA reference name */
    dane_verdict v;
    dane_rec *recs;    /* the usable records (VERIFY) */
    size_t n;
} dane_host;

/* dane_host_set - decide for host from the lookups' results (see dane_decide) and keep the usable
 * records of rr[0..n) (copied). Replaces what h held. */
void dane_host_set(dane_host *h, const char *host, enum tls_level level, bool mx_secure, sl_result tlsa_res,
                   bool tlsa_secure, const dns_rdata *rr, size_t n);
/* dane_host_strings - h's usable TLSA records in presentation form ("3 1 1 0A1B..."), appended to
 * out (TLS-RPT's policy-string, RFC 8460 4.4). */
void dane_host_strings(const dane_host *h, strvec *out);
/* dane_host_clear - forget h's host (mode NONE). */
void dane_host_clear(dane_host *h);
/* dane_host_authenticates - whether h's host has secure, usable TLSA records (DANE_HOST_VERIFY):
 * the hook that lets MTA-STS yield to DANE (RFC 8461 2). */
bool dane_host_authenticates(const dane_host *h);

/* dane_ssl_prepare - before the handshake: enable DANE on ssl for h's host (the client context
 * must have had SSL_CTX_dane_enable, core/tls.c) with h's records, no name checks for DANE-EE;
 * false (why filled) when OpenSSL took no record. */
bool dane_ssl_prepare(const dane_host *h, SSL *ssl, char *why, size_t whylen);
/* dane_ssl_check - after the handshake: whether a TLSA record matched and the chain verified;
 * match gets "usage=3 selector=1 mtype=1 depth=0" on success, why and *rt the reason otherwise. */
bool dane_ssl_check(const dane_host *h, SSL *ssl, char *match, size_t matchlen, char *why, size_t whylen,
                    dane_result_type *rt);

#endif

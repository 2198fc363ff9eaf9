/*
 * sts_result.h - what went wrong with MTA-STS, in the words of TLS reporting (RFC 8460 §4.3): the
 * one place where a failure's result type is decided (sts_result_type_of) and the one place
 * every failure is logged (sts_result_record). Failed policy fetches also go to a hook
 * (sts_result_set_fetch_hook) that TLS-RPT's reports count them through, set by the daemon so
 * that this layer does not know the reporter; the sessions' failures are counted by
 * deliver/sts_out.c. Pure decisions plus a log line; the loop thread calls sts_result_record,
 * the fetch functions and the hook setter, any thread may call the rest.
 */
#ifndef SLUICE_STS_RESULT_H
#define SLUICE_STS_RESULT_H
#include <stdbool.h>

#include "sts/sts_policy.h"

/* RFC 8460 §4.3 result types that MTA-STS can produce. */
enum sts_result_type {
    STS_RT_NONE = 0,               /* no failure */
    STS_RT_STARTTLS_NOT_SUPPORTED, /* starttls-not-supported */
    STS_RT_CERT_HOST_MISMATCH,     /* certificate-host-mismatch */
    STS_RT_CERT_EXPIRED,           /* certificate-expired */
    STS_RT_CERT_NOT_TRUSTED,       /* certificate-not-trusted */
    STS_RT_VALIDATION_FAILURE,     /* validation-failure */
    STS_RT_POLICY_FETCH_ERROR,     /* sts-policy-fetch-error */
    STS_RT_POLICY_INVALID,         /* sts-policy-invalid */
    STS_RT_WEBPKI_INVALID          /* sts-webpki-invalid */
};

/* Where a failure happened. */
enum sts_fail_stage {
    STS_FAIL_FETCH,     /* the HTTPS GET of the policy failed (connect, TLS, status, size, time) */
    STS_FAIL_POLICY,    /* what was fetched is not a valid policy (or not text/plain) */
    STS_FAIL_MX,        /* the MX host does not match the policy's mx patterns */
    STS_FAIL_STARTTLS,  /* the MX host does not offer STARTTLS */
    STS_FAIL_HANDSHAKE, /* the TLS handshake with the MX host failed */
    STS_FAIL_CERT       /* the MX host's certificate failed */
};

/* The facts of one failure, as its finder knows them. */
typedef struct {
    enum sts_fail_stage stage;
    bool webpki;   /* FETCH: the policy server's certificate did not verify */
    bool chain_ok; /* CERT: the chain verified against the trusted CAs */
    bool expired;  /* CERT: the chain failed because a certificate had expired */
    bool name_ok;  /* CERT: the certificate names the MX host */
} sts_fail_facts;

/* sts_result_type_of - the RFC 8460 result type of a failure. */
enum sts_result_type sts_result_type_of(const sts_fail_facts *f);
/* sts_result_type_name - "certificate-host-mismatch", ...; "none" for STS_RT_NONE. */
const char *sts_result_type_name(enum sts_result_type t);
/* sts_result_record - one MTA-STS failure for policy domain (mx: the MX host, NULL for fetch
 * failures) under mode, with detail for people: logged as "sts_failure". */
void sts_result_record(const char *msg_id, const char *domain, const char *mx, enum sts_mode mode,
                       enum sts_result_type type, const char *detail);

/* sts_fetch_hook_fn - told of each failed policy fetch of domain (type: sts-policy-fetch-error,
 * sts-policy-invalid or sts-webpki-invalid); kept: the cached policy still used, or NULL. */
typedef void (*sts_fetch_hook_fn)(const char *domain, const sts_policy *kept, enum sts_result_type type,
                                  const char *detail);
/* sts_result_set_fetch_hook - who hears of failed policy fetches (TLS-RPT: set at start by the
 * daemon, so that this layer need not know the reporter); NULL: nobody. Loop thread. */
void sts_result_set_fetch_hook(sts_fetch_hook_fn fn);
/* sts_result_fetch_failed - a policy fetch of domain failed as type: logged by sts_result_record
 * (mode: kept's, or none) and told to the fetch hook. Loop thread. */
void sts_result_fetch_failed(const char *domain, const sts_policy *kept, enum sts_result_type type,
                             const char *detail);

#endif

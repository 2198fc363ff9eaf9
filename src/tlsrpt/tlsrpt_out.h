/*
 * tlsrpt_out.h - what the SMTP client (deliver/smtp_out.c) calls at each TLS outcome of an
 * outbound connection, one call per outcome: the outcome is classified as RFC 8460 4.3 says
 * and handed to the active TLS-RPT recorder (tlsrpt.h). Nothing is done (one test) when TLS-RPT
 * is off. The policy is "no-policy-found" for every level the policy table gives (may, encrypt,
 * verify); DANE and MTA-STS record through tlsrpt_record with their own policy.
 * Loop thread only.
 */
#ifndef SLUICE_TLSRPT_OUT_H
#define SLUICE_TLSRPT_OUT_H
#include "tlsrpt/tlsrpt_data.h"

struct bufferevent;
struct ssl_st;

/* tlsrpt_out_session - TLS is up to mx (ip) for domain: a success when failed_ssl is NULL, else the
 * certificate of failed_ssl failed the check (why: the reason) and is classified (mismatch, expired,
 * not trusted, other). bev: the connection, for the sending address (NULL allowed). */
void tlsrpt_out_session(const char *domain, const char *mx, const char *ip, struct bufferevent *bev,
                        struct ssl_st *failed_ssl, const char *why);
/* tlsrpt_out_failure - the session to mx (ip) for domain failed as type (reason: NULL or the TLS library's). */
void tlsrpt_out_failure(const char *domain, const char *mx, const char *ip, struct bufferevent *bev,
                        enum tlsrpt_rtype type, const char *reason);
/* tlsrpt_out_policy - an outcome (TLSRPT_SUCCESS or a failure type) under a policy of its own
 * (pol: TLSRPT_POLICY_TLSA for DANE with its TLSA records as policy-string, TLSRPT_POLICY_STS for
 * MTA-STS with the policy's lines and mx patterns) instead of no-policy-found. mx, ip, bev: NULL
 * allowed (a policy fetch failure has no MX host). */
void tlsrpt_out_policy(const tlsrpt_policy *pol, const char *mx, const char *ip, struct bufferevent *bev,
                       enum tlsrpt_rtype type, const char *reason);
/* tlsrpt_out_cert_type - the result-type of a certificate the check refused (verify result vr, OpenSSL's X509_V_*). */
enum tlsrpt_rtype tlsrpt_out_cert_type(long vr, bool has_cert);

#endif

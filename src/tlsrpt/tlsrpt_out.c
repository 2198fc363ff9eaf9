/*
 * tlsrpt_out.c - the SMTP client's TLS outcomes turned into TLS-RPT records (see tlsrpt_out.h).
 */
#include "tlsrpt/tlsrpt_out.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include "tlsrpt/tlsrpt.h"

enum tlsrpt_rtype tlsrpt_out_cert_type(long vr, bool has_cert)
{
    if (!has_cert) return TLSRPT_VALIDATION_FAILURE;
    switch (vr) {
    case X509_V_OK: return TLSRPT_CERT_HOST_MISMATCH; /* the chain verified: the name did not match */
    case X509_V_ERR_CERT_HAS_EXPIRED: return TLSRPT_CERT_EXPIRED;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED: return TLSRPT_CERT_NOT_TRUSTED;
    default: return TLSRPT_VALIDATION_FAILURE;
    }
}

/* local_ip - the local address of bev's socket into buf ("" when unknown). */
static void local_ip(struct bufferevent *bev, char *buf, size_t len)
{
    buf[0] = '\0';
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) return;
    if (sa.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, buf, (socklen_t)len);
    else if (sa.ss_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, buf, (socklen_t)len);
}

/* record_as - hand one outcome to the recorder under policy p. */
static void record_as(const tlsrpt_policy *p, const char *mx, const char *ip, struct bufferevent *bev,
                      enum tlsrpt_rtype type, const char *reason)
{
    char sip[INET6_ADDRSTRLEN] = "";
    if (type != TLSRPT_SUCCESS) local_ip(bev, sip, sizeof sip);
    tlsrpt_result r = {.type = type, .receiving_mx = mx, .receiving_ip = ip, .reason = reason};
    if (type != TLSRPT_SUCCESS && sip[0]) r.sending_ip = sip;
    tlsrpt_record(p, &r);
}

/* record - one outcome under the no-policy-found policy of domain. */
static void record(const char *domain, const char *mx, const char *ip, struct bufferevent *bev, enum tlsrpt_rtype type,
                   const char *reason)
{
    tlsrpt_policy p = {.domain = domain, .type = TLSRPT_POLICY_NONE};
    record_as(&p, mx, ip, bev, type, reason);
}

void tlsrpt_out_session(const char *domain, const char *mx, const char *ip, struct bufferevent *bev,
                        struct ssl_st *failed_ssl, const char *why)
{
    if (!tlsrpt_active()) return;
    if (!failed_ssl) {
        record(domain, mx, ip, bev, TLSRPT_SUCCESS, NULL);
        return;
    }
    X509 *cert = SSL_get0_peer_certificate(failed_ssl);
    record(domain, mx, ip, bev, tlsrpt_out_cert_type(SSL_get_verify_result(failed_ssl), cert != NULL), why);
}

void tlsrpt_out_failure(const char *domain, const char *mx, const char *ip, struct bufferevent *bev,
                        enum tlsrpt_rtype type, const char *reason)
{
    if (!tlsrpt_active()) return;
    record(domain, mx, ip, bev, type, reason);
}

void tlsrpt_out_policy(const tlsrpt_policy *pol, const char *mx, const char *ip, struct bufferevent *bev,
                       enum tlsrpt_rtype type, const char *reason)
{
    if (!tlsrpt_active()) return;
    record_as(pol, mx, ip, bev, type, reason);
}

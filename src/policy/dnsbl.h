/*
 * dnsbl.h - DNS block and allow lists at connect (dispatcher.cnf DNS_VERIFY_DOMAIN,
 * DNS_ALLOW_DOMAIN; doc/sender-checks.md): the client's address is looked up in each zone
 * (RFC 5782: reversed octets or nibbles, an A record means listed) through the c-ares resolver,
 * all zones at once, answers cached for five minutes. A client an allow list names skips the
 * block lists. A listed client is refused (DNS_VERIFY_CODE, DNS_VERIFY_TEXT) or, with
 * DNS_VERIFY_ACTION=score, accepted and noted in an X-Sluice-DNSBL header its messages carry,
 * for Sieve and scanners to weigh. A lookup that fails never refuses. Loop thread only.
 */
#ifndef SLUICE_POLICY_DNSBL_H
#define SLUICE_POLICY_DNSBL_H
#include <stddef.h>

#include "conf/conf.h"
#include "policy/decide.h"

struct policy;

/* dnsbl_done_fn - the lists answered: v is VERDICT_OK or the refusal (consumed by the callee). */
typedef void (*dnsbl_done_fn)(policy_sess *ps, verdict *v);
/* policy_dnsbl_check - ask svc's lists about the session's client; done now (no lists) or later. */
void policy_dnsbl_check(policy_sess *ps, const sl_service *svc, dnsbl_done_fn done);
/* policy_dnsbl_abandon - the session ends during the lookups: their answer is dropped. */
void policy_dnsbl_abandon(policy_sess *ps);
/* dnsbl_query_name - the name to look up for ip in zone ("2.0.0.127.zone"; IPv6 by nibbles), or NULL. */
char *dnsbl_query_name(const char *ip, const char *zone);
/* dnsbl_cache_free - release the policy's cache of answers. */
void dnsbl_cache_free(struct policy *p);

#endif

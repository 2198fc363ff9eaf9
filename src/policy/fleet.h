/*
 * fleet.h - reject codes for fleets of MX hosts (seed document 002, option reject_mode): a host
 * that lacks data must not hard-fail what a sibling MX could deliver, while the last MX must
 * hard-fail so that the sender learns quickly.
 *
 *   hard  refusals stay as the verdict table says (5xx for permanent ones)
 *   soft  every refusal that rests on local data (verdict_local_data) becomes its 4xx counterpart
 *   auto  hard only when this host (host_name) is a last MX (highest preference number) of the
 *         recipient's domain according to DNS (asked through c-ares, cached); soft otherwise,
 *         and whenever DNS cannot tell
 *
 * Loop thread only.
 */
#ifndef SLUICE_POLICY_FLEET_H
#define SLUICE_POLICY_FLEET_H
#include "conf/conf.h"
#include "dns/dns.h"
#include "policy/verdict.h"

typedef struct fleet fleet;

/* fleet_done - the verdict after the reject mode (v is the caller's, changed in place). */
typedef void (*fleet_done)(void *arg, verdict *v);

/* fleet_new - the MX cache of a daemon (ctx->dns asks DNS). */
fleet *fleet_new(sl_ctx *ctx);
/* fleet_free - release the cache (no lookup may be pending). */
void fleet_free(fleet *f);
/* fleet_apply - apply the reject mode to v, a verdict about a recipient in domain (NULL when the
 * decision is not about a recipient), then done(arg, v): at once, or after an MX lookup. */
void fleet_apply(fleet *f, const sl_conf *conf, verdict *v, const char *domain, fleet_done done, void *arg);
/* fleet_apply_now - the reject mode for a decision that is not about a recipient (MAIL): soft
 * in the modes soft and auto (no domain to ask DNS about). */
void fleet_apply_now(const sl_conf *conf, verdict *v);
/* fleet_soften - v as its temporary counterpart (4xx code and enhanced status). */
void fleet_soften(verdict *v);
/* fleet_is_last_mx - whether host is among the MX hosts of the highest preference number in mx. */
bool fleet_is_last_mx(const char *host, const dns_mx *mx, size_t n);

#endif

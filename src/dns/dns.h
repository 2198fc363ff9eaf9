/*
 * dns.h - asynchronous DNS on the event loop with c-ares: MX and address lookups against the
 * configured servers (option.dat dns_servers, "host:port"). Callbacks run on the loop thread.
 * Only the loop thread may call these functions.
 *
 * Results follow DESIGN.md §3: SL_OK = an answer (possibly empty: the name exists without
 * records of that type), SL_PERM = the name does not exist (NXDOMAIN), SL_TEMP = anything
 * else (timeout, SERVFAIL, refused, malformed reply).
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H
#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/util.h"

struct event_base;
typedef struct dns_ctx dns_ctx;

typedef struct {
    char *host;    /* exchange name; "" for a null MX ("." RFC 7505) */
    unsigned pref;
} dns_mx;

/* dns_rand_fn - a uniform random number in [0, bound). */
typedef uint32_t (*dns_rand_fn)(void *ctx, uint32_t bound);
/* dns_mx_order - sort mx by preference, shuffling equal preferences with rnd. */
void dns_mx_order(dns_mx *mx, size_t n, dns_rand_fn rnd, void *ctx);
/* dns_mx_demote - in mx as dns_mx_order left it, hosts named in failing go after the others of
 * their preference, in the order of failing; everything else keeps its place. */
void dns_mx_demote(dns_mx *mx, size_t n, const strvec *failing);

/* dns_mx_cb - MX answer: mx sorted by preference, equal preferences shuffled; freed after the callback returns. */
typedef void (*dns_mx_cb)(void *arg, sl_result res, const dns_mx *mx, size_t n, const char *errmsg);
/* dns_addr_cb - A and AAAA answers merged (IPv4 first); port left 0; freed after the callback returns. */
typedef void (*dns_addr_cb)(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *errmsg);

/* dns_strs_cb - TXT or PTR answer: for TXT one string per record, its character-strings joined
 * with nothing between them (RFC 7208 §3.3; a NUL byte inside becomes 0x7f); for PTR one host
 * name per record, without the final dot. Freed after the callback returns. */
typedef void (*dns_strs_cb)(void *arg, sl_result res, char *const *strs, size_t n, const char *errmsg);

/* dns_new - a resolver on base using servers ("host:port" strings; empty = system resolv.conf). NULL + err on failure. */
dns_ctx *dns_new(struct event_base *base, const strvec *servers, char *err, size_t errlen);
/* dns_free - cancel pending queries (their callbacks run with SL_TEMP "cancelled") and free. */
void dns_free(dns_ctx *d);
/* dns_lookup_mx - look up the MX records of domain. */
void dns_lookup_mx(dns_ctx *d, const char *domain, dns_mx_cb cb, void *arg);
/* dns_lookup_addr - look up A and AAAA of host; an IP literal answers at once (still via the callback). */
void dns_lookup_addr(dns_ctx *d, const char *host, dns_addr_cb cb, void *arg);

/* dns_lookup_addr_family - look up only A (family AF_INET) or only AAAA (AF_INET6) of host. */
void dns_lookup_addr_family(dns_ctx *d, const char *host, int family, dns_addr_cb cb, void *arg);
/* dns_lookup_txt - look up the TXT records of name. */
void dns_lookup_txt(dns_ctx *d, const char *name, dns_strs_cb cb, void *arg);
/* dns_lookup_ptr - look up the PTR records of ip (AF_INET or AF_INET6; in-addr.arpa / ip6.arpa). */
void dns_lookup_ptr(dns_ctx *d, const struct sockaddr_storage *ip, dns_strs_cb cb, void *arg);
/* dns_reverse_name - the in-addr.arpa / ip6.arpa name of ip, into buf (at least 74 bytes). */
void dns_reverse_name(const struct sockaddr_storage *ip, char *buf, size_t len);

#endif

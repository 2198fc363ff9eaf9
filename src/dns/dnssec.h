/*
 * dnssec.h - DNSSEC-aware lookups for DANE (RFC 7672): an MX lookup and a TLSA lookup that say
 * whether the answer was *secure*, plus the bounds-checked parser of raw DNS replies they use.
 *
 * How "secure" is decided (RFC 6840 5.7, RFC 7672 1.3): the query goes out with the AD bit set
 * and the answer is secure when the reply has the AD bit set AND every configured dns_servers
 * entry is a loopback address (a validating resolver on this host, such as unbound; the path to
 * it cannot be tampered with). With any other server, or with the system's resolv.conf, nothing
 * is ever secure, so DANE never applies. A validating resolver answers SERVFAIL for bogus data:
 * that is SL_TEMP here, never "insecure".
 *
 * The lookups run on the event loop through the resolver of dns.h; callbacks run on the loop
 * thread, never inside the dns_lookup_* call; dns_free cancels them (SL_TEMP "cancelled").
 * Only the loop thread may call the lookups. The parser (dns_answer_parse) is pure, any thread.
 */
#ifndef SLUICE_DNS_DNSSEC_H
#define SLUICE_DNS_DNSSEC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

#define DNS_TYPE_CNAME 5
#define DNS_TYPE_MX 15
#define DNS_TYPE_TLSA 52
#define DNS_ANSWER_MAX_RR 64 /* records of the asked type kept from one answer; more are ignored */

/* One record of the asked type: its RDATA inside the reply buffer given to the parser. */
typedef struct {
    size_t off;  /* RDATA offset in the reply */
    size_t len;  /* RDATA length */
} dns_rr_ref;

/* A parsed reply (the parts DANE needs). */
typedef struct {
    unsigned rcode;                   /* 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ... */
    bool ad, tc;                      /* header flags: authenticated data, truncated */
    dns_rr_ref rr[DNS_ANSWER_MAX_RR]; /* answer records of the asked type, class IN, in order */
    size_t n;
} dns_answer;

/* dns_answer_parse - parse the reply buf[0..len) to a question of type qtype: header flags, the
 * question section skipped, the answer records of qtype (class IN) collected (CNAMEs before them
 * are allowed and ignored). False on any malformation (short, a name running off the end or
 * looping, a record past the end, not a response). Pure. */
bool dns_answer_parse(const unsigned char *buf, size_t len, uint16_t qtype, dns_answer *a);
/* dns_name_expand - the (possibly compressed) name at off in buf[0..len) as text, without the
 * final dot ("" for the root), into out (at least 256 bytes); *next gets the offset after the
 * name's bytes at off. False when malformed (out of bounds, a loop, a label over 63, > 255). */
bool dns_name_expand(const unsigned char *buf, size_t len, size_t off, char *out, size_t outlen, size_t *next);
/* dns_mx_from_answer - the MX records of a parsed answer (exchange names without the final dot,
 * "" for a null MX) into a new array (*mx, *n; caller frees each host and the array). False when
 * an MX RDATA is malformed. Pure. */
bool dns_mx_from_answer(const unsigned char *buf, size_t len, const dns_answer *a, dns_mx **mx, size_t *n);

/* A TLSA record's RDATA (usage, selector, matching type, data), as core/dane.h dane_tlsa_parse takes it. */
typedef struct {
    const unsigned char *rdata;
    size_t len;
} dns_rdata;

/* dns_sec_mx_cb - an MX answer; secure as the header says. mx as dns_mx_cb gives it (sorted,
 * equal preferences shuffled); everything is freed after the callback returns. */
typedef void (*dns_sec_mx_cb)(void *arg, sl_result res, bool secure, const dns_mx *mx, size_t n, const char *errmsg);
/* dns_tlsa_cb - a TLSA answer: res SL_OK with n records (0: the name exists without TLSA),
 * SL_PERM NXDOMAIN, SL_TEMP anything else (SERVFAIL = bogus, timeout, malformed); secure as the
 * header says (for SL_OK and SL_PERM). The RDATAs are freed after the callback returns. */
typedef void (*dns_tlsa_cb)(void *arg, sl_result res, bool secure, const dns_rdata *rr, size_t n, const char *errmsg);

/* dns_ad_trusted - whether d's answers may be believed about AD: every dns_servers entry is a
 * loopback address (127.0.0.0/8 or ::1). False with the system's resolv.conf. */
bool dns_ad_trusted(const dns_ctx *d);
/* dns_lookup_mx_sec - look up the MX records of domain with the AD bit set (for DANE). */
void dns_lookup_mx_sec(dns_ctx *d, const char *domain, dns_sec_mx_cb cb, void *arg);
/* dns_lookup_tlsa - look up the TLSA records of _PORT._tcp.HOST with the AD bit set. */
void dns_lookup_tlsa(dns_ctx *d, const char *host, unsigned port, dns_tlsa_cb cb, void *arg);

#endif

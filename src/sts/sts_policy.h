/*
 * sts_policy.h - MTA-STS (RFC 8461) texts: the "_mta-sts.DOMAIN" TXT record (§3.1), the policy
 * file served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (§3.2), MX host matching (§4.1),
 * and the cache file that keeps a fetched policy across restarts (doc/tls.md). Pure: no sockets,
 * files or clocks (time is an argument), so any thread may call these functions; the fetch
 * (sts_fetch.c) and the cache directory (sts.c) call them on workers and on the loop.
 *
 * Parsing is strict, as the RFC's ABNF says: a TXT record or a policy that does not follow it is
 * refused whole, with a reason for the log. Known policy fields with a bad value, a repeated
 * version/mode/max_age, a missing required field, a max_age above 31557600, an empty line, a
 * bare CR or a NUL byte make the policy invalid; unknown fields are checked for syntax and
 * otherwise ignored.
 */
#ifndef SLUICE_STS_POLICY_H
#define SLUICE_STS_POLICY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define STS_ID_MAX 32               /* sts-id = 1*32(ALPHA / DIGIT) */
#define STS_MAX_AGE_MAX 31557600u   /* §3.2: max_age's largest value (one year) */
#define STS_POLICY_MAX_BYTES 65536u /* the largest policy body we take (§3.3 suggests 64 KiB) */

enum sts_mode { STS_MODE_NONE = 0, STS_MODE_TESTING, STS_MODE_ENFORCE };

/* A parsed policy. The caller owns it (sts_policy_free). */
typedef struct {
    enum sts_mode mode;
    unsigned max_age;  /* seconds, 0..STS_MAX_AGE_MAX */
    strvec mx;         /* mx patterns in lower case: "mail.example.com" or "*.example.net" */
    strvec lines;      /* the policy's lines as served, without line ends (TLS-RPT's policy-string) */
} sts_policy;

/* sts_txt_parse - one TXT record ("v=STSv1; id=...;", its strings already joined): the id into
 * id (NUL-terminated); false with the reason in why when it does not follow §3.1. */
bool sts_txt_parse(const char *txt, char id[STS_ID_MAX + 1], char *why, size_t whylen);
/* sts_txt_select - the TXT answer of _mta-sts.DOMAIN (§3.1): records not beginning with
 * "v=STSv1;" are discarded, exactly one must remain and parse; its id into id. false + why. */
bool sts_txt_select(char *const *strs, size_t n, char id[STS_ID_MAX + 1], char *why, size_t whylen);

/* sts_policy_parse - the policy body (len bytes; a NUL byte anywhere is an error) into p, which
 * the caller frees with sts_policy_free even after a failure; false + why when invalid. */
bool sts_policy_parse(const char *body, size_t len, sts_policy *p, char *why, size_t whylen);
/* sts_policy_free - free what p owns and empty it. */
void sts_policy_free(sts_policy *p);
/* sts_policy_copy - a deep copy of src into dst (dst's old contents are not freed). */
void sts_policy_copy(sts_policy *dst, const sts_policy *src);
/* sts_mode_name - "enforce", "testing" or "none". */
const char *sts_mode_name(enum sts_mode m);

/* sts_mx_pattern_match - whether host (an MX host name; case and a final dot do not matter)
 * matches one mx pattern: exactly, or "*.suffix" for exactly one label in front of suffix. */
bool sts_mx_pattern_match(const char *pattern, const char *host);
/* sts_mx_match - whether host matches one of the policy's mx patterns (§4.1). */
bool sts_mx_match(const sts_policy *p, const char *host);

/*
 * The cache file of one policy domain, written by us: a few header lines, an empty line and the
 * policy body exactly as it was fetched, so that loading it parses the body again:
 *     sluice-mta-sts 1
 *     domain example.com
 *     id 20160831085700Z
 *     fetched 1733440000
 *     length 98
 *     <empty line>
 *     <98 bytes of policy>
 */
typedef struct {
    char *domain;              /* the policy domain, lower case */
    char id[STS_ID_MAX + 1];   /* the TXT record's id the policy was fetched for */
    int64_t fetched;           /* unix time of the fetch: the policy expires at fetched + max_age */
    char *body;                /* the policy text as served */
    size_t body_len;
    sts_policy policy;         /* body, parsed */
} sts_cached;

/* sts_cache_encode - the cache file's bytes for c (into out, appended). */
void sts_cache_encode(const sts_cached *c, strbuf *out);
/* sts_cache_decode - a cache file's bytes into c (freed by the caller with sts_cached_free even
 * after a failure); false + why when damaged or its policy no longer parses. */
bool sts_cache_decode(const char *text, size_t len, sts_cached *c, char *why, size_t whylen);
/* sts_cached_free - free what c owns and empty it. */
void sts_cached_free(sts_cached *c);
/* sts_cached_expires - when c's policy expires (fetched + max_age). */
int64_t sts_cached_expires(const sts_cached *c);
/* sts_domain_ok - whether s is a domain name we accept as a policy domain (letters, digits,
 * hyphens, dots; no empty label; at most 253 octets): also what makes it safe as a file name. */
bool sts_domain_ok(const char *s);

#endif

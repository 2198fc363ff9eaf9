/*
 * ldap_url.h - LDAP URLs (RFC 4516) and search filters (RFC 4515) as directory data uses them:
 * mgrpAllowedBroadcaster / mgrpDisallowedBroadcaster values such as
 * "ldap:///ou=people,dc=example,dc=com??sub?(department=sales)", a dynamic set of entries.
 *
 * ld_url_parse splits a URL into host, base DN, attributes, scope and filter, each
 * percent-decoded; a malformed URL is an error with a message, never a guess. The filter is
 * checked by ld_filter_parse, which also builds a tree that ld_filter_eval evaluates against an
 * entry's values (the embedded backend has no server to ask): equality, presence, substrings,
 * and, or, not; other assertions (>=, <=, ~=, extensible) cannot be evaluated here and say so.
 * Pure: no I/O, any thread. Results belong to the caller (ld_url_free, ld_filter_free).
 */
#ifndef SLUICE_DIR_LDAP_URL_H
#define SLUICE_DIR_LDAP_URL_H
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"
#include "dir/schema.h"

/* Scopes, with the values of libldap's LDAP_SCOPE_BASE / _ONELEVEL / _SUBTREE. */
enum ld_scope { LD_SCOPE_BASE = 0, LD_SCOPE_ONE = 1, LD_SCOPE_SUB = 2 };

/* A parsed LDAP URL; every part percent-decoded. */
typedef struct ld_url {
    char *host;      /* "host[:port]" as written, "" when absent (ldap:///...) */
    char *dn;        /* base DN, "" when absent */
    strvec attrs;    /* requested attributes (none: all) */
    enum ld_scope scope; /* RFC 4516: base when absent */
    char *filter;    /* always parenthesised; "(objectClass=*)" when absent */
} ld_url;

/* ld_url_parse - parse text ("ldap://", "ldaps://" or "ldapi://", any case); 0 with *out filled,
 * or -1 with a message in err (and *out empty). A critical extension ("!...") is an error: we
 * implement none. */
int ld_url_parse(const char *text, ld_url *out, char *err, size_t errlen);
/* ld_url_free - release what a parsed URL holds (NULL allowed). */
void ld_url_free(ld_url *u);

typedef struct ld_filter ld_filter;

/* ld_filter_parse - an RFC 4515 filter string (the outer parentheses optional); NULL with a
 * message in err when it is malformed (caller frees the result with ld_filter_free). */
ld_filter *ld_filter_parse(const char *text, char *err, size_t errlen);
/* ld_filter_free - release a filter (NULL allowed). */
void ld_filter_free(ld_filter *f);
/* ld_filter_eval - 1 when the entry whose values fn gives (src) matches f, 0 when not, -1 when
 * f holds an assertion that cannot be evaluated without a server (>=, <=, ~=, extensible).
 * Values compare case-insensitively (the mail and directory-string attributes' matching). */
int ld_filter_eval(const ld_filter *f, dir_values_fn fn, const void *src);
/* ld_dn_in_scope - whether dn lies in the search scope of base (DNs compared normalised). */
bool ld_dn_in_scope(const char *dn, const char *base, enum ld_scope scope);

#endif

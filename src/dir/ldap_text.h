/*
 * ldap_text.h - the text the LDAP backend builds and reads, kept pure so that unit tests reach it:
 * filter values escaped (RFC 4515), the DN a domain has in the dc= form (RFC 2247), DNs
 * normalised for comparison and cache keys, attribute descriptions without options, and
 * uniqueMember values without their optional UID. Any thread.
 */
#ifndef SLUICE_DIR_LDAP_TEXT_H
#define SLUICE_DIR_LDAP_TEXT_H
#include <stddef.h>

#include "core/util.h"

/* ld_filter_escape - value as an RFC 4515 assertion value appended to out: '*', '(', ')', '\',
 * NUL and every byte outside printable ASCII written as \XX, so no value can change a filter. */
void ld_filter_escape(strbuf *out, const char *value);
/* ld_dn_normalize - dn lower-cased, blanks around ',', '=' and '+' removed, escapes kept (for
 * comparing DNs and for cache keys; caller frees). */
char *ld_dn_normalize(const char *dn);
/* ld_dc_dn - "dc=a,dc=b,dc=c" for domain a.b.c when that DN is base or lies below it; NULL when
 * the domain is not a plain DNS name or the DN would be outside base (caller frees). */
char *ld_dc_dn(const char *domain, const char *base);
/* ld_attr_name_len - the length of an attribute description's name without options
 * ("mail;lang-en" -> 4). */
size_t ld_attr_name_len(const char *desc);
/* ld_member_dn - a member or uniqueMember value without the optional "#'0101'B" UID of the
 * nameAndOptionalUID syntax (caller frees). */
char *ld_member_dn(const char *value);

#endif

/*
 * ldap_text.c - filter escaping and DN text for the LDAP backend (see ldap_text.h).
 */
#include "dir/ldap_text.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/schema.h"

void ld_filter_escape(strbuf *out, const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '*' || *p == '(' || *p == ')' || *p == '\\' || *p < 0x20 || *p >= 0x7f)
            sb_printf(out, "\\%02x", *p);
        else
            sb_putc(out, (char)*p);
    }
}

char *ld_dn_normalize(const char *dn)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    bool at_start = true; /* just after a separator: blanks here are not part of a value */
    size_t keep = 0;      /* length up to the last character that is not a trailing blank */
    for (const char *p = dn; *p; p++) {
        char c = *p;
        if (c == '\\' && p[1]) { /* an escaped character stays, whatever it is */
            sb_putc(&sb, c);
            sb_putc(&sb, (char)tolower((unsigned char)*++p));
            keep = sb.len;
            at_start = false;
            continue;
        }
        if (c == ' ' && at_start) continue;
        if (c == ',' || c == '=' || c == '+') {
            sb.len = keep; /* blanks before a separator are not part of a value */
            sb.data[sb.len] = '\0';
            sb_putc(&sb, c);
            keep = sb.len;
            at_start = true;
            continue;
        }
        sb_putc(&sb, (char)tolower((unsigned char)c));
        if (c != ' ') keep = sb.len;
        at_start = false;
    }
    sb.len = keep;
    sb.data[sb.len] = '\0';
    return sb_steal(&sb);
}

char *ld_dc_dn(const char *domain, const char *base)
{
    if (!dir_domain_valid(domain)) return NULL;
    strbuf sb;
    sb_init(&sb);
    for (const char *p = domain; *p;) {
        size_t n = strcspn(p, ".");
        sb_printf(&sb, "%sdc=%.*s", sb.len ? "," : "", (int)n, p);
        p += n + (p[n] == '.');
    }
    char *dn = sb_steal(&sb);
    char *ndn = ld_dn_normalize(dn), *nbase = ld_dn_normalize(base);
    size_t ld = strlen(ndn), lb = strlen(nbase);
    bool under = lb == 0 || strcmp(ndn, nbase) == 0 ||
                 (ld > lb && ndn[ld - lb - 1] == ',' && strcmp(ndn + ld - lb, nbase) == 0);
    free(ndn);
    free(nbase);
    if (under) return dn;
    free(dn);
    return NULL;
}

size_t ld_attr_name_len(const char *desc)
{
    return strcspn(desc, ";");
}

char *ld_member_dn(const char *value)
{
    size_t n = strlen(value);
    const char *hash = strrchr(value, '#');
    /* "#'...'B" at the very end, not escaped: a bit string of binary digits */
    if (hash && hash > value && hash[-1] != '\\' && n - (size_t)(hash - value) >= 4 && hash[1] == '\'' &&
        value[n - 2] == '\'' && value[n - 1] == 'B' && strspn(hash + 2, "01") == n - (size_t)(hash - value) - 4)
        n = (size_t)(hash - value);
    return xstrndup(value, n);
}

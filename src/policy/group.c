/*
 * group.c - group submission rules (see group.h).
 */
#include "policy/group.h"

#include <ctype.h>
#include <fnmatch.h>
#include <string.h>

/* dn_skip - past the blanks that follow a ',' or '=' of a DN. */
static const char *dn_skip(const char *p, char prev)
{
    if (prev == ',' || prev == '=')
        while (*p == ' ') p++;
    return p;
}

/* dn_equal - DNs compared case-insensitively, blanks after separators ignored. */
static bool dn_equal(const char *a, const char *b)
{
    char prev = 0;
    for (;;) {
        a = dn_skip(a, prev);
        b = dn_skip(b, prev);
        if (!*a || !*b) return !*a && !*b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
        prev = *a;
        a++, b++;
    }
}

enum match { MATCH_NO, MATCH_YES, MATCH_UNKNOWN };

/* is_url - whether a broadcaster value is an LDAP URL. */
static bool is_url(const char *value)
{
    return str_has_prefix_ci(value, "ldap:") || str_has_prefix_ci(value, "ldaps:") || str_has_prefix_ci(value, "ldapi:");
}

/* url_match - the directory's answer about one URL value (unknown when it was not asked). */
static enum match url_match(const char *value, const group_sender *who)
{
    for (size_t i = 0; who->urls && i < who->urls->n; i++)
        if (str_ieq(who->urls->v[i], value))
            return who->url_rc[i] == SL_OK ? MATCH_YES : who->url_rc[i] == SL_PERM ? MATCH_NO : MATCH_UNKNOWN;
    return MATCH_UNKNOWN;
}

/* broadcaster_matches - one mgrp*Broadcaster value against the sender. */
static enum match broadcaster_matches(const char *value, const group_sender *who)
{
    if (is_url(value)) return url_match(value, who);
    if (strchr(value, '@') && !strchr(value, '=')) {
        if (str_ieq(value, who->from)) return MATCH_YES;
        return who->auth_user && str_ieq(value, who->auth_user) ? MATCH_YES : MATCH_NO;
    }
    return who->dn && dn_equal(value, who->dn) ? MATCH_YES : MATCH_NO;
}

/* any_broadcaster - yes when a value matches, unknown when none does but one could not be told. */
static enum match any_broadcaster(const strvec *list, const group_sender *who)
{
    enum match m = MATCH_NO;
    for (size_t i = 0; i < list->n; i++) {
        enum match one = broadcaster_matches(list->v[i], who);
        if (one == MATCH_YES) return MATCH_YES;
        if (one == MATCH_UNKNOWN) m = MATCH_UNKNOWN;
    }
    return m;
}

void group_urls(const dir_entry *g, strvec *out)
{
    const strvec *lists[] = {&g->disallowed_broadcasters, &g->allowed_broadcasters};
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; i < lists[l]->n; i++)
            if (is_url(lists[l]->v[i]) && !sv_contains_ci(out, lists[l]->v[i])) sv_push(out, lists[l]->v[i]);
}

/* any_domain - whether the sender's domain matches one of the globs in list. */
static bool any_domain(const strvec *list, const group_sender *who)
{
    const char *at = strrchr(who->from, '@');
    const char *domain = at ? at + 1 : "";
    for (size_t i = 0; i < list->n; i++)
        if (fnmatch(list->v[i], domain, FNM_CASEFOLD) == 0) return true;
    return false;
}

/* refusal_reason - why the sender may not submit, or NULL; *unknown when the reason is a list
 * the directory could not evaluate. */
static const char *refusal_reason(const dir_entry *g, const group_sender *who, bool *unknown)
{
    *unknown = false;
    if (g->broadcaster_policy && strstr(g->broadcaster_policy, "SMTP_AUTH_REQUIRED") && !who->auth_user)
        return "authentication required";
    enum match m = any_broadcaster(&g->disallowed_broadcasters, who);
    if (m == MATCH_YES) return "disallowed broadcaster";
    if (m == MATCH_UNKNOWN) {
        *unknown = true;
        return "disallowed broadcasters (LDAP URL) could not be evaluated";
    }
    if (g->allowed_broadcasters.n) {
        m = any_broadcaster(&g->allowed_broadcasters, who);
        if (m == MATCH_NO) return "not an allowed broadcaster";
        if (m == MATCH_UNKNOWN) {
            *unknown = true;
            return "allowed broadcasters (LDAP URL) could not be evaluated";
        }
    }
    if (any_domain(&g->disallowed_domains, who)) return "disallowed domain";
    if (g->allowed_domains.n && !any_domain(&g->allowed_domains, who)) return "not an allowed domain";
    return NULL;
}

enum group_decision group_decide(const dir_entry *g, const group_sender *who, const char **why)
{
    bool unknown;
    *why = refusal_reason(g, who, &unknown);
    if (!*why) return GROUP_ALLOW;
    if (unknown) return GROUP_TEMP;
    bool moderate = g->reject_action && str_ieq(g->reject_action, "TOMODERATOR") && g->moderators.n;
    return moderate ? GROUP_MODERATE : GROUP_REFUSE;
}

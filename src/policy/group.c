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

/* broadcaster_matches - one mgrp*Broadcaster value against the sender. */
static bool broadcaster_matches(const char *value, const group_sender *who)
{
    if (str_has_prefix_ci(value, "ldap:")) return false; /* dynamic lists are not evaluated */
    if (strchr(value, '@') && !strchr(value, '=')) {
        if (str_ieq(value, who->from)) return true;
        return who->auth_user && str_ieq(value, who->auth_user);
    }
    return who->dn && dn_equal(value, who->dn);
}

static bool any_broadcaster(const strvec *list, const group_sender *who)
{
    for (size_t i = 0; i < list->n; i++)
        if (broadcaster_matches(list->v[i], who)) return true;
    return false;
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

/* refusal_reason - why the sender may not submit, or NULL. */
static const char *refusal_reason(const dir_entry *g, const group_sender *who)
{
    if (g->broadcaster_policy && strstr(g->broadcaster_policy, "SMTP_AUTH_REQUIRED") && !who->auth_user)
        return "authentication required";
    if (any_broadcaster(&g->disallowed_broadcasters, who)) return "disallowed broadcaster";
    if (g->allowed_broadcasters.n && !any_broadcaster(&g->allowed_broadcasters, who)) return "not an allowed broadcaster";
    if (any_domain(&g->disallowed_domains, who)) return "disallowed domain";
    if (g->allowed_domains.n && !any_domain(&g->allowed_domains, who)) return "not an allowed domain";
    return NULL;
}

enum group_decision group_decide(const dir_entry *g, const group_sender *who, const char **why)
{
    *why = refusal_reason(g, who);
    if (!*why) return GROUP_ALLOW;
    bool moderate = g->reject_action && str_ieq(g->reject_action, "TOMODERATOR") && g->moderators.n;
    return moderate ? GROUP_MODERATE : GROUP_REFUSE;
}

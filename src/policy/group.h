/*
 * group.h - who may send to a group (Messaging Server's mgrp* attributes), decided before any
 * member is expanded: mgrpBroadcasterPolicy SMTP_AUTH_REQUIRED (the session must have
 * authenticated), mgrpDisallowedBroadcaster / mgrpAllowedBroadcaster (addresses compared with
 * the envelope sender and the AUTH identity, or DNs compared with the sender's entry), then
 * mgrpDisallowedDomain / mgrpAllowedDomain (globs over the sender's domain). A refused sender's
 * mail goes to the moderators instead when mgrpMsgRejectAction is TOMODERATOR.
 *
 * A broadcaster value that is an LDAP URL (a dynamic list: "ldap:///ou=people,dc=example,dc=com??
 * sub?(department=sales)") needs the directory: the caller asks it for every URL group_urls
 * lists (dir_url_match) and passes the answers in the group_sender; an answer that is TEMP, or a
 * URL left unasked, makes the decision GROUP_TEMP when the decision depends on it (never a 5xx
 * from a directory that could not answer). Pure; any thread.
 */
#ifndef SLUICE_POLICY_GROUP_H
#define SLUICE_POLICY_GROUP_H
#include "dir/dir.h"

enum group_decision { GROUP_ALLOW, GROUP_REFUSE, GROUP_MODERATE, GROUP_TEMP };

/* The sender as a group's rules see it. */
typedef struct {
    const char *from;      /* envelope sender ("" for <>) */
    const char *auth_user; /* AUTH identity, or NULL */
    const char *dn;        /* the sender's directory entry, or NULL */
    const strvec *urls;    /* the LDAP URL values the directory was asked about (NULL: none) */
    const sl_result *url_rc; /* for each: OK the sender is in the list, PERM not, TEMP unknown */
} group_sender;

/* group_urls - the distinct LDAP URL values of g's allowed and disallowed broadcasters, appended
 * to out (none: the decision needs no directory). */
void group_urls(const dir_entry *g, strvec *out);

/* group_decide - may this sender submit to group g? *why gets a short reason for the log
 * (GROUP_TEMP: which list could not be evaluated). */
enum group_decision group_decide(const dir_entry *g, const group_sender *who, const char **why);

#endif

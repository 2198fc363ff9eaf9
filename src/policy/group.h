/*
 * group.h - who may send to a group (Messaging Server's mgrp* attributes), decided before any
 * member is expanded: mgrpBroadcasterPolicy SMTP_AUTH_REQUIRED (the session must have
 * authenticated), mgrpDisallowedBroadcaster / mgrpAllowedBroadcaster (addresses compared with
 * the envelope sender and the AUTH identity, or DNs compared with the sender's entry), then
 * mgrpDisallowedDomain / mgrpAllowedDomain (globs over the sender's domain). A refused sender's
 * mail goes to the moderators instead when mgrpMsgRejectAction is TOMODERATOR. LDAP URL values
 * (dynamic broadcaster lists) are not evaluated: such a value never matches. Pure; any thread.
 */
#ifndef SLUICE_POLICY_GROUP_H
#define SLUICE_POLICY_GROUP_H
#include "dir/dir.h"

enum group_decision { GROUP_ALLOW, GROUP_REFUSE, GROUP_MODERATE };

/* The sender as a group's rules see it. */
typedef struct {
    const char *from;      /* envelope sender ("" for <>) */
    const char *auth_user; /* AUTH identity, or NULL */
    const char *dn;        /* the sender's directory entry, or NULL */
} group_sender;

/* group_decide - may this sender submit to group g? *why gets a short reason for the log. */
enum group_decision group_decide(const dir_entry *g, const group_sender *who, const char **why);

#endif

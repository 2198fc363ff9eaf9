/*
 * status.h - what a domain's, user's or group's status values mean for mail (Messaging Server's
 * rules): the first non-active of the two values wins (inet*Status, then mail*Status); a missing
 * value is active; an unknown value is inactive. Pure; any thread.
 */
#ifndef SLUICE_POLICY_STATUS_H
#define SLUICE_POLICY_STATUS_H
#include "dir/dir.h"

enum entry_status {
    STATUS_ACTIVE,   /* deliver */
    STATUS_TEMP,     /* inactive, overquota, or an unknown value: 4xx */
    STATUS_PERM,     /* deleted, removed, disabled: 5xx */
    STATUS_HOLD      /* accept, and queue to the hold channel */
};

/* status_of - the meaning of a pair of status values (either may be NULL); *word gets the
 * deciding value ("" when active). */
enum entry_status status_of(char *const values[2], const char **word);
/* policy_entry_status - the status of a user or group entry. */
enum entry_status policy_entry_status(const dir_entry *e);

#endif

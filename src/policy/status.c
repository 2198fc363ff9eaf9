/*
 * status.c - status values and what they mean for mail (see status.h).
 */
#include "policy/status.h"

/* status_word - the meaning of one value. */
static enum entry_status status_word(const char *v)
{
    if (!v || !*v || str_ieq(v, "active")) return STATUS_ACTIVE;
    if (str_ieq(v, "deleted") || str_ieq(v, "removed") || str_ieq(v, "disabled")) return STATUS_PERM;
    if (str_ieq(v, "hold")) return STATUS_HOLD;
    return STATUS_TEMP; /* inactive, overquota, and values we do not know */
}

enum entry_status status_of(char *const values[2], const char **word)
{
    *word = "";
    for (int i = 0; i < 2; i++) {
        enum entry_status s = status_word(values[i]);
        if (s == STATUS_ACTIVE) continue;
        *word = values[i];
        return s;
    }
    return STATUS_ACTIVE;
}

enum entry_status policy_entry_status(const dir_entry *e)
{
    const char *word;
    return status_of(e->status, &word);
}

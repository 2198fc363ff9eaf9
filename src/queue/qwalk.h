/*
 * qwalk.h - the one walk over a queue tree, QUEUE/<channel>/<NNN>/<id>, shared by the store's
 * start-up recovery and the offline queue tools. tmp/, corrupt/, the local submission's
 * public/, pickup/ and pickup-failed/, and names starting with '.' (.held, .return, .free) are
 * not channels. Blocking (directory reads): start-up, tools, or a
 * thread of its own.
 */
#ifndef SLUICE_QWALK_H
#define SLUICE_QWALK_H
#include <stdbool.h>

#include "core/util.h"

/* qwalk_fn - one queue file: its channel, its name (the queue id) and its path; false stops the walk. */
typedef bool (*qwalk_fn)(void *ctx, const char *channel, const char *name, const char *path);

/* qwalk_list - the names in dir that do not start with '.', appended to names (none if dir is unreadable). */
void qwalk_list(const char *dir, strvec *names);
/* qwalk_is_channel - whether a name under QUEUE may be a channel's directory. */
bool qwalk_is_channel(const char *name);
/* qwalk_tree - fn for every file of every channel under qdir, one directory at a time. */
void qwalk_tree(const char *qdir, qwalk_fn fn, void *ctx);

#endif

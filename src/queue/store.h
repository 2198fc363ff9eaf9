/*
 * store.h - the durable queue on disk (DESIGN.md §3).
 *
 * Layout: QUEUE/<channel>/<NNN>/<id> (NNN = 000 .. subdirs-1), QUEUE/tmp/ for files being
 * written, QUEUE/corrupt/ for files that failed validation.
 * Commit (group commit): a dedicated committer thread takes every pending commit request at
 * once (up to 32, so that no commit waits behind a huge batch), writes each file into tmp/,
 * starts the writeback of the whole batch (sync_file_range) and then waits for each file
 * (fdatasync), so the device sees one batch, renames the files into their channel directories, fsyncs each distinct directory once, and
 * only then reports success; so the 250 a client gets means the message is on disk, and
 * concurrent messages share the flushes. Any error fails the whole request and removes its
 * files (no partial messages). Commits that a client waits for go first; notifications, recipient
 * state updates and removals fill the rest of each batch; removals are
 * done by the committer too, after each batch is answered.
 * store_* functions are called on the loop thread; callbacks run on the loop thread.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "core/workq.h"
#include "queue/qfile.h"

struct event_base;
typedef struct store store;

/* One file of a commit request for channel/subdir: the bytes data, then content's, then tail's
 * (qfile_encode_split; content and tail may be empty), written with one writev, so a message's
 * content is never copied per file. The store frees data, tail and path and drops content. */
typedef struct {
    char *channel;
    unsigned subdirs;
    char id[32];
    strbuf data;
    qbody *content; /* a reference, or NULL */
    strbuf tail;
    char *path; /* set by the store: final path, valid in the callback */
} store_file;

/* store_commit_cb - SL_OK when every file is durable; SL_TEMP with err otherwise (no file left). */
typedef void (*store_commit_cb)(void *arg, sl_result res, const char *err, store_file *files, size_t n);
/* store_recover_cb - one valid queue file found at start-up; msg and path are handed over (caller frees). */
typedef void (*store_recover_cb)(void *arg, qmsg *msg, char *path);
/* store_recover_batch_cb - valid queue files found by the background scan (loop thread); msgs[i] and paths[i] are handed over. */
typedef void (*store_recover_batch_cb)(void *arg, qmsg **msgs, char **paths, size_t n);
/* store_recover_done_cb - the background scan ended: files found, and how long it took. */
typedef void (*store_recover_done_cb)(void *arg, size_t found, double secs);
/* store_done_cb - completion of an update or removal. */
typedef void (*store_done_cb)(void *arg, sl_result res, const char *err);

/* store_queue_path - QUEUE/<channel>/<NNN>/<id>, NNN from the id's hash and the channel's subdirs (caller frees). */
char *store_queue_path(const char *qdir, const char *channel, unsigned subdirs, const char *id);
/* store_open - create the directories under qdir and start the committer. NULL + err on failure. */
store *store_open(struct event_base *base, workq *wq, const char *qdir, char *err, size_t errlen);
/* store_close - stop the committer after finishing pending requests. */
void store_close(store *s);
/* store_new_id - a fresh queue id (unique across restarts) into buf (>= 32 bytes). */
void store_new_id(store *s, char *buf, size_t len);
/* store_commit - make n files durable (group commit); takes ownership of files[] and their data. */
void store_commit(store *s, store_file *files, size_t n, store_commit_cb cb, void *arg);
/* store_commit_bg - store_commit; urgent=false puts it behind every commit a client waits for
 * (notifications and other background work). */
void store_commit_bg(store *s, store_file *files, size_t n, bool urgent, store_commit_cb cb, void *arg);
/* store_recover - blocking scan at start-up: clean tmp/, validate every file, move bad ones to corrupt/. Returns files found. */
size_t store_recover(store *s, store_recover_cb cb, void *arg);
/*
 * store_recover_start - clean tmp/ now, then scan the queue on a thread of its own while the
 * daemon already accepts mail: batches of valid files reach batch on the loop, then done once.
 * Files this process commits (or claims) during the scan are never handed over.
 */
void store_recover_start(store *s, store_recover_batch_cb batch, store_recover_done_cb done, void *arg);
/* store_recover_stop - ask the background scan to stop and wait up to timeout_ms for it; false if
 * it is still blocked (in a read that does not return): the caller must then not close the store. */
bool store_recover_stop(store *s, int timeout_ms);
/* store_claim - id is a file this process moved into a channel directory itself (admin release,
 * start-up returns): the background scan must not hand it over again. Any thread. */
void store_claim(store *s, const char *id);
/* store_update_states - write the state records of msg's recipients in place; cb once they are flushed (group commit). */
void store_update_states(store *s, const char *path, const qmsg *msg, store_done_cb cb, void *arg);
/* store_remove - retire a queue file whose recipients are all final (recycled into .free/ by the committer). */
void store_remove(store *s, const char *path, store_done_cb cb, void *arg);

#endif

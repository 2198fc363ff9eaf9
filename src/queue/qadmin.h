/*
 * qadmin.h - queue administration shared by the live daemon (through the control socket) and
 * the offline `sluice queue` command: the command's arguments (a request: a command, an ID or a
 * selection, --json), the selection of messages, output formats (text and JSON), the summaries,
 * and the file operations that work while no daemon runs. Held messages live in
 * QUEUE/.held/<channel>.<id>; messages to be returned at the next start in
 * QUEUE/.return/<channel>.<id>. The last remote reply of each message is kept in memory by the
 * scheduler and saved in QUEUE/replies when the daemon stops, for the offline tools and the
 * next start. Any thread (no shared state).
 */
#ifndef SLUICE_QADMIN_H
#define SLUICE_QADMIN_H
#include <stdbool.h>

#include "conf/conf.h"
#include "core/util.h"
#include "queue/qfile.h"

/* ---- requests: `sluice queue CMD [ID] [--json] [selection]` ---- */

/* A selection of messages; every criterion given must hold (strings borrowed from argv). */
typedef struct {
    const char *from;    /* --from: substring of the envelope sender (case-insensitive) */
    const char *to;      /* --to: substring of a pending recipient, address or original */
    const char *domain;  /* --domain: a pending recipient's domain, exactly (case-insensitive) */
    const char *channel; /* --channel: the destination channel */
    const char *reply;   /* --reply: substring of the last remote reply (case-insensitive) */
    int64_t older_than;  /* --older-than: arrived at least this many seconds ago (0: any age) */
    bool all;            /* --all: every message */
    bool any;            /* some criterion (or --all) was given */
} qadmin_sel;

/* A parsed request. */
typedef struct {
    const char *cmd; /* list, show, hold, release, delete, return, retry, summary, stats, shaping */
    const char *arg; /* the ID (list: CHANNEL; retry: ID or CHANNEL), or NULL */
    qadmin_sel sel;
    bool json;       /* --json */
} qadmin_req;

/* qadmin_req_parse - the words of `sluice queue` into req (pointers into argv); 0, or 2 (usage)
 * with the reason in err: an unknown command or flag, a missing or extra argument, an action
 * with neither an ID nor a selection (or with both). */
int qadmin_req_parse(int argc, char **argv, qadmin_req *req, strbuf *err);
/* qadmin_usage - the usage text of `sluice queue` (static). */
const char *qadmin_usage(void);
/* qadmin_req_is_action - hold, release, delete, return or retry. */
bool qadmin_req_is_action(const qadmin_req *req);
/* qadmin_sel_match - whether m (last remote reply reply, NULL if none) is selected at now. */
bool qadmin_sel_match(const qadmin_sel *sel, const qmsg *m, const char *reply, int64_t now);

/* A message as the tools see it (borrowed). */
typedef struct {
    const qmsg *msg;
    const char *path;
    const char *state;  /* "queued", "delivering", "removing", "held", "returning" */
    const char *reply;  /* the last remote reply, or NULL */
    int64_t reply_at;   /* when it came (unix seconds), 0 if unknown */
} qadmin_ent;

/* qadmin_list - `list`: the entries matching req (its selection, and list's CHANNEL), text or JSON. */
void qadmin_list(const qadmin_req *req, const qadmin_ent *ents, size_t n, int64_t now, strbuf *out);
/* qadmin_show_ents - `show ID`: the entries with queue id id, text or JSON; returns how many. */
size_t qadmin_show_ents(const qadmin_req *req, const qadmin_ent *ents, size_t n, int64_t now, strbuf *out);
/* qadmin_summary_json - `summary --json`: one object per destination domain of the selected
 * entries' pending recipients: counts, oldest age, next retry, last remote reply, channels. */
void qadmin_summary_json(const qadmin_req *req, const qadmin_ent *ents, size_t n, int64_t now, strbuf *out);
/* qadmin_summary_ents - the text `summary` (per channel and routing host) of the selected queued entries. */
void qadmin_summary_ents(const qadmin_req *req, const qadmin_ent *ents, size_t n, int64_t now, strbuf *out);

/* The report of an action, one entry per message acted on: text lines, or a JSON array. */
typedef struct {
    strbuf *out;
    bool json;
    size_t n;
} qadmin_acts;
/* qadmin_act_report - one message: result "done", "busy" or "failed" (detail: what it is doing, or the error). */
void qadmin_act_report(qadmin_acts *a, const char *id, const char *channel, const char *action, const char *result,
                       const char *detail);
/* qadmin_acts_end - close the report (the JSON array). */
void qadmin_acts_end(qadmin_acts *a);

/* ---- last remote replies (QUEUE/replies) ---- */

/* The replies saved at the last stop, sorted for lookups. */
typedef struct qadmin_reply_rec qadmin_reply_rec;
typedef struct {
    qadmin_reply_rec *v;
    size_t n;
} qadmin_replies;
/* qadmin_replies_load - read QUEUE/replies (nothing when absent). */
void qadmin_replies_load(const char *qdir, qadmin_replies *r);
/* qadmin_replies_find - channel's message id's reply (its time into *at), or NULL. */
const char *qadmin_replies_find(const qadmin_replies *r, const char *channel, const char *id, int64_t *at);
/* qadmin_replies_put - add or replace the reply of channel's message id (keeps r sorted). */
void qadmin_replies_put(qadmin_replies *r, const char *channel, const char *id, int64_t at, const char *reply);
/* qadmin_replies_take - remove channel's message id's reply and hand it over (caller frees; its time into *at), or NULL. */
char *qadmin_replies_take(qadmin_replies *r, const char *channel, const char *id, int64_t *at);
/* qadmin_replies_keep - keep only the replies for which keep(arg, channel, id) holds. */
void qadmin_replies_keep(qadmin_replies *r, bool (*keep)(void *arg, const char *channel, const char *id), void *arg);
/* qadmin_replies_each - fn for every reply (for saving them). */
void qadmin_replies_each(const qadmin_replies *r, void (*fn)(void *arg, const char *channel, const char *id,
                                                              int64_t at, const char *reply), void *arg);
/* qadmin_replies_free - release r. */
void qadmin_replies_free(qadmin_replies *r);
/* qadmin_replies_line - one line of the file, appended to text. */
void qadmin_replies_line(strbuf *text, const char *channel, const char *id, int64_t at, const char *reply);
/* qadmin_replies_save - write text as QUEUE/replies (a temporary file renamed over it); -1 on error. */
int qadmin_replies_save(const char *qdir, const strbuf *text);

/* ---- files outside the scheduler ---- */

/* Messages read from files (owned). */
typedef struct {
    qadmin_ent *ents;
    qmsg *msgs;
    char **paths;
    size_t n;
} qadmin_files;
/* qadmin_files_load - every file of QUEUE/<sub> (".held" or ".return") as entries in state. Blocking. */
void qadmin_files_load(const char *qdir, const char *sub, const char *state, qadmin_files *f);
/* qadmin_files_free - release f. */
void qadmin_files_free(qadmin_files *f);

/* qadmin_list_line - one `queue list` line for m. */
void qadmin_list_line(const qmsg *m, const char *state, strbuf *out);
/* qadmin_show - the `queue show` block for m. */
void qadmin_show(const qmsg *m, const char *path, const char *state, strbuf *out);

/* Summary per channel and destination host. */
typedef struct {
    char *channel, *host;
    size_t count;
    int64_t oldest, next;
} qadmin_sum_row;
typedef struct {
    qadmin_sum_row *rows;
    size_t n;
} qadmin_summary;

/* qadmin_summary_add - count m's pending recipients (one count per message and host). */
void qadmin_summary_add(qadmin_summary *sum, const qmsg *m);
/* qadmin_summary_print - the table, then free it. */
void qadmin_summary_print(qadmin_summary *sum, int64_t now, strbuf *out);

/* qadmin_held_path - QUEUE/.held/<channel>.<id> (caller frees). */
char *qadmin_held_path(const char *qdir, const char *channel, const char *id);
/* qadmin_return_path - QUEUE/.return/<channel>.<id> (caller frees). */
char *qadmin_return_path(const char *qdir, const char *channel, const char *id);

/*
 * qadmin_offline - run `queue CMD ARGS` directly on the files (no daemon running). Returns the
 * exit status (0 ok, 1 not found/error, 2 usage); the answer goes to out.
 */
int qadmin_offline(const sl_conf *conf, int argc, char **argv, strbuf *out);

#endif

/*
 * qadmin.h - queue administration shared by the live daemon (through the control socket) and
 * the offline `sluice queue` command: output formats, the summary, and the file operations that
 * work while no daemon runs. Held messages live in QUEUE/.held/<channel>.<id>; messages to be
 * returned at the next start in QUEUE/.return/<channel>.<id>. Any thread (no shared state).
 */
#ifndef SLUICE_QADMIN_H
#define SLUICE_QADMIN_H
#include <stdbool.h>

#include "conf/conf.h"
#include "core/util.h"
#include "queue/qfile.h"

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

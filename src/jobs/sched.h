/*
 * sched.h - the job scheduler: holds every queued message file, decides when each recipient is
 * due, runs delivery jobs (one job = one delivery session) through the channel programs with at
 * most the channel's maxjobs at once, and applies the results durably: delivered/failed state
 * written in place before the file is removed, bounces committed before a recipient is marked
 * failed, temporary failures retried with exponential backoff (retry_interval doubling up to
 * retry_max) until message_lifetime.
 * Per channel, waiting messages sit in a min-heap by due time (O(log n) per decision); an SMTP
 * job keeps its connection and takes the next due message for the same host when there is one.
 * Loop thread only.
 */
#ifndef SLUICE_SCHED_H
#define SLUICE_SCHED_H
#include <stddef.h>

#include "core/ctx.h"
#include "core/util.h"
#include "queue/qfile.h"

typedef struct sched sched;

/* sched_new - an empty scheduler for ctx. */
sched *sched_new(sl_ctx *ctx);
/* sched_add - take over a queued message (committed at path) and schedule its pending recipients. */
void sched_add(sched *s, qmsg *msg, char *path);
/* sched_start - begin running jobs (after recovery). */
void sched_start(sched *s);
/* sched_stop - stop starting jobs; running ones finish or are abandoned by sched_free. */
void sched_stop(sched *s);
/* sched_idle - no job is running and no state write is pending. */
int sched_idle(const sched *s);
/* sched_free - release everything (queue files stay on disk). */
void sched_free(sched *s);
/* sched_admin_cb - the answer to an administration command (status as for a process exit). */
typedef void (*sched_admin_cb)(void *arg, int status, strbuf *out);
/*
 * sched_admin - `sluice queue` on the live queue: list [CH], show ID, hold ID, release ID,
 * delete ID, return ID, retry ID|CH, summary. A message being delivered right now cannot be held,
 * deleted or returned ("busy"); its file operations run on the worker queue. cb runs once.
 */
void sched_admin(sched *s, int argc, char **argv, sched_admin_cb cb, void *arg);
/* sched_return_pending - start-up: queue files moved to QUEUE/.return while stopped are bounced now. */
void sched_load_returns(sched *s);
/* sched_stats - "queue stats": messages, recovery, bodies in memory, heap and decision costs. */
void sched_stats(const sched *s, strbuf *out);
/* sched_recovery - the start-up scan is running, or ended having found messages in secs. */
void sched_recovery(sched *s, bool running, size_t found, double secs);
/* sched_count - messages held. */
size_t sched_count(const sched *s);

#endif

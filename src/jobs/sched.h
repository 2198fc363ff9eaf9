/*
 * sched.h - the job scheduler: holds every queued message file, decides when each is due, and
 * runs delivery jobs (one job = one delivery session) through the channel programs
 * (deliver/program.h) within the channel's and its pool's job limits; what a result means
 * is jobs/outcome.c's business, the heap of waiting messages jobs/dueheap.c's.
 *
 * Per channel, waiting messages sit in a min-heap by due time (O(log n) per decision); a job
 * whose program keeps a connection takes the next due message for the same host when there is
 * one, and otherwise parks for a moment. A channel runs at most min(maxjobs, its pool's
 * job_limit) jobs, and the channels of a pool share the pool's job_limit.
 *
 * Ownership: the scheduler owns every message handed to it (sched_add, sched_add_later) and
 * frees it when its file is removed or at sched_free (the files stay on disk). It borrows ctx
 * and the program table for its lifetime.
 *
 * Administration (`sluice queue` on a live daemon, formatted by cli/control_queue.c) is typed:
 * listing functions call back once per message, acting functions once per message acted on and
 * then once with NULL. A message being delivered right now cannot be held, deleted or returned
 * (SCHED_ACT_BUSY); their file operations run on the worker queue.
 * Loop thread only.
 */
#ifndef SLUICE_SCHED_H
#define SLUICE_SCHED_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"
#include "core/util.h"
#include "deliver/program.h"
#include "queue/qadmin.h"
#include "queue/qfile.h"

typedef struct sched sched;

/* sched_new - an empty scheduler for ctx, running deliveries through the programs of progs. */
sched *sched_new(sl_ctx *ctx, const deliv_programs *progs);
/* sched_add - take over a queued message (committed at path) and schedule its pending recipients now. */
void sched_add(sched *s, qmsg *msg, char *path);
/* sched_add_later - sched_add at the end of the current loop turn: the enqueue sink, so that a
 * message queued while the scheduler handles a result (a bounce) never re-enters it. */
void sched_add_later(sched *s, qmsg *msg, char *path);
/* sched_start - begin running jobs (after recovery). */
void sched_start(sched *s);
/* sched_stop - stop starting jobs; running ones finish or are abandoned by sched_free. */
void sched_stop(sched *s);
/* sched_idle - no job is running and no state write is pending. */
int sched_idle(const sched *s);
/* sched_free - release everything (queue files stay on disk). */
void sched_free(sched *s);
/* sched_load_returns - start-up: queue files moved to QUEUE/.return while stopped are bounced now. */
void sched_load_returns(sched *s);
/* sched_recovery - the start-up scan is running, or ended having found messages in secs. */
void sched_recovery(sched *s, bool running, size_t found, double secs);
/* sched_replies_save - write every message's last remote reply to QUEUE/replies (at stop, for the
 * offline tools and the next start; blocking). */
void sched_replies_save(const sched *s);
/* sched_reply_of - the last remote reply of a message the scheduler does not hold (held aside), or NULL. */
const char *sched_reply_of(const sched *s, const char *channel, const char *id, int64_t *at);
/* sched_etrn - ETRN (RFC 1985): make the pending recipients for node due now and start their
 * delivery; node is "domain" (recipients in that domain), "@domain" (also its subdomains) or
 * "#channel" (every message of the channel). Returns the messages started, -1 when stopped. */
int sched_etrn(sched *s, const char *node);
/* sched_reconf - the daemon's configuration was replaced (SIGHUP): traffic shaping takes the new
 * table and every channel is kicked. */
void sched_reconf(sched *s);
/* sched_count - messages held. */
size_t sched_count(const sched *s);

/* ---- administration ---- */

/* A queued message as the administrator sees it (valid during the callback only). */
typedef struct {
    const qmsg *msg;
    const char *path;
    const char *state; /* "queued", "delivering" or "removing" */
    const char *reply; /* the last remote reply, or NULL */
    int64_t reply_at;
} sched_entry;
/* sched_entry_cb - one message of a listing. */
typedef void (*sched_entry_cb)(void *arg, const sched_entry *e);

/* sched_list - every message (only channel's when channel is not NULL), newest first. */
void sched_list(const sched *s, const char *channel, sched_entry_cb cb, void *arg);
/* sched_show - the messages with queue id id (one per channel); returns how many. */
size_t sched_show(const sched *s, const char *id, sched_entry_cb cb, void *arg);
/* sched_summary - add every message's pending recipients to sum (qadmin_summary_print prints and frees it). */
void sched_summary(const sched *s, qadmin_summary *sum);

/* The scheduler's figures for "queue stats" (averages since the start). */
typedef struct {
    size_t messages;
    bool recovering;              /* the start-up scan is still running */
    size_t recovered;             /* ... else the messages it found */
    double recover_secs;          /* ... and how long it took */
    uint64_t body_bytes;          /* message content held in memory */
    uint64_t cache_size;          /* queue_cache_size */
    size_t heap_max;              /* the largest channel heap seen */
    uint64_t heap_ops, heap_ns;   /* pushes and removals in the channel heaps, and their total time */
    uint64_t decisions, decide_ns;/* messages handed to a new job, and the total time of those hand-overs */
} sched_counters;

/* sched_stats - the current figures into out. */
void sched_stats(const sched *s, sched_counters *out);

/* One destination of traffic shaping as `sluice queue shaping` shows it (valid during the callback only). */
typedef struct {
    const char *dest;         /* a domain, or "mx:SUFFIX" for an MX provider */
    const char *entry;        /* the table's entry that applies ("*", ".example.net", ...), or NULL: none */
    const char *state;        /* "active", "halved" or "suspended" */
    int64_t until;            /* suspended: until then (unix seconds), else 0 */
    unsigned rate;            /* messages per hour now (0: no limit) */
    unsigned per_hour;        /* messages per hour configured (0: no limit) */
    unsigned halvings;        /* halvings in force */
    int connections;          /* connections in use */
    unsigned max_connections; /* configured (0: no limit) */
    unsigned per_connection;  /* configured (0: no limit) */
    unsigned last_hour;       /* messages started in the last hour */
    size_t waiting;           /* messages held back for it now */
} sched_shaping;
/* sched_shaping_cb - one destination of a shaping listing. */
typedef void (*sched_shaping_cb)(void *arg, const sched_shaping *d);
/* sched_shaping_list - every destination traffic shaping remembers (doc/delivery.md "Traffic shaping"). */
void sched_shaping_list(sched *s, sched_shaping_cb cb, void *arg);

typedef enum {
    SCHED_ACT_DONE,   /* done (for file operations: the file is moved or removed) */
    SCHED_ACT_BUSY,   /* the message is being delivered or removed: try again */
    SCHED_ACT_FAILED  /* the file operation failed: err */
} sched_act_status;

/* What happened to one message (valid during the callback only). */
typedef struct {
    const char *action;     /* "hold", "release", "delete", "return" or "retry" */
    const char *id, *channel;
    sched_act_status status;
    const char *state;      /* SCHED_ACT_BUSY: what the message is doing ("delivering", "removing") */
    int err;                /* SCHED_ACT_FAILED: the errno of the file operation */
} sched_act;
/* sched_act_cb - one message acted on; act == NULL exactly once, last, when the request is complete. */
typedef void (*sched_act_cb)(void *arg, const sched_act *act);

/* sched_hold - move the waiting messages with queue id id to QUEUE/.held (out of the scheduler). */
void sched_hold(sched *s, const char *id, sched_act_cb cb, void *arg);
/* sched_release - move QUEUE/.held/<channel>.<id> back into the queue and schedule it. */
void sched_release(sched *s, const char *id, sched_act_cb cb, void *arg);
/* sched_delete - remove the waiting messages with queue id id from the disk and the scheduler. */
void sched_delete(sched *s, const char *id, sched_act_cb cb, void *arg);
/* sched_return - bounce the waiting messages with queue id id now (also in a hold channel). */
void sched_return(sched *s, const char *id, sched_act_cb cb, void *arg);
/* sched_retry - make every pending recipient of the messages with queue id (or in channel) id due now. */
void sched_retry(sched *s, const char *id, sched_act_cb cb, void *arg);

/* sched_match_fn - whether a message (its last remote reply: reply, or NULL) is selected. */
typedef bool (*sched_match_fn)(void *arg, const qmsg *m, const char *reply);
/* sched_act_select - action ("hold", "delete", "return" or "retry") on every message of the
 * scheduler that match selects, reported as for the actions by id. */
void sched_act_select(sched *s, const char *action, sched_match_fn match, void *marg, sched_act_cb cb, void *arg);
/* sched_release_select - release every held message (QUEUE/.held, read back to be matched) that match selects. */
void sched_release_select(sched *s, sched_match_fn match, void *marg, sched_act_cb cb, void *arg);

#endif

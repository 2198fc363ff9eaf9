/*
 * sched_int.h - the scheduler's insides, shared by its two files and nobody else: sched.c
 * (heap, pools, jobs) and sched_admin.c (administration and start-up returns).
 *
 * Ownership: the scheduler owns every qent (a queued file and its qmsg). A qent is either in
 * its channel's heap (waiting), or held by one or more jobs (busy: each job delivers a disjoint
 * set of its recipients, those of one destination host, so a message for several domains goes
 * to their hosts in parallel), or being removed from the disk. Every qent is also on the scheduler's list `all`, newest first, for administration.
 * Loop thread only.
 */
#ifndef SLUICE_SCHED_INT_H
#define SLUICE_SCHED_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/dueheap.h"
#include "jobs/sched.h"

typedef struct chanq chanq;
typedef struct sdest sdest;

typedef struct qent {
    dueheap_node hn; /* due time and heap position (hn.queued: waiting in cq's heap) */
    qmsg *msg;
    char *path;
    chanq *cq;
    bool removing;   /* being removed from disk */
    bool return_now; /* administrator asked for a bounce now */
    int holders;     /* jobs delivering some of its recipients now (one per destination host at most at once) */
    int pins;        /* the scheduler is starting jobs for it: it must not go back to the heap yet */
    bool *inflight;  /* per recipient: in a job's item now (allocated at the first item of a message
                        with several recipients), or NULL */
    bool writing;    /* a write of its recipient states is being flushed */
    bool rewrite;    /* ... and another item's states wait for it to finish (writes of one file never overlap) */
    char *last_reply; /* the diagnostic of the last attempt that did not deliver every recipient, or NULL */
    int64_t reply_at; /* when it came */
    struct qent *prev, *next; /* every qent of the scheduler */
    sdest *wait;      /* traffic shaping holds it back: on this destination's wait list (out of the heap) */
    struct qent *wait_prev, *wait_next;
} qent;

/* The jobs running in the channels of one pool. */
typedef struct poolq {
    char *name;
    int active;
} poolq;

/* One channel: its waiting messages, running and parked jobs, and the timer of its next due message. */
struct chanq {
    char *name;
    bool kicking;     /* re-entrancy guard: a job can end inside kick */
    struct job *idle; /* parked jobs (they still count in active) */
    dueheap heap;
    int active;
    struct event *timer;
    sched *s;
    unsigned shape_gen; /* the shaping view shape_ok was computed for (sched_shape.c) */
    bool shape_ok;      /* its deliveries are shaped */
    size_t m_count;   /* scratch of the queue gauges (sched_admin.c) */
    int64_t m_oldest;
};

/* A message committed while the scheduler was busy, waiting for the end of the loop turn. */
typedef struct {
    qmsg *msg;
    char *path;
} sched_later;

struct sched {
    sl_ctx *ctx;
    const deliv_programs *progs;
    chanq **chans;
    size_t n_chans;
    poolq **pools;
    size_t n_pools;
    size_t rr;           /* round-robin start when a pool slot frees */
    qent *all;           /* every qent, for administration */
    bool running;
    int busy;            /* jobs plus outstanding removals and state writes */
    size_t count;        /* qents held */
    uint64_t body_bytes; /* message content held in memory (queue_cache_size bounds it) */
    sched_later *later;  /* sched_add_later's messages, added by ev_later */
    size_t n_later, cap_later;
    struct event *ev_later;
    /* statistics for "queue stats" (benchmark 4: the cost of a decision must not grow with the queue) */
    uint64_t heap_ops, heap_ns;    /* pushes and removals in the channel heaps, and their time */
    uint64_t decisions, decide_ns; /* messages handed to a new job by kick, and the time per hand-over */
    size_t heap_max;               /* the largest channel heap seen */
    bool m_tallied;                /* the queue gauges' scratch is fresh for this scrape (sched_admin.c) */
    qadmin_replies replies;        /* last remote replies of messages outside the scheduler: held ones, and
                                      those of QUEUE/replies not yet recovered (pruned after recovery) */
    bool recovering;               /* the start-up scan is still running */
    size_t recovered;
    double recover_secs;
    struct sched_shape *shape;     /* traffic shaping's destinations (sched_shape.c), NULL until first used */
};

/* sched_qent_add - sched_add, returning the new qent. */
qent *sched_qent_add(sched *s, qmsg *msg, char *path);
/* sched_qent_free - unlink e from the scheduler and free it with its message (not counted down). */
void sched_qent_free(qent *e);
/* sched_qent_state - "queued", "removing" or "delivering". */
const char *sched_qent_state(const qent *e);
/* sched_qent_unshape - a message traffic shaping holds back goes back into its heap (administration). */
void sched_qent_unshape(qent *e);
/* sched_heap_push - put e into its channel's heap at e->hn.due (timed for the statistics). */
void sched_heap_push(qent *e);
/* sched_heap_remove - take a waiting e out of its channel's heap (timed for the statistics). */
void sched_heap_remove(qent *e);
/* sched_metrics_register - the queue gauges (messages and oldest age per channel) of s. */
void sched_metrics_register(sched *s);
/* sched_kick - start the due messages of e's channel that its limits allow. */
void sched_kick(chanq *cq);

/* ---- traffic shaping (sched_shape.c; doc/delivery.md "Traffic shaping") ----
 * A destination (sdest) is a recipient domain, or an MX provider; it lives while a job, a
 * waiting message, a suspension, a halving or the last hour's messages need it. */

/* sched_shape_on - whether cq's deliveries are shaped: a shaping table is configured and the channel
 * delivers by MX over SMTP. Refreshes the scheduler's view of the table after a reload. */
bool sched_shape_on(chanq *cq);
/* sched_shape_dest - the destination of routing host host (created on first use). */
sdest *sched_shape_dest(sched *s, const char *host);
/* sched_shape_check - whether a message for d may start at now_ms on a new connection or an open one. */
int sched_shape_check(sdest *d, bool new_conn, int64_t now_ms);
/* sched_shape_job_ok - whether an open connection to d that carried sent messages may carry another
 * (not suspended, per_connection not reached), whatever the rate says. */
bool sched_shape_job_ok(sdest *d, unsigned sent, int64_t now_ms);
/* sched_shape_conn - a connection to d opens (+1) or closes (-1); a close lets waiting messages go. */
void sched_shape_conn(sdest *d, int delta);
/* sched_shape_idle - a connection to d is parked: the first message d holds back may take it (or,
 * for another domain of a provider, have it closed to make room), unless the rate or a suspension says no. */
void sched_shape_idle(sdest *d);
/* sched_shape_sent - a message for d starts now. */
void sched_shape_sent(sdest *d, int64_t now_ms);
/* sched_shape_wait - e (out of the heap) waits until d lets it go (back into its heap, kicked). */
void sched_shape_wait(sdest *d, qent *e, int64_t now_ms);
/* sched_shape_unwait - take e off its wait list (administration, freeing); it is in no heap then. */
void sched_shape_unwait(qent *e);
/* sched_shape_result - an item to d is done: reaction rules on its replies, the ramp on its successes. */
void sched_shape_result(sched *s, sdest *d, const deliv_item *item);
/* sched_shape_reconf - after a reload: the view follows the new table (new limits apply, waiting messages retry). */
void sched_shape_reconf(sched *s);
/* sched_shape_free - free every destination (waiting qents are freed by the caller first). */
void sched_shape_free(sched *s);
/* sched_shape_metrics_register - shaping's gauges. */
void sched_shape_metrics_register(sched *s);
/* sched_now_ms - the shaping clock (monotonic milliseconds). */
int64_t sched_now_ms(void);

#endif

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
};

/* sched_qent_add - sched_add, returning the new qent. */
qent *sched_qent_add(sched *s, qmsg *msg, char *path);
/* sched_qent_free - unlink e from the scheduler and free it with its message (not counted down). */
void sched_qent_free(qent *e);
/* sched_qent_state - "queued", "removing" or "delivering". */
const char *sched_qent_state(const qent *e);
/* sched_heap_push - put e into its channel's heap at e->hn.due (timed for the statistics). */
void sched_heap_push(qent *e);
/* sched_heap_remove - take a waiting e out of its channel's heap (timed for the statistics). */
void sched_heap_remove(qent *e);
/* sched_metrics_register - the queue gauges (messages and oldest age per channel) of s. */
void sched_metrics_register(sched *s);
/* sched_kick - start the due messages of e's channel that its limits allow. */
void sched_kick(chanq *cq);

#endif

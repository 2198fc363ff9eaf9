/*
 * workq.h - a small pool of worker threads for blocking work (fsync, Maildir writes, queue file
 * updates), with completions delivered back on the event loop (DESIGN.md §3: nothing blocking
 * runs on a loop). workq_submit may be called from the loop thread only; fn runs on a worker;
 * done runs later on the loop thread.
 */
#ifndef SLUICE_WORKQ_H
#define SLUICE_WORKQ_H

struct event_base;
typedef struct workq workq;

/* workq_fn - the blocking part, run on a worker thread. */
typedef void (*workq_fn)(void *arg);
/* workq_done - the completion, run on the loop thread after fn returned. */
typedef void (*workq_done)(void *arg);

/* workq_new - start nthreads workers whose completions are dispatched on base. */
workq *workq_new(struct event_base *base, int nthreads);
/* workq_submit - queue fn(arg) for a worker, then done(arg) on the loop (done may be NULL). */
void workq_submit(workq *q, workq_fn fn, workq_done done, void *arg);
/* workq_pending - jobs submitted whose completion has not run yet. */
int workq_pending(const workq *q);
/* workq_free - finish queued jobs, run their completions, stop the workers. */
void workq_free(workq *q);

/* completion_port - lets any thread schedule a function on the loop (used by workq and the queue store). */
typedef struct completion_port completion_port;
/* completion_port_new - a port dispatching on base. */
completion_port *completion_port_new(struct event_base *base);
/* completion_port_post - from any thread: run fn(arg) on the loop soon. */
void completion_port_post(completion_port *p, workq_done fn, void *arg);
/* completion_port_drain - run every posted function now (loop thread). */
void completion_port_drain(completion_port *p);
/* completion_port_free - drain and free (loop thread, after all posters stopped). */
void completion_port_free(completion_port *p);

#endif

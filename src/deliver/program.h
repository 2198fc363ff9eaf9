/*
 * program.h - the channel-program interface: how the job scheduler (jobs/sched.c) runs a
 * delivery without knowing how a channel delivers, and which program runs which channel.
 *
 * A job is one delivery session of one channel to one routing host. The scheduler owns the
 * deliv_job and hands its program one deliv_item at a time through start; the program fills
 * every result and calls done exactly once, on the loop thread and never before start has
 * returned. A program that keeps something between the items of a job (an open SMTP
 * connection) keeps it in job->state, which it owns: reusable says whether the next item to
 * the same host may follow on it, job_close releases it when the job ends (never while an item
 * is running). A program without per-job state leaves reusable and job_close NULL.
 *
 * Programs by channel kind (deliv_kind_of): Maildir for "l" (local.c), re-rewriting and
 * requeueing for process* (process.c), the SMTP/LMTP client for tcp_* and lmtp* (smtp_prog.c,
 * wrapping smtp_out.c), and fixed answers (fixed.c) for bitbucket (discarded), hold and
 * channels that only route (cannot deliver), and an administrator's return (returned to the
 * sender), which the scheduler picks instead of the channel's program for a returned message.
 * The table is passed to the scheduler by the daemon (or by a unit test with its own programs).
 * Loop thread only; a program may hand blocking work to ctx->wq.
 */
#ifndef SLUICE_PROGRAM_H
#define SLUICE_PROGRAM_H
#include <stdbool.h>

#include "conf/conf.h"
#include "core/ctx.h"
#include "deliver/deliver.h"

/* What a program runs with: owned by the scheduler for the job's lifetime, except state. */
typedef struct deliv_job {
    sl_ctx *ctx;            /* the daemon's services: loop, worker queue, DNS, TLS, store, enqueue sink */
    const sl_conf *conf;    /* the configuration the job holds a reference to */
    const sl_channel *ch;   /* the job's channel, in conf */
    const char *host;       /* the routing host of every item of the job */
    void *state;            /* the program's own (NULL at first), e.g. its SMTP session */
} deliv_job;

/* deliv_done_cb - every result of item is filled. */
typedef void (*deliv_done_cb)(void *arg, deliv_item *item);

typedef struct deliv_program {
    const char *name; /* for logs and tests */
    /* start - deliver item (results zeroed by the scheduler); done(arg, item) once, after start returned. */
    void (*start)(deliv_job *job, deliv_item *item, deliv_done_cb done, void *arg);
    /* reusable - whether another item to job->host may follow now; NULL: never. */
    bool (*reusable)(const deliv_job *job);
    /* job_close - the job ends: release job->state. NULL: the program keeps no state. */
    void (*job_close)(deliv_job *job);
} deliv_program;

/* The kinds of channel program; a table maps each to its program. */
typedef enum {
    DELIV_LOCAL,     /* "l": Maildir */
    DELIV_SMTP,      /* tcp_*, lmtp*: the SMTP/LMTP client */
    DELIV_PROCESS,   /* process*: rewrite again and requeue */
    DELIV_BITBUCKET, /* bitbucket: discard */
    DELIV_HOLD,      /* hold, and channels that only route: cannot deliver */
    DELIV_RETURN,    /* an administrator's return, in any channel */
    DELIV_KINDS
} deliv_kind;

typedef struct {
    const deliv_program *by_kind[DELIV_KINDS];
} deliv_programs;

/* The built-in programs (each in its own file). */
extern const deliv_program deliv_program_local;
extern const deliv_program deliv_program_smtp;
extern const deliv_program deliv_program_process;
extern const deliv_program deliv_program_bitbucket;
extern const deliv_program deliv_program_hold;
extern const deliv_program deliv_program_return;

/* deliv_worker_fn - fill item's results on a worker thread (blocking work allowed; job is read only). */
typedef void (*deliv_worker_fn)(const deliv_job *job, deliv_item *item);
/* deliv_start_on_worker - the start of a blocking program: fn on job->ctx->wq, then done on the loop. */
void deliv_start_on_worker(deliv_job *job, deliv_item *item, deliv_worker_fn fn, deliv_done_cb done, void *arg);

/* deliv_kind_of - the kind of program that delivers for ch. */
deliv_kind deliv_kind_of(const sl_channel *ch);
/* deliv_programs_builtin - the table of the built-in programs (static, never freed). */
const deliv_programs *deliv_programs_builtin(void);
/* deliv_program_for - the program for ch in t; returning: the administrator's return instead. */
const deliv_program *deliv_program_for(const deliv_programs *t, const sl_channel *ch, bool returning);

#endif

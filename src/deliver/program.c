/* program.c - which channel program runs which channel (see program.h). */
#include "deliver/program.h"
#include "core/workq.h"

#include <stdlib.h>

deliv_kind deliv_kind_of(const sl_channel *ch)
{
    switch (ch->type) {
    case CHAN_LOCAL: return DELIV_LOCAL;
    case CHAN_SMTP:
    case CHAN_LMTP: return DELIV_SMTP;
    case CHAN_PROCESS: return DELIV_PROCESS;
    case CHAN_BITBUCKET: return DELIV_BITBUCKET;
    case CHAN_HOLD:
    case CHAN_OTHER: break;
    }
    return DELIV_HOLD;
}

const deliv_programs *deliv_programs_builtin(void)
{
    static const deliv_programs builtin = {{
        [DELIV_LOCAL] = &deliv_program_local,
        [DELIV_SMTP] = &deliv_program_smtp,
        [DELIV_PROCESS] = &deliv_program_process,
        [DELIV_BITBUCKET] = &deliv_program_bitbucket,
        [DELIV_HOLD] = &deliv_program_hold,
        [DELIV_RETURN] = &deliv_program_return,
    }};
    return &builtin;
}

const deliv_program *deliv_program_for(const deliv_programs *t, const sl_channel *ch, bool returning)
{
    return t->by_kind[returning ? DELIV_RETURN : deliv_kind_of(ch)];
}

/* A blocking item in flight on the worker queue. */
typedef struct {
    deliv_job *job;
    deliv_item *item;
    deliv_worker_fn fn;
    deliv_done_cb done;
    void *arg;
} worker_run;

/* worker_run_fn - the worker thread's part: the program fills the results. */
static void worker_run_fn(void *arg)
{
    worker_run *w = arg;
    w->fn(w->job, w->item);
}

/* worker_run_done - back on the loop: hand the item back to the scheduler. */
static void worker_run_done(void *arg)
{
    worker_run *w = arg;
    deliv_done_cb done = w->done;
    void *done_arg = w->arg;
    deliv_item *item = w->item;
    free(w);
    done(done_arg, item);
}

void deliv_start_on_worker(deliv_job *job, deliv_item *item, deliv_worker_fn fn, deliv_done_cb done, void *arg)
{
    worker_run *w = xcalloc(1, sizeof *w);
    w->job = job;
    w->item = item;
    w->fn = fn;
    w->done = done;
    w->arg = arg;
    workq_submit(job->ctx->wq, worker_run_fn, worker_run_done, w);
}

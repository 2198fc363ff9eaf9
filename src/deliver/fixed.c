/*
 * fixed.c - the channel programs whose answer does not depend on the recipient (see
 * program.h): bitbucket (discarded, 2.0.0), hold (a hold channel, or a channel that only
 * routes, cannot deliver: 4.3.5, retried) and return (an administrator's return: 5.0.0, so the
 * sender gets a failed DSN). They keep no per-job state. The answers are filled on a worker
 * thread like a Maildir delivery's, so done never runs inside start.
 */
#include "deliver/program.h"

/* fill_all - give every recipient of item the same result. */
static void fill_all(deliv_item *item, sl_result res, const char *status, const char *diag)
{
    for (size_t i = 0; i < item->n; i++) deliv_result_set(&item->results[i], res, status, diag, NULL);
}

/* bitbucket_fill - discard: delivered. */
static void bitbucket_fill(const deliv_job *job, deliv_item *item)
{
    (void)job;
    fill_all(item, SL_OK, "2.0.0", "x-local; discarded");
}

/* hold_fill - a channel that cannot deliver: retry later. */
static void hold_fill(const deliv_job *job, deliv_item *item)
{
    (void)job;
    fill_all(item, SL_TEMP, "4.3.5", "x-local; channel cannot deliver");
}

/* return_fill - returned by the postmaster: a permanent failure. */
static void return_fill(const deliv_job *job, deliv_item *item)
{
    (void)job;
    fill_all(item, SL_PERM, "5.0.0", "x-sluice; returned to the sender by the postmaster");
}

/* bitbucket_start - the bitbucket program's start. */
static void bitbucket_start(deliv_job *job, deliv_item *item, deliv_done_cb done, void *arg)
{
    deliv_start_on_worker(job, item, bitbucket_fill, done, arg);
}

/* hold_start - the hold program's start. */
static void hold_start(deliv_job *job, deliv_item *item, deliv_done_cb done, void *arg)
{
    deliv_start_on_worker(job, item, hold_fill, done, arg);
}

/* return_start - the return program's start. */
static void return_start(deliv_job *job, deliv_item *item, deliv_done_cb done, void *arg)
{
    deliv_start_on_worker(job, item, return_fill, done, arg);
}

const deliv_program deliv_program_bitbucket = {.name = "bitbucket", .start = bitbucket_start};
const deliv_program deliv_program_hold = {.name = "hold", .start = hold_start};
const deliv_program deliv_program_return = {.name = "return", .start = return_start};

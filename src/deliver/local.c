/*
 * local.c - the local channel program ("l", see program.h): each recipient's copy goes into
 * its Maildir under maildir_root (maildir.c) after a Return-Path: and a Delivered-To: line.
 * The writes block (fsync), so they run on a worker thread; no per-job state.
 */
#include "deliver/maildir.h"
#include "deliver/program.h"

#include <stdlib.h>

/* local_deliver_one - store m for r; the result says where it went or why not. */
static void local_deliver_one(const deliv_job *job, const qmsg *m, const qrcpt *r, deliv_result *res)
{
    char err[256] = "";
    char *prefix = xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", m->sender, r->addr);
    sl_result rc = maildir_deliver_folder(job->conf->opt.maildir_root, r->addr, r->folder, prefix, m->data, m->data_len,
                                          0, err, sizeof err);
    free(prefix);
    char *diag = rc == SL_OK && r->folder ? xasprintf("x-local; delivered to maildir folder %s", r->folder)
                                          : xasprintf("x-local; %s", rc == SL_OK ? "delivered to maildir" : err);
    deliv_result_set(res, rc, rc == SL_OK ? "2.0.0" : rc == SL_PERM ? "5.1.3" : "4.3.0", diag, NULL);
    free(diag);
}

/* local_fill - every recipient of item, on the worker thread. */
static void local_fill(const deliv_job *job, deliv_item *item)
{
    for (size_t i = 0; i < item->n; i++)
        local_deliver_one(job, item->msg, &item->msg->rcpts[item->rcpts[i]], &item->results[i]);
}

/* local_start - the local program's start. */
static void local_start(deliv_job *job, deliv_item *item, deliv_done_cb done, void *arg)
{
    deliv_start_on_worker(job, item, local_fill, done, arg);
}

const deliv_program deliv_program_local = {.name = "local", .start = local_start};

/*
 * process.c - the process channel program (process*, see program.h): each recipient is
 * rewritten again with this channel as the source channel, and the recipients that route
 * somewhere else are requeued as one new message (enqueue_submit; the daemon's enqueue sink
 * hands the new files to the scheduler). Recipients that cannot be routed fail (5.4.6, or
 * 4.4.6 for a temporary lookup failure), a rule that routes back to this channel is a loop
 * (5.4.6), and a failed requeue defers the routed ones (4.3.0). No per-job state; runs on the
 * loop (rewriting does not block), and done runs after the requeue is durable.
 */
#include "core/log.h"
#include "deliver/program.h"
#include "queue/enqueue.h"
#include "queue/store.h"
#include "rewrite/rewrite.h"
#include "rewrite/route.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* One item being requeued. */
typedef struct {
    deliv_item *item;
    deliv_done_cb done;
    void *arg;
    enq_msg em; /* the new message: this one's envelope, the routed recipients */
} procjob;

/* process_finish - hand the item back and free p. */
static void process_finish(procjob *p)
{
    deliv_done_cb done = p->done;
    void *arg = p->arg;
    deliv_item *item = p->item;
    enqueue_msg_free(&p->em);
    free(p);
    done(arg, item);
}

/* process_requeued - the new message is durable (or not): routed recipients succeed (or defer). */
static void process_requeued(void *arg, sl_result res, const char *err)
{
    procjob *p = arg;
    deliv_item *it = p->item;
    for (size_t i = 0; i < it->n; i++) {
        if (it->results[i].result != SL_OK) continue; /* routing failures keep their PERM result */
        if (res != SL_OK) deliv_result_set(&it->results[i], SL_TEMP, "4.3.0", err ? err : "requeue failed", NULL);
    }
    if (res == SL_OK)
        log_info(it->msg->id, "requeued", "id=%s from_channel=%s nrcpt=%zu", p->em.id, it->msg->channel,
                 p->em.n_rcpts);
    process_finish(p);
}

/* process_nothing_routed - no recipient to requeue: finish on the next loop turn (not inside start). */
static void process_nothing_routed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process_finish(arg);
}

/* process_envelope - the new message's envelope: a copy of m's, with m's channel as the source. */
static void process_envelope(const deliv_job *job, const qmsg *m, enq_msg *em)
{
    store_new_id(job->ctx->store, em->id, sizeof em->id);
    em->sender = xstrdup(m->sender);
    em->envid = xstrdup(m->envid);
    em->ret = m->ret;
    em->body = m->body;
    em->smtputf8 = m->smtputf8;
    em->is_notification = m->is_notification;
    em->is_postmaster_copy = m->is_postmaster_copy;
    em->arrival = m->arrival;
    em->src_channel = xstrdup(m->channel);
    em->client = xstrdup(m->client);
    em->content = m->content ? qbody_ref(m->content) : qbody_copy(m->data, m->data_len);
}

/* process_route_one - rewrite r from this channel: add it to em, or fail its result. */
static void process_route_one(const deliv_job *job, const qrcpt *r, deliv_result *res, enq_msg *em)
{
    rw_result rw;
    memset(&rw, 0, sizeof rw);
    sl_result rc = rewrite_address(job->conf, r->addr, job->ch->name, &rw, NULL);
    if (rc == SL_OK && str_ieq(rw.channel->name, job->ch->name)) {
        rc = SL_PERM;
        free(rw.error);
        rw.error = xstrdup("routing loop: the process channel routes to itself");
    }
    if (rc != SL_OK) {
        char *diag = xasprintf("x-process; %s", rw.error ? rw.error : "cannot route");
        deliv_result_set(res, rc == SL_PERM ? SL_PERM : SL_TEMP, rc == SL_PERM ? "5.4.6" : "4.4.6", diag, NULL);
        free(diag);
    } else {
        char *diag = xasprintf("x-process; requeued to %s", rw.channel->name);
        deliv_result_set(res, SL_OK, "2.0.0", diag, NULL);
        free(diag);
        char *dest = route_dest_host(&rw);
        enqueue_add_rcpt(em, rw.addr, r->orig, r->orcpt, rw.channel->name, dest, r->notify);
        em->rcpts[em->n_rcpts - 1].folder = xstrdup(r->folder); /* a Sieve fileinto goes along */
        free(dest);
    }
    rw_result_free(&rw);
}

/* process_start - route every recipient of item again, then requeue the routed ones. */
static void process_start(deliv_job *job, deliv_item *item, deliv_done_cb done, void *arg)
{
    const qmsg *m = item->msg;
    procjob *p = xcalloc(1, sizeof *p);
    p->item = item;
    p->done = done;
    p->arg = arg;
    process_envelope(job, m, &p->em);
    for (size_t i = 0; i < item->n; i++) process_route_one(job, &m->rcpts[item->rcpts[i]], &item->results[i], &p->em);
    if (!p->em.n_rcpts) {
        struct timeval zero = {0, 0};
        event_base_once(job->ctx->base, -1, EV_TIMEOUT, process_nothing_routed, p, &zero);
        return;
    }
    enqueue_submit(job->ctx, &p->em, process_requeued, p);
}

const deliv_program deliv_program_process = {.name = "process", .start = process_start};

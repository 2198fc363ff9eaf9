/* bounce.c - queue a DSN to the envelope sender (see bounce.h). */
#include "dsn/bounce.h"
#include "conf/conf.h"
#include "core/log.h"
#include "queue/store.h"
#include "rewrite/rewrite.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    enq_msg em;
    char *text;
    enqueue_cb cb;
    void *arg;
    char orig_id[32];
} bounce_job;

static void bounce_committed(void *arg, sl_result res, const char *err)
{
    bounce_job *b = arg;
    if (res == SL_OK)
        log_info(b->orig_id, "bounce", "id=%s to=<%s>", b->em.id, b->em.rcpts[0].addr);
    else
        log_error(b->orig_id, "bounce_error", "error=\"%s\"", err ? err : "");
    b->cb(b->arg, res, err);
    enqueue_msg_free(&b->em);
    free(b->text);
    free(b);
}

void bounce_submit(sl_ctx *ctx, const qmsg *m, const dsn_report *reports, size_t n, enqueue_cb cb, void *arg)
{
    if (!m->sender[0] || m->is_notification || n == 0) {
        if (n) log_info(m->id, "bounce_suppressed", "reason=%s", m->is_notification ? "notification" : "null_sender");
        cb(arg, SL_OK, NULL);
        return;
    }
    const sl_conf *c = ctx->conf;
    rw_result rw;
    memset(&rw, 0, sizeof rw);
    if (rewrite_address(c, m->sender, m->channel, &rw, NULL) != SL_OK) {
        log_error(m->id, "bounce_error", "to=<%s> error=\"%s\"", m->sender, rw.error ? rw.error : "no route");
        rw_result_free(&rw);
        cb(arg, SL_OK, NULL); /* nowhere to send it: the failure stays logged */
        return;
    }
    bounce_job *b = xcalloc(1, sizeof *b);
    snprintf(b->orig_id, sizeof b->orig_id, "%s", m->id);
    b->cb = cb;
    b->arg = arg;
    size_t len = 0;
    b->text = dsn_build(m, reports, n, c->opt.hostname, now_unix(), 64 * 1024, &len);
    store_new_id(ctx->store, b->em.id, sizeof b->em.id);
    b->em.sender = xstrdup("");
    b->em.is_notification = true;
    b->em.arrival = now_unix();
    b->em.src_channel = xstrdup(m->channel);
    b->em.client = xstrdup("local");
    b->em.data = b->text;
    b->em.data_len = len;
    enqueue_add_rcpt(&b->em, rw.addr, m->sender, NULL, rw.channel->name, rw.host, 0);
    rw_result_free(&rw);
    enqueue_submit(ctx, &b->em, bounce_committed, b);
}

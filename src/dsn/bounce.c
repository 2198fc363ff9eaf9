/*
 * bounce.c - decide who gets a DSN (bounce_target_of, pure) and queue it through the
 * notification channel (see bounce.h).
 */
#include "dsn/bounce.h"
#include "conf/conf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "queue/store.h"
#include "rewrite/rewrite.h"
#include "rewrite/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    enq_msg em;
    char *text;
    enqueue_cb cb;
    void *arg;
    char orig_id[32];
    const char *kind;
} bounce_job;

char *bounce_postmaster(const sl_ctx *ctx)
{
    return conf_postmaster(&ctx->conf->opt);
}

static void bounce_committed(void *arg, sl_result res, const char *err)
{
    bounce_job *b = arg;
    if (res == SL_OK) metric_add(&METRIC_DSNS, (const char *const[]){b->kind}, 1);
    if (res == SL_OK)
        log_info(b->orig_id, "bounce", "id=%s kind=%s to=<%s> channel=%s", b->em.id, b->kind, b->em.rcpts[0].addr,
                 b->em.rcpts[0].channel);
    else
        log_error(b->orig_id, "bounce_error", "error=\"%s\"", err ? err : "");
    b->cb(b->arg, res, err);
    enqueue_msg_free(&b->em);
    free(b->text);
    free(b);
}

/* notify_route - where a DSN to rcpt leaves: the notification channel, or the rules as if from it. */
static bool notify_route(sl_ctx *ctx, const qmsg *m, const char *rcpt, char **chan, char **host, char **addr)
{
    const sl_conf *c = ctx->conf;
    const sl_channel *src = conf_channel_by_name(c, m->channel);
    const char *ncname = src && src->notificationchannel ? src->notificationchannel : "process";
    const sl_channel *nc = conf_channel_by_name(c, ncname);
    if (nc) {
        *chan = xstrdup(nc->name);
        *host = xstrdup("");
        *addr = xstrdup(rcpt);
        return true;
    }
    rw_result rw;
    memset(&rw, 0, sizeof rw);
    if (rewrite_address(c, rcpt, ncname, &rw, NULL) != SL_OK) {
        log_error(m->id, "bounce_error", "to=<%s> error=\"%s\"", rcpt, rw.error ? rw.error : "no route");
        rw_result_free(&rw);
        return false;
    }
    *chan = xstrdup(rw.channel->name);
    *host = route_dest_host(&rw);
    *addr = xstrdup(rw.addr);
    rw_result_free(&rw);
    return true;
}

bounce_target bounce_target_of(const qmsg *m, const sl_channel *src, const char *kind, const char **reason)
{
    *reason = NULL;
    if (m->is_postmaster_copy) {
        *reason = "postmaster_copy_failed";
        return BOUNCE_TO_NOBODY;
    }
    if (!m->is_notification && m->sender[0]) return BOUNCE_TO_SENDER;
    /* never a DSN about a DSN: failures of notifications go to the postmaster, or nowhere */
    bool failed = kind && !strcmp(kind, "failed");
    if (failed && (!src || src->errsendpost)) return BOUNCE_TO_POSTMASTER;
    *reason = m->is_notification ? "notification" : "null_sender";
    return BOUNCE_TO_NOBODY;
}

/* bounce_rcpt - the DSN's recipient (caller frees), or NULL (logged) when none is sent. */
static char *bounce_rcpt(sl_ctx *ctx, const qmsg *m, const char *kind)
{
    const char *reason;
    switch (bounce_target_of(m, conf_channel_by_name(ctx->conf, m->channel), kind, &reason)) {
    case BOUNCE_TO_SENDER: return xstrdup(m->sender);
    case BOUNCE_TO_POSTMASTER: return bounce_postmaster(ctx);
    case BOUNCE_TO_NOBODY: break;
    }
    log_info(m->id, "bounce_suppressed", "reason=%s", reason);
    return NULL;
}

void bounce_submit(sl_ctx *ctx, const qmsg *m, const dsn_report *reports, size_t n, enqueue_cb cb, void *arg)
{
    const char *kind = reports && n ? reports[0].action : "failed";
    char *rcpt = n ? bounce_rcpt(ctx, m, kind) : NULL;
    char *chan = NULL, *host = NULL, *addr = NULL;
    if (!rcpt || !notify_route(ctx, m, rcpt, &chan, &host, &addr)) {
        free(rcpt);
        cb(arg, SL_OK, NULL); /* nothing to send, or nowhere to send it: the outcome stays logged */
        return;
    }
    bounce_job *b = xcalloc(1, sizeof *b);
    snprintf(b->orig_id, sizeof b->orig_id, "%s", m->id);
    b->cb = cb;
    b->arg = arg;
    b->kind = m->is_notification ? "postmaster" : kind;
    size_t len = 0;
    b->text = dsn_build_tmpl(m, reports, n, ctx->conf->opt.hostname, now_unix(), 64 * 1024, ctx->conf->dsn_templates, &len);
    store_new_id(ctx->store, b->em.id, sizeof b->em.id);
    b->em.sender = xstrdup("");
    b->em.is_notification = true;
    b->em.is_postmaster_copy = m->is_notification;
    b->em.arrival = now_unix();
    b->em.src_channel = xstrdup(m->channel);
    b->em.client = xstrdup("local");
    b->em.content = qbody_adopt(b->text, len);
    b->text = NULL; /* the content owns it now */
    enqueue_add_rcpt(&b->em, addr, rcpt, NULL, chan, host, 0);
    free(rcpt);
    free(chan);
    free(host);
    free(addr);
    enqueue_submit(ctx, &b->em, bounce_committed, b);
}

/*
 * enqueue.h - turn an accepted message (envelope + routed recipients + content) into one
 * durable queue file per destination channel, then hand the files to the sink the daemon
 * registered (the scheduler, which takes them at the end of the current loop turn). enqueue
 * knows nothing above the queue layer. Used by the SMTP server at end of DATA, by the DSN
 * generator and by the process channel program. Loop thread only.
 */
#ifndef SLUICE_ENQUEUE_H
#define SLUICE_ENQUEUE_H
#include <stdbool.h>
#include <stdint.h>

#include "core/ctx.h"
#include "core/util.h"
#include "queue/qfile.h"

typedef struct {
    char id[32];
    char *sender;         /* "" for <> */
    char *envid;
    uint8_t ret, body;
    bool smtputf8, is_notification, is_postmaster_copy;
    int64_t arrival;
    char *src_channel;
    char *client;
    qrcpt *rcpts;         /* each with its destination channel */
    size_t n_rcpts;
    struct qbody *content; /* the content (a reference m owns; shared by every channel's file) */
} enq_msg;

/* enqueue_cb - SL_OK: every channel file is durable and handed to the sink; else nothing was queued. */
typedef void (*enqueue_cb)(void *arg, sl_result res, const char *err);

/* enqueue_sink_fn - takes over one committed queue file: msg and path are handed over (sink frees). */
typedef void (*enqueue_sink_fn)(void *arg, qmsg *msg, char *path);
/* enqueue_set_sink - where ctx's committed files go; without a sink they are freed (they stay on disk). */
void enqueue_set_sink(sl_ctx *ctx, enqueue_sink_fn fn, void *arg);

/* enqueue_add_rcpt - append a recipient to m (copies strings). */
void enqueue_add_rcpt(enq_msg *m, const char *addr, const char *orig, const char *orcpt, const char *channel,
                      const char *host, unsigned notify);
/* enqueue_msg_free - free what m owns (its content reference included). */
void enqueue_msg_free(enq_msg *m);
/* enqueue_submit - split m by channel, commit (group commit), hand the files to the sink, then cb.
 * m must stay valid until cb. */
void enqueue_submit(sl_ctx *ctx, enq_msg *m, enqueue_cb cb, void *arg);

#endif

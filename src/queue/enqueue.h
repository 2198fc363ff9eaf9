/*
 * enqueue.h - turn an accepted message (envelope + routed recipients + content) into one
 * durable queue file per destination channel, then hand the files to the scheduler.
 * Used by the SMTP server at end of DATA and by the DSN generator. Loop thread only.
 */
#ifndef SLUICE_ENQUEUE_H
#define SLUICE_ENQUEUE_H
#include <stdbool.h>
#include <stdint.h>

#include "core/ctx.h"
#include "core/util.h"

typedef struct {
    char *addr, *orig, *orcpt, *channel, *host;
    unsigned notify;
} enq_rcpt;

typedef struct {
    char id[32];
    char *sender;         /* "" for <> */
    char *envid;
    uint8_t ret, body;
    bool smtputf8, is_notification, is_postmaster_copy;
    int64_t arrival;
    char *src_channel;
    char *client;
    enq_rcpt *rcpts;
    size_t n_rcpts;
    const char *data;     /* content (borrowed until the callback runs) */
    size_t data_len;
} enq_msg;

/* enqueue_cb - SL_OK: every channel file is durable and scheduled; else nothing was queued. */
typedef void (*enqueue_cb)(void *arg, sl_result res, const char *err);

/* enqueue_add_rcpt - append a recipient to m (copies strings). */
void enqueue_add_rcpt(enq_msg *m, const char *addr, const char *orig, const char *orcpt, const char *channel,
                      const char *host, unsigned notify);
/* enqueue_msg_free - free what m owns (not data). */
void enqueue_msg_free(enq_msg *m);
/* enqueue_submit - split m by channel, commit (group commit), then schedule. m must stay valid until cb. */
void enqueue_submit(sl_ctx *ctx, enq_msg *m, enqueue_cb cb, void *arg);

#endif

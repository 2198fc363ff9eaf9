/*
 * bounce.h - queue a DSN about some recipients of a message: built with dsn_build, addressed to
 * the envelope sender with envelope sender <>, routed by the rewrite rules and committed like any
 * other message. Never for a message that is itself a notification or has a null sender.
 * Loop thread only.
 */
#ifndef SLUICE_BOUNCE_H
#define SLUICE_BOUNCE_H
#include "core/ctx.h"
#include "dsn/dsn.h"
#include "queue/enqueue.h"

/* bounce_submit - queue a DSN for reports[] of m; cb(arg, SL_OK) when it is durable (or was suppressed). */
void bounce_submit(sl_ctx *ctx, const qmsg *m, const dsn_report *reports, size_t n, enqueue_cb cb, void *arg);

#endif

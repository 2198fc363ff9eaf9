/*
 * bounce.h - queue a DSN about some recipients of a message (RFC 3464 via dsn_build): addressed
 * to the envelope sender with envelope sender <>, and enqueued to the notificationchannel of
 * the channel the message was in (DESIGN.md §1 problem 1). When that channel does not exist
 * (the default "process" without a process channel), the DSN is routed by the rewrite rules
 * as if it came from that channel. Never a DSN about a DSN: a failed notification goes to the
 * postmaster instead (channel keyword errsendpost, the default) or is dropped (nosendpost);
 * a failed postmaster copy is dropped (bounce_target_of, a pure decision that any thread may
 * call). bounce_submit: loop thread only.
 */
#ifndef SLUICE_BOUNCE_H
#define SLUICE_BOUNCE_H
#include "conf/conf.h"
#include "core/ctx.h"
#include "dsn/dsn.h"
#include "queue/enqueue.h"

/* Who gets a DSN about a message. */
typedef enum { BOUNCE_TO_SENDER, BOUNCE_TO_POSTMASTER, BOUNCE_TO_NOBODY } bounce_target;

/*
 * bounce_target_of - who gets a DSN of kind ("failed", "delayed", ...) about m, which was in
 * channel src (NULL when it no longer exists): never the sender of a notification or of a
 * message with a null sender. BOUNCE_TO_NOBODY sets *reason (for the log); else it is NULL.
 */
bounce_target bounce_target_of(const qmsg *m, const sl_channel *src, const char *kind, const char **reason);
/* bounce_submit - queue a DSN for reports[] of m; cb(arg, SL_OK) when it is durable or was suppressed. */
void bounce_submit(sl_ctx *ctx, const qmsg *m, const dsn_report *reports, size_t n, enqueue_cb cb, void *arg);
/* bounce_postmaster - the postmaster address (option postmaster, default postmaster@<host_name>); caller frees. */
char *bounce_postmaster(const sl_ctx *ctx);

#endif

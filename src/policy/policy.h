/*
 * policy.h - the session decider: every decision an SMTP server session asks for (connect,
 * HELO/EHLO, MAIL, RCPT, AUTH) and the commit of a finished message.
 *
 * The SMTP engine (smtp/server.h) asks through smtp_server_ops; policy_smtp_ops() is the table
 * the daemon hands the listener, with the policy as its argument. Decisions are made from the
 * connection's facts, the access mapping tables, relay control, the directory and rewriting;
 * each ends in a verdict (policy/verdict.h) that becomes the reply. A decision may answer at
 * once or later (AUTH hashes passwords on a worker thread): the engine waits either way.
 * Loop thread only.
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H
#include "core/ctx.h"
#include "smtp/server.h"

typedef struct policy policy;

/* policy_new - a decider for the daemon's sessions (uses ctx->conf per session, ctx->wq, ctx->store). */
policy *policy_new(sl_ctx *ctx);
/* policy_free - release (after every session is gone). */
void policy_free(policy *p);
/* policy_smtp_ops - the engine's operations; their argument is the policy. */
const smtp_server_ops *policy_smtp_ops(void);

#endif

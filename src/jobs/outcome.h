/*
 * outcome.h - the job controller's outcome policy: what the results of one delivery attempt
 * mean for its recipients, which DSNs they call for, and carrying that out durably.
 *
 * The decisions are pure functions of (channel, options, message and recipient state, results,
 * now): no clock, no I/O, so a unit test drives them with any time it likes.
 *  - Delivered: final (relayed when the next hop has no DSN); a "delivered" (final delivery:
 *    "l", LMTP) or "relayed" DSN when NOTIFY has SUCCESS.
 *  - Temporary failure: the next attempt after the channel's backoff (its "backoff" list, the
 *    last entry repeating; else retry_interval doubling up to retry_max), never later than the
 *    next notice age; a "delayed" DSN when an earlier "notices" age is reached (NOTIFY absent
 *    or with DELAY); at the last notices age (without notices: message_lifetime) the failure
 *    becomes permanent, keeping a 4.x.x status, else 4.4.7.
 *  - Permanent failure: a "failed" DSN unless NOTIFY=NEVER or a NOTIFY list without FAILURE
 *    (then the recipient fails at once, silently).
 * Whether a DSN about a DSN goes to the postmaster or nowhere is bounce.c's decision.
 *
 * Carrying out (outcome_apply): the DSNs of an item go out one kind at a time (failed, delayed,
 * success), each durable before the next; recipients reported as failed become final only once
 * their DSN is durable, else they are retried after the backoff. outcome_persist then writes the
 * recipient states. The caller (the scheduler) owns the item and the message throughout.
 * outcome_apply and outcome_persist: loop thread only; the decisions: any thread.
 */
#ifndef SLUICE_OUTCOME_H
#define SLUICE_OUTCOME_H
#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/ctx.h"
#include "deliver/deliver.h"
#include "dsn/dsn.h"
#include "queue/store.h"

/* What became of one recipient of an item. */
typedef enum { OUTCOME_DELIVERED, OUTCOME_DEFERRED, OUTCOME_FAILED } outcome_verdict;

/* The DSN kinds, in the order they go out. */
enum { OUTCOME_DSN_FAILED, OUTCOME_DSN_DELAYED, OUTCOME_DSN_SUCCESS, OUTCOME_DSN_KINDS };

/* The line items of one DSN (each points into the item's message and results). */
typedef struct {
    dsn_report *v;
    size_t n;
} outcome_reports;

/* The decisions about one item; owned by the caller, freed with outcome_plan_free. */
typedef struct {
    outcome_verdict *verdict;             /* one per recipient of the item */
    outcome_reports dsn[OUTCOME_DSN_KINDS];
} outcome_plan;

/* outcome_retry_delay - seconds before attempt number attempts+1 of a recipient that failed attempts times. */
int64_t outcome_retry_delay(const sl_channel *ch, const sl_options *o, unsigned attempts);
/* outcome_lifetime - the age at which a message is returned: the last "notices" age, else message_lifetime. */
int64_t outcome_lifetime(const sl_channel *ch, const sl_options *o);
/* outcome_wants_failure_dsn - whether NOTIFY asks for a failed DSN (absent, or with FAILURE; not NEVER). */
bool outcome_wants_failure_dsn(unsigned notify);
/* outcome_wants_delay_dsn - whether NOTIFY asks for a delayed DSN (absent, or with DELAY; not NEVER). */
bool outcome_wants_delay_dsn(unsigned notify);
/*
 * outcome_decide - apply the results of item (attempted on channel ch at now) to its
 * recipients (status, attempts, next attempt, notices sent) and plan the DSNs into p. A result
 * that times out is rewritten into a permanent one (status 4.4.7 unless 4.x.x).
 */
void outcome_decide(const sl_channel *ch, const sl_options *o, deliv_item *item, int64_t now, outcome_plan *p);
/* outcome_failure_dsn_done - the failed DSN of item was made durable (res SL_OK): its recipients
 * become failed; else they stay pending and are retried after the backoff from now. */
void outcome_failure_dsn_done(const sl_channel *ch, const sl_options *o, deliv_item *item, sl_result res, int64_t now);
/* outcome_plan_free - release what outcome_decide allocated in p. */
void outcome_plan_free(outcome_plan *p);
/* outcome_all_final - no recipient of m is pending. */
bool outcome_all_final(const qmsg *m);

/* outcome_done_cb - the outcome of an item is carried out (its recipient states not yet written). */
typedef void (*outcome_done_cb)(void *arg);
/*
 * outcome_apply - decide about item now, log each recipient's verdict, queue its DSNs one kind
 * at a time (bounce_submit), then done(arg). ch and o must stay valid until done.
 */
void outcome_apply(sl_ctx *ctx, const sl_channel *ch, const sl_options *o, deliv_item *item, outcome_done_cb done,
                   void *arg);
/*
 * outcome_persist - write m's recipient states into its file at path, cb once they are flushed.
 * Returns false, writing nothing and never calling cb, when every recipient is final: then the
 * removal of the file is the record (a crash before it repeats deliveries, never loses one).
 */
bool outcome_persist(sl_ctx *ctx, const char *path, const qmsg *m, store_done_cb cb, void *arg);

#endif

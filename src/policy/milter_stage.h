/*
 * milter_stage.h - the milters of an SMTP session (option.dat spamfilterN_type=milter, for the
 * sessions whose source channel says sourcespamfilterN): one connection per milter for the
 * session's life, asked in order (a chain) at connect, HELO, MAIL and each RCPT after Sluice's
 * own decision accepted, then with the message at the end of data before any other scanner.
 *
 * A milter's reject, tempfail or reply code refuses that command (one recipient only at RCPT);
 * accept ends its part in the transaction (in the session at connect or HELO); discard drops
 * the message after its 250; quarantine holds it (the hold channel). At the end of data each
 * milter sees the message as the previous one left it; their header and body changes are
 * applied, recipients added and removed, the sender changed. A milter that fails (refused,
 * timed out, garbage) is dropped for the session: an optional one (spamfilterN_optional) is
 * noted in an X-Sluice-Scan header, a required one answers 451 4.7.1. Loop thread only.
 */
#ifndef SLUICE_POLICY_MILTER_STAGE_H
#define SLUICE_POLICY_MILTER_STAGE_H
#include <stdbool.h>

#include "policy/decide.h"

/* milter_done_fn - the chain answered a stage: v is VERDICT_OK or the refusal (consumed by the callee). */
typedef void (*milter_done_fn)(policy_sess *ps, verdict *v);

/* The outcome of the message stage. */
typedef struct {
    verdict v;          /* OK, or the refusal of the message */
    bool discard;       /* a milter said discard: answer 250, deliver nothing */
    char *quarantine;   /* a milter said quarantine (the reason): hold every copy, or NULL */
    strvec notes;       /* X-Sluice-Scan lines for the milters skipped (optional, failed) */
} milter_outcome;

/* milters_wanted - whether the session's source channel opts into a milter. */
bool milters_wanted(const smtp_sess *s);
/* milters_connect - open the session's milters and send CONNECT; done(ps, v) with the chain's answer. */
void milters_connect(policy_sess *ps, milter_done_fn done);
/* milters_helo - HELO/EHLO through the chain. */
void milters_helo(policy_sess *ps, const char *helo, milter_done_fn done);
/* milters_mail - MAIL FROM (a new transaction) through the chain. */
void milters_mail(policy_sess *ps, const smtp_cmd *cmd, milter_done_fn done);
/* milters_rcpt - one accepted RCPT TO (addr) through the chain. */
void milters_rcpt(policy_sess *ps, const char *addr, const smtp_cmd *cmd, milter_done_fn done);
/* milters_active - whether a milter takes part in the current transaction. */
bool milters_active(const policy_sess *ps);
/* milters_message - the message of s through the chain; s->data, s->sender and s->rcpts are
 * changed as the milters ask; then done(ps, outcome) (the outcome is the callee's to free). */
void milters_message(policy_sess *ps, void (*done)(policy_sess *ps, milter_outcome *o));
/* milter_outcome_free - release what o holds. */
void milter_outcome_free(milter_outcome *o);
/* milters_close - the session ends: QUIT to every milter, no callback any more. */
void milters_close(policy_sess *ps);

#endif

/*
 * dkim_stage.h - DKIM and DMARC at the end of data (dkim_stage.c): verifying the signatures of
 * strangers' mail and evaluating DMARC before the milters and scanners see it (options
 * dkim_verify, dmarc_check, dmarc_action), and signing our own outgoing
 * mail (option dkim_sign, keys from dkim_keys_file) as each content of a commit plan is queued.
 * For the files of the policy module only. Loop thread only.
 */
#ifndef SLUICE_POLICY_DKIM_STAGE_H
#define SLUICE_POLICY_DKIM_STAGE_H
#include "policy/commit.h"
#include "policy/decide.h"

/* dkim_stage_verify - when dkim_verify or dmarc_check applies to s's message, verify its
 * signatures (DNS, asynchronously), add Authentication-Results: fields (dkim=, dmarc=) and then
 * done(ps, s) — or refuse the message (dmarc_action=reject, a p=reject domain failing).
 * done may run inside this call. A temperror is recorded, never refused. */
void dkim_stage_verify(policy_sess *ps, smtp_sess *s, void (*done)(policy_sess *ps, smtp_sess *s));
/* dkim_stage_abandon - the session ends while verifying: the result is dropped. */
void dkim_stage_abandon(policy_sess *ps);
/* dkim_stage_sign - when dkim_sign applies to ps's session, put a DKIM-Signature (one per
 * selector of the From: domain in the keys table) on every message of p (ps->pending), signed
 * on a worker thread; then done(ps) (inside this call when there is nothing to sign). A message
 * that cannot be signed goes unsigned (logged). */
void dkim_stage_sign(policy_sess *ps, commit_plan *p, void (*done)(policy_sess *ps));
/* dkim_stage_sign_abandon - the session lets its commit go while signing: the result is dropped. */
void dkim_stage_sign_abandon(policy_sess *ps);

#endif

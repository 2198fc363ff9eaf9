/*
 * scan_stage.h - content scanning and per-recipient actions at the end of data (seed document
 * 001, doc/scanning.md), before the 250.
 *
 * Each accepted recipient opts in to scanners (option.dat spamfilterN_*) through its directory
 * entry or domain (ldap_optinN, ldap_domain_attr_optinN), its destination channel
 * (destinationspamfilterN[optin]) or the source channel (sourcespamfilterN[optin]). Each scanner
 * is asked once per distinct opt-in string, all at once. A required scanner that fails refuses
 * the message with 451 4.7.1; an optional one notes the skip in a header. Then, per recipient,
 * Sieve decides (sieve/sieve.h): the system filter (option sieve_filter), the verdict's action
 * (spamfilterN_verdict_M / _action_M, _string_action, _null_action), the recipient's own filter
 * (mailSieveRuleSource), with spamtest/virustest fed by the verdicts. The outcome becomes a
 * commit plan (policy/commit.h): keep, fileinto (a folder per recipient in the queue file),
 * redirect, discard, reject (550 at end of data when every recipient rejects, otherwise a DSN
 * for that recipient), edited headers (a message per distinct header), vacation (an autoreply
 * through the source channel's dispositionchannel). Loop thread only.
 */
#ifndef SLUICE_POLICY_SCAN_STAGE_H
#define SLUICE_POLICY_SCAN_STAGE_H
#include <stdbool.h>

#include "policy/decide.h"

struct policy;

/* scan_stage_wanted - whether the message of s goes through the stage (a scanner opted into,
 * a Sieve filter to run); false keeps the plain commit's fast path. */
bool scan_stage_wanted(policy_sess *ps, const smtp_sess *s);
/* scan_stage_start - scan, decide per recipient, then commit (or refuse) the message of s. */
void scan_stage_start(policy_sess *ps, smtp_sess *s);
/* scan_stage_abandon - the session ends while its scanners are asked: stop them (no answer). */
void scan_stage_abandon(policy_sess *ps);
/* scan_cache_free - release the compiled Sieve scripts the policy p keeps. */
void scan_cache_free(struct policy *p);

#endif

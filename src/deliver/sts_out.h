/*
 * sts_out.h - MTA-STS (RFC 8461 §4, §5) applied to one outbound SMTP session (deliver/smtp_out.c):
 * whether the destination is checked at all, the wait for its policy, the TLS level the policy
 * gives, which MX hosts may be used, the MX certificate check and the notes on the "tls" log line.
 * Every MTA-STS failure goes through sts/sts_result.h (its RFC 8460 result type, the TLS-RPT hook).
 *
 * A destination is checked when its tls_policy_file entry is "sts", or when it has no entry and
 * option mta_sts is 1; only for MX routing (no smart host, no IP literal, not LMTP). With an
 * "enforce" policy only MX hosts matching its mx patterns are used and TLS is required with a
 * certificate that chains to a trusted CA and names the MX host (level TLS_LEVEL_STS); a failure
 * defers. "testing" delivers as without a policy and logs what would have failed. "none" or no
 * policy: the channel's default. Only the loop thread calls these functions.
 */
#ifndef SLUICE_STS_OUT_H
#define SLUICE_STS_OUT_H
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "core/tls_policy.h"
#include "sts/sts.h"

typedef struct ssl_st SSL;
struct bufferevent;
typedef struct sts_out sts_out;

/* sts_out_cb - the policy is known (or is known to be absent). */
typedef void (*sts_out_cb)(void *arg);

/* sts_out_new - the MTA-STS state of a session of channel ch to domain (the routing host), whose
 * tls_policy_file entry is pol (NULL: none); NULL when MTA-STS does not apply to it (see above).
 * conf must outlive the result. */
sts_out *sts_out_new(sts_ctx *ctx, const sl_conf *conf, const sl_channel *ch, const char *domain,
                     const tls_policy_entry *pol);
/* sts_out_free - free (a lookup still waited for is cancelled). NULL is fine. */
void sts_out_free(sts_out *o);
/* sts_out_begin - look the policy up afresh; cb(arg) runs later on the loop (never inside). */
void sts_out_begin(sts_out *o, const char *msg_id, sts_out_cb cb, void *arg);
/* sts_out_level - the destination's TLS level under its policy: TLS_LEVEL_STS when enforced,
 * else fallback (what the destination gets without MTA-STS). */
enum tls_level sts_out_level(const sts_out *o, enum tls_level fallback);
/* sts_out_mx_allowed - whether MX host mx may be used: false (logged, recorded) when an enforced
 * policy does not list it; under testing a mismatch is logged and recorded but allowed, and the
 * session with mx that follows is not counted again for TLS-RPT (it failed already). */
bool sts_out_mx_allowed(sts_out *o, const char *msg_id, const char *mx);
/* In the three calls below the session is with MX host mx at address ip over bev (the connection,
 * for the sending address): a failure's TLS-RPT detail row names both ends (RFC 8460 4.3). */
/* sts_out_tls_note - after the handshake with mx: check the certificate as the policy asks, count
 * the session for TLS-RPT (a success or its failure), and put the note for the "tls" line into
 * note (" sts=enforce", " sts=testing", " sts=testing-failure reason=..." ...; "" when no policy
 * applies). */
void sts_out_tls_note(sts_out *o, const char *msg_id, SSL *ssl, const char *mx, const char *ip,
                      struct bufferevent *bev, char *note, size_t len);
/* sts_out_clear_note - the session with mx goes on without TLS: under testing that is a failure
 * (recorded); the note for the "tls" line into note. */
void sts_out_clear_note(sts_out *o, const char *msg_id, const char *mx, const char *ip, struct bufferevent *bev,
                        char *note, size_t len);
/* sts_out_failed - the session with mx failed at stage (STS_FAIL_STARTTLS: required but not
 * offered; STS_FAIL_HANDSHAKE): recorded when a policy applies. */
void sts_out_failed(sts_out *o, const char *msg_id, const char *mx, const char *ip, struct bufferevent *bev,
                    enum sts_fail_stage stage, const char *detail);
/* sts_out_reports - whether the outcomes of sessions with mx belong to the sts policy in TLS-RPT:
 * a policy applies (enforce or testing) and DANE does not authenticate mx. The calls above then
 * count them (successes too), and the client counts them under no other policy. */
bool sts_out_reports(const sts_out *o, const char *mx);
/* sts_out_dane_wins - whether DANE applies to MX host mx instead of MTA-STS (RFC 8461 §2). */
bool sts_out_dane_wins(const sts_out *o, const char *mx);
/* sts_out_set_dane - MX host mx (NULL: none) has secure usable TLSA records: DANE authenticates it
 * instead of the policy (the SMTP client's DANE verdict for the host it is about to connect to). */
void sts_out_set_dane(sts_out *o, const char *mx);
/* sts_out_fetch_failed - a failed policy fetch of domain counted for TLS-RPT under its sts policy
 * (kept: the cached policy still used, or NULL); the daemon installs it as sts_result's fetch
 * hook (sts_result_set_fetch_hook) when TLS-RPT is on. Loop thread. */
void sts_out_fetch_failed(const char *domain, const sts_policy *kept, enum sts_result_type type, const char *detail);

#endif

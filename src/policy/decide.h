/*
 * decide.h - shared by the files of the policy module (not for other modules): the policy and
 * its per-session state, and the decisions that live in files of their own. Loop thread only.
 */
#ifndef SLUICE_POLICY_DECIDE_H
#define SLUICE_POLICY_DECIDE_H
#include "core/ctx.h"
#include "policy/verdict.h"
#include "smtp/session.h"

struct policy {
    sl_ctx *ctx;
    struct fleet *fleet; /* reject_mode's MX cache (policy/fleet.h) */
    void *sieve_cache;   /* compiled Sieve scripts (policy/scan_stage.c) */
    void *dnsbl_cache;   /* DNS list answers (policy/dnsbl.c) */
};

struct auth_job;
struct commit_plan;
struct scan_stage;
struct milter_set;
struct rcpt_req;
struct sender_req;
struct spf_job;

/* The envelope sender as the directory knows it (policy/sender.c). */
typedef struct {
    char *dn;             /* its entry's DN, or NULL (not ours, or unknown) */
    unsigned rcpt_limit;  /* recipients per message, 0 = no limit */
    unsigned rcpt_cutoff; /* over this many the transaction is refused, 0 = none */
} sender_info;
struct sl_dir;

/* The decider's state for one SMTP session. */
typedef struct policy_sess {
    struct policy *p;
    smtp_sess *s;
    struct commit_plan *pending; /* the commit in progress (policy/commit.h), or NULL */
    struct scan_stage *scan;     /* content scanning in progress (policy/scan_stage.h), or NULL */
    struct milter_set *milters;  /* the session's milters (policy/milter_stage.h), or NULL */
    size_t rcpt_before;          /* recipients before the RCPT being decided (a milter may refuse it) */
    void *dnsbl;                 /* DNS list lookups in progress (policy/dnsbl.c), or NULL */
    char *dnsbl_note;            /* X-Sluice-DNSBL header line for the session's messages (score mode), or NULL */
    struct auth_job *auth;  /* AUTH check running on a worker, or NULL */
    struct rcpt_req *rcpt;  /* RCPT decision waiting for the directory, or NULL */
    struct sender_req *sender_req; /* sender lookup of MAIL FROM in progress, or NULL */
    struct spf_job *spf_job; /* SPF check of MAIL FROM in progress, or NULL */
    int spf_result;         /* this transaction's SPF result (spf/spf.h spf_res), -1 when not checked */
    struct sign_job *sign_job; /* DKIM signing of the pending commit on a worker (policy/dkim_stage.c), or NULL */
    struct dkim_job *dkim_job; /* DKIM verification at the end of data in progress (policy/dkim_stage.c), or NULL */
    sender_info sender;     /* this transaction's sender */
    unsigned rcpt_attempts; /* RCPT commands of this transaction */
    unsigned mail_delay;    /* $D delay of the MAIL decision being made */
    bool cutoff_hit;        /* the sender's recipient cutoff was passed: the transaction is refused */
    struct sl_dir *dir;     /* the directory the session started with (a reference) */
} policy_sess;

/* policy_answer - answer the engine with v (consumed). The session may be gone on return. */
void policy_answer(policy_sess *ps, verdict *v);
/* policy_decide_rcpt - the RCPT TO decision (policy/rcpt.c). */
void policy_decide_rcpt(policy_sess *ps, const smtp_cmd *cmd);
/* policy_rcpt_abandon - the session ends while the directory is asked: its answer is dropped. */
void policy_rcpt_abandon(policy_sess *ps);
/* policy_decide_auth - check credentials off the loop, then answer (policy/auth.c). */
void policy_decide_auth(policy_sess *ps, const char *user, const char *pass);
/* policy_auth_abandon - the session ends while a check runs: its answer is dropped. */
void policy_auth_abandon(policy_sess *ps);
/* policy_sender_lookup - learn about the envelope sender from (sender.c), then done(ps). */
void policy_sender_lookup(policy_sess *ps, const char *from, void (*done)(policy_sess *ps));
/* policy_sender_clear - forget the sender (new transaction, session end). */
void policy_sender_clear(policy_sess *ps);
/* policy_sender_abandon - the session ends during the lookup: its answer is dropped. */
void policy_sender_abandon(policy_sess *ps);
/* policy_spf_check - SPF for the client and from (spf.c) when spf_check is on: done(ps) to go
 * on, or the session is answered with a refusal (spf_fail_action=reject). */
void policy_spf_check(policy_sess *ps, const char *from, void (*done)(policy_sess *ps));
/* policy_spf_abandon - the session ends during the check: its answer is dropped. */
void policy_spf_abandon(policy_sess *ps);
/* policy_commit - enqueue the finished message of s (commit.c); answers smtp_sess_commit_done. */
void policy_commit(policy_sess *ps, smtp_sess *s);
/* policy_commit_abandon - the session ends (shutdown) while its commit is pending: let it go. */
void policy_commit_abandon(policy_sess *ps);
/* policy_decide_etrn - ETRN (RFC 1985): ETRN_ACCESS, then the queue run through sl_ctx.queue_run (etrn.c). */
void policy_decide_etrn(policy_sess *ps, const smtp_cmd *cmd);
/* policy_solicit_refused - MAIL FROM's SOLICIT= names a keyword of the source channel's
 * sourcenosolicit list (RFC 3865, etrn.c): true with the refusal in *v. */
bool policy_solicit_refused(const smtp_sess *s, const smtp_cmd *cmd, verdict *v);
/* policy_sess_flags - mapping input flags of the session: T (TLS), A (authenticated), E (ESMTP). */
void policy_sess_flags(const smtp_sess *s, char buf[8]);

#endif

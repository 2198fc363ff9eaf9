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
};

struct auth_job;
struct rcpt_req;
struct sl_dir;

/* The decider's state for one SMTP session. */
typedef struct policy_sess {
    struct policy *p;
    smtp_sess *s;
    void *pending;          /* enq_msg being committed, or NULL */
    void *oversize;         /* qmsg of the recipients refused at the end of data for size, or NULL */
    struct auth_job *auth;  /* AUTH check running on a worker, or NULL */
    struct rcpt_req *rcpt;  /* RCPT decision waiting for the directory, or NULL */
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
/* policy_commit - enqueue the finished message of s (commit.c); answers smtp_sess_commit_done. */
void policy_commit(policy_sess *ps, smtp_sess *s);
/* policy_commit_abandon - the session ends (shutdown) while its commit is pending: let it go. */
void policy_commit_abandon(policy_sess *ps);
/* policy_sess_flags - mapping input flags of the session: T (TLS), A (authenticated), E (ESMTP). */
void policy_sess_flags(const smtp_sess *s, char buf[8]);

#endif

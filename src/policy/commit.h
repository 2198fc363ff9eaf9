/*
 * commit.h - the end of data as the policy module queues it (commit.c): a commit plan is the
 * messages to queue (one per distinct content) and the recipients that get a DSN instead. For
 * the files of the policy module only. Loop thread only.
 */
#ifndef SLUICE_POLICY_COMMIT_H
#define SLUICE_POLICY_COMMIT_H
#include "policy/decide.h"
#include "queue/enqueue.h"

typedef struct commit_plan {
    enq_msg **msgs;      /* queued in order, each durable before the next */
    size_t n_msgs, next;
    qmsg *failed;        /* the recipients that get a DSN (refused at the end of data), or NULL */
    strvec fail_status;  /* ... the enhanced status of each */
    strvec fail_diag;    /* ... and its diagnostic ("smtp; 550 5.7.1 ...") */
} commit_plan;

/* commit_plan_free - release p and all it holds (NULL allowed). */
void commit_plan_free(commit_plan *p);
/* commit_msg_new - a message with s's envelope, id and content (a reference it takes over), no recipients. */
enq_msg *commit_msg_new(const smtp_sess *s, const char *id, qbody *content);
/* commit_plan_fail - r gets a DSN with status and diag instead of the message (content: what the DSN quotes). */
void commit_plan_fail(commit_plan *p, const smtp_sess *s, const qbody *content, const qrcpt *r, const char *status,
                      const char *diag);
/* commit_rcpt_dup - recipient i repeats an earlier one (same address and channel): one copy only. */
bool commit_rcpt_dup(const smtp_sess *s, size_t i);
/* policy_commit_plan - queue p (taken over), then answer the end of data. */
void policy_commit_plan(policy_sess *ps, commit_plan *p);
/* policy_commit_refuse - refuse the message with v (consumed), letting p go. */
void policy_commit_refuse(policy_sess *ps, commit_plan *p, verdict *v);

#endif

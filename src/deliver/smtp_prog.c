/*
 * smtp_prog.c - the SMTP/LMTP channel program (tcp_* and lmtp*, see program.h): the job's
 * state is one smtp_out session (smtp_out.c, the I/O adapter around the protocol engine of
 * smtp/client_sess.c), opened at the job's first item and kept for the
 * next items to the same host while smtp_out_reusable says the connection is idle and has
 * room; job_close sends QUIT and frees it.
 */
#include "deliver/program.h"
#include "deliver/smtp_out.h"

/* smtp_session_open - a session for the job, knowing who we are (loop detection) and our TLS. */
static smtp_out *smtp_session_open(const deliv_job *job)
{
    sl_ctx *ctx = job->ctx;
    smtp_out *out = smtp_out_new(ctx->base, ctx->dns, job->conf, job->ch, job->host);
    smtp_out_set_self(out, ctx->loop_token, ctx->listen_addrs, ctx->n_listen);
    smtp_out_set_tls(out, ctx->tls_client);
    smtp_out_set_memory(out, ctx->hostmem);
    smtp_out_set_sts(out, ctx->sts);
    return out;
}

/* smtp_start - deliver item on the job's session (connecting first when there is none). */
static void smtp_start(deliv_job *job, deliv_item *item, deliv_done_cb done, void *arg)
{
    if (!job->state) job->state = smtp_session_open(job);
    smtp_out_deliver(job->state, item, done, arg);
}

/* smtp_reusable - the session is connected, idle and below MAX_MESSAGES_PER_CONNECTION. */
static bool smtp_reusable(const deliv_job *job)
{
    return job->state && smtp_out_reusable(job->state);
}

/* smtp_job_close - QUIT and free the session. */
static void smtp_job_close(deliv_job *job)
{
    smtp_out_free(job->state);
    job->state = NULL;
}

const deliv_program deliv_program_smtp = {
    .name = "smtp", .start = smtp_start, .reusable = smtp_reusable, .job_close = smtp_job_close};

/*
 * tlsrpt.h - TLS-RPT (RFC 8460) in the daemon: the recorder the SMTP client tells what each
 * outbound TLS session achieved, the day files under QUEUE/tlsrpt/ it keeps, and the daily
 * aggregate reports it sends to the `rua` of each policy domain (doc/tls.md).
 *
 * One recorder per daemon (option tlsrpt=1), created at start by the daemon, which installs it
 * as the process's active recorder: tlsrpt_record needs no handle, so that any outcome site of
 * the SMTP client (and DANE / MTA-STS) reports with one call, and costs one test when TLS-RPT is
 * off. Counters live in memory (tlsrpt_data.h) and are written to the day files every minute on
 * a worker and at stop, never per message. Reports go out after midnight UTC plus a random delay
 * up to tlsrpt_delay, and on demand (`sluice tlsrpt send`): mailto: as a message queued through
 * the notification channel, https: as a POST made on a worker thread (libcurl).
 *
 * Loop thread only, except the worker jobs inside.
 */
#ifndef SLUICE_TLSRPT_H
#define SLUICE_TLSRPT_H
#include "core/ctx.h"
#include "core/util.h"
#include "tlsrpt/tlsrpt_data.h"

typedef struct tlsrpt tlsrpt;

/* tlsrpt_new - the recorder of ctx (its day files read back, its timer started), installed as the active one. */
tlsrpt *tlsrpt_new(sl_ctx *ctx);
/* tlsrpt_stop - the daemon stops: no more records; every day is written out now (blocking). */
void tlsrpt_stop(tlsrpt *t);
/* tlsrpt_free - release it (NULL allowed); after the loop, the workers and the resolver are gone. */
void tlsrpt_free(tlsrpt *t);

/* tlsrpt_record - count one outbound TLS session of today (UTC) under policy p; nothing when no recorder is active. */
void tlsrpt_record(const tlsrpt_policy *p, const tlsrpt_result *r);
/* tlsrpt_active - whether a recorder is active (callers may skip gathering details when not). */
bool tlsrpt_active(void);

/* tlsrpt_answer_fn - the answer of a command: exit status (0 ok, 1 failed, 2 usage) and its text. */
typedef void (*tlsrpt_answer_fn)(void *arg, int status, strbuf *out);
/* tlsrpt_command - a control command "tlsrpt send [--day YYYY-MM-DD]" (argv[0] is "tlsrpt"); t may be NULL (off). */
void tlsrpt_command(tlsrpt *t, int argc, char **argv, tlsrpt_answer_fn cb, void *arg);

#endif

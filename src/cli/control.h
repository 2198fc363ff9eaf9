/*
 * control.h - the daemon's control socket (QUEUE/control.sock, mode 0600): one command line in,
 * "STATUS n" and the answer out, then the connection closes. Used by `sluice queue` to act on a
 * running daemon; the commands themselves are control_queue.c's
 * (and tlsrpt.c's for `sluice tlsrpt`). Loop thread only.
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H
#include "core/ctx.h"
#include "core/util.h"

typedef struct control control;
struct sched;
struct tlsrpt;

/* control_open - listen on QUEUE/control.sock, answering with the scheduler sched; NULL (logged) if that fails. */
control *control_open(sl_ctx *ctx, struct sched *sched);
/* control_set_tlsrpt - answer "tlsrpt ..." commands with t (NULL: TLS-RPT is off). */
void control_set_tlsrpt(control *c, struct tlsrpt *t);
/* control_free - stop listening and remove the socket file. */
void control_free(control *c);
/* control_client - `sluice queue ARGS` against a running daemon: 0..2 exit status, -1 if no daemon answers. */
int control_client(const char *qdir, int argc, char **argv);
/* control_client_capture - control_client with the answer appended to out instead of printed. */
int control_client_capture(const char *qdir, int argc, char **argv, strbuf *out);

#endif

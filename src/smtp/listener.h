/*
 * listener.h - the dispatcher: binds every service of dispatcher.cnf, accepts connections and
 * runs an SMTP server session on each (bufferevent I/O, TLS, idle timeout, greeting delay, one
 * write per reply batch), and the local submission socket of `sluice sendmail` (a UNIX socket whose
 * sessions are marked local with the peer's uid). Every decision (including the connection limits it counts for) is the
 * decider's, whose operations the daemon passes in (policy/). Loop thread only.
 */
#ifndef SLUICE_LISTENER_H
#define SLUICE_LISTENER_H
#include <stddef.h>

#include "core/ctx.h"
#include "smtp/server.h"

typedef struct listener listener;

/* listener_open - bind every service of ctx->conf; NULL with err on failure (start-up only). */
listener *listener_open(sl_ctx *ctx, const smtp_server_ops *ops, void *ops_arg, char *err, size_t errlen);
/* listener_open_local - listen for local submissions on the UNIX socket path (mode 0666, its
 * directory created 0755), sessions on source channel channel; -1 with err on failure. */
int listener_open_local(listener *l, const char *path, const char *channel, char *err, size_t errlen);
/* listener_adopt_local - run a local-submission session for user uid on fd (a socketpair end, owned from now). */
void listener_adopt_local(listener *l, int fd, unsigned uid);
/* listener_reload - apply the dispatcher services of c: bind the addresses and ports that are new,
 * close those that are gone (sessions under way on them finish), give kept sockets their
 * service's new name and channel (TLS mode, limits and AUTH settings are read from the session's
 * configuration anyway). Logged (listen, listen_changed, unlisten, listen_failed); returns how
 * many sockets could not be bound. */
size_t listener_reload(listener *l, const sl_conf *c);
/* listener_count - sessions open. */
int listener_sessions(const listener *l);
/* listener_close - stop accepting and end every session with 421. */
void listener_close(listener *l);
/* listener_free - free after close and once sessions are gone. */
void listener_free(listener *l);

#endif

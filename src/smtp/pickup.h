/*
 * pickup.h - the pickup directory, QUEUE/pickup (mode 1733: anyone may drop a file, nobody but
 * the daemon may list it), where `sluice sendmail` leaves a message while no daemon answers on
 * the local submission socket. The daemon submits each file through a local session of the
 * listener (a socketpair; the file's owner is the session's uid), so a picked-up message meets
 * the same policy, Received: header and commit as one submitted live; the file is removed only
 * after the 250. Files are taken one at a time, at start-up and every pickup_interval.
 *
 * A file that is not a plain file with one link, is too large, cannot be decoded or is refused
 * for good (5xx) is moved to QUEUE/pickup-failed/ and logged; a 4xx leaves it for the next scan.
 * Owns its timer, the submission in progress and the worker job in flight (the file system
 * calls run on ctx->wq). Loop thread only.
 */
#ifndef SLUICE_SMTP_PICKUP_H
#define SLUICE_SMTP_PICKUP_H
#include <stddef.h>

#include "core/ctx.h"
#include "smtp/listener.h"

typedef struct pickup pickup;

/* pickup_dir_prepare - create QUEUE/pickup (mode 1733) and QUEUE/pickup-failed (0700) and let
 * local users reach them (QUEUE itself 0711); -1 with err on failure. Start-up only. */
int pickup_dir_prepare(const char *qdir, char *err, size_t errlen);
/* pickup_new - scan QUEUE/pickup now and every ctx->conf's pickup_interval, submitting through l. */
pickup *pickup_new(sl_ctx *ctx, listener *l);
/* pickup_free - stop; a file being submitted stays for the next start. NULL allowed. */
void pickup_free(pickup *p);

#endif

/*
 * dsn.h - builds delivery status notifications (RFC 3461/3462/3464): a multipart/report with a
 * human-readable part, a message/delivery-status part and the returned message or headers.
 * Pure: the caller supplies the time and the results. Any thread.
 */
#ifndef SLUICE_DSN_H
#define SLUICE_DSN_H
#include <stddef.h>
#include <stdint.h>

#include "queue/qfile.h"

typedef struct {
    const qrcpt *rcpt;
    const char *action;     /* "failed", "delayed", "delivered", "relayed", "expanded" */
    const char *status;     /* enhanced status "5.1.1" */
    const char *diag;       /* "smtp; 550 5.1.1 <x@y> unknown" or NULL */
    const char *remote_mta; /* "dns; mx.example.net" or NULL */
} dsn_report;

/*
 * dsn_build - the complete RFC 5322 message (CRLF line ends) reporting on m's recipients.
 * reporting_mta is our host name (also the right side of the Message-ID), now the current time. RET=HDRS (or unset) returns the header as text/rfc822-headers; RET=FULL the whole
 * message as message/rfc822, cut to max_return bytes (then headers only). Caller frees.
 */
char *dsn_build(const qmsg *m, const dsn_report *reports, size_t n, const char *reporting_mta,
                int64_t now, size_t max_return, size_t *len_out);

/*
 * dsn_build_tmpl - dsn_build with editable texts: templates[0..2] for failed, delayed and success
 * reports (NULL entries use the built-in text). A template's first line may be "Subject: ..."; the
 * rest replaces the introduction of the human-readable part; "%h" stands for reporting_mta, "%%"
 * for "%".
 */
char *dsn_build_tmpl(const qmsg *m, const dsn_report *reports, size_t n, const char *reporting_mta, int64_t now,
                     size_t max_return, char *const templates[3], size_t *len_out);

#endif

/*
 * vacation.h - whether a Sieve vacation action (RFC 5230) sends its reply, and sending it
 * (dsn/autoreply.h, through the dispositionchannel). The rules of RFC 3834 and RFC 5230: never
 * to the null sender or to mailing lists, bulk or automatic mail; only when the recipient is
 * named in To: or Cc: (or :addresses); at most once per sender and period (:days), remembered
 * in files under vacation_dir (default QUEUE/vacation) that survive restarts. Loop thread only.
 */
#ifndef SLUICE_POLICY_VACATION_H
#define SLUICE_POLICY_VACATION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"
#include "queue/qfile.h"
#include "sieve/sieve.h"
#include "smtp/session.h"

/* vacation_allowed - RFC 3834 / 5230 checks on the original (header block hdr) for a reply
 * from rcpt (with the script's :addresses) to sender; NULL when allowed, else why not. Pure. */
const char *vacation_allowed(const char *hdr, size_t hlen, const char *sender, const char *rcpt,
                             const strvec *addresses);
/* vacation_header_value - the unfolded value of the first field name of hdr (caller frees), or NULL. Pure. */
char *vacation_header_value(const char *hdr, size_t hlen, const char *name);
/* vacation_consider - send the reply r asks for recipient rcpt of the message of s, if the rules allow. */
void vacation_consider(sl_ctx *ctx, const smtp_sess *s, const qrcpt *rcpt, const qbody *content, const sieve_result *r);

#endif

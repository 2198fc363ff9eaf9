/*
 * hdraddr.h - completing header addresses that lack a domain (Messaging Server's `remotehost`,
 * `noremotehost` and `inner` channel keywords, doc/configuration.md): in the address fields of a
 * message's header (From, Sender, Reply-To, To, Cc, Bcc, their Resent- forms,
 * Return-Receipt-To, Disposition-Notification-To, Errors-To) every mailbox whose addr-spec has no
 * "@domain" (`alice`, `Alice <alice>`, `team: alice, bob;`, `"a b" (comment)`) gets "@domain"
 * added right after its local part; with inner, the same is done in the headers of the
 * message/rfc822 parts the MIME structure holds (multipart/digest parts included), at most
 * HDRADDR_MAX_DEPTH entities deep.
 *
 * Pure: bytes in, bytes out, no I/O; nothing else in the message changes (folding, comments,
 * display names and the body stay byte for byte). A field whose syntax it cannot follow
 * (an unterminated quoted string, comment or angle bracket) is left as it is. Any thread.
 */
#ifndef SLUICE_REWRITE_HDRADDR_H
#define SLUICE_REWRITE_HDRADDR_H
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"

/* How many MIME entities deep inner completion looks (the outer message is depth 0). */
#define HDRADDR_MAX_DEPTH 8

/* hdraddr_is_address_field - whether the field name (name_len bytes, no colon) holds addresses we complete. */
bool hdraddr_is_address_field(const char *name, size_t name_len);
/* hdraddr_needed - the check before any copy: whether msg[0..len) may need completion at all (an
 * address field of the outer header with an address lacking its domain, or, with inner, a
 * multipart or message body). A field with one '@' per element and no quotes, comments, groups
 * or brackets passes without the precise reading. False means hdraddr_complete would change
 * nothing; nothing is copied. */
bool hdraddr_needed(const char *msg, size_t len, bool inner);
/* hdraddr_complete - msg[0..len) (header, empty line, body; CRLF or LF lines) with "@" domain
 * added to every domainless address as described above, written to out (appended); returns how
 * many addresses were completed. When it returns 0, nothing was appended to out. */
size_t hdraddr_complete(const char *msg, size_t len, const char *domain, bool inner, strbuf *out);

#endif

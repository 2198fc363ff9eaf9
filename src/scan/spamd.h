/*
 * spamd.h - the SPAMC/SPAMD protocol, version 1.5 (SpamAssassin's spamd): the request a client
 * sends and the parse of spamd's answer. Pure (no I/O); any thread.
 *
 * Request: "<COMMAND> SPAMC/1.5", "Content-length: N", "User: NAME", an empty line, the message.
 * Answer: "SPAMD/1.x <code> <text>", headers ("Spam: True ; 7.1 / 5.0", "Content-length: N"),
 * an empty line, then for SYMBOLS the matched rule names, for HEADERS the message's header as
 * spamd would rewrite it (its X-Spam-* fields are what a HEADERS scan reports).
 */
#ifndef SLUICE_SCAN_SPAMD_H
#define SLUICE_SCAN_SPAMD_H
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"
#include "scan/scan.h"

enum spamd_command { SPAMD_CHECK, SPAMD_SYMBOLS, SPAMD_HEADERS };

/* spamd_request_head - the request line and headers (the message follows them) into out. user
 * may be NULL or ""; characters other than printable ASCII in it are dropped. */
void spamd_request_head(strbuf *out, enum spamd_command cmd, const char *user, size_t len);
/* spamd_parse - spamd's answer so far (eof: the connection is closed). 1: complete, *r filled
 * (status SCAN_DONE, or SCAN_FAILED with the reason when spamd reported an error); 0: more is
 * needed; -1: not the protocol (r->detail says why). */
int spamd_parse(enum spamd_command cmd, const char *buf, size_t len, bool eof, scan_result *r);

#endif

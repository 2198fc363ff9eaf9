/*
 * clamd.h - ClamAV's clamd INSTREAM command: the framing of the message sent and the parse of
 * the one-line answer. Pure (no I/O); any thread.
 *
 * Request: "zINSTREAM\0", then chunks of <4-byte big-endian length><bytes>, then a zero length.
 * Answer (NUL-terminated): "stream: OK", "stream: <signature> FOUND", or "... ERROR".
 */
#ifndef SLUICE_SCAN_CLAMD_H
#define SLUICE_SCAN_CLAMD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/scan.h"

#define CLAMD_COMMAND "zINSTREAM" /* sent with its NUL */
#define CLAMD_CHUNK 65536         /* bytes per chunk sent */

/* clamd_chunk_header - the 4-byte length prefix of a chunk of n bytes (0 ends the stream). */
void clamd_chunk_header(uint32_t n, unsigned char out[4]);
/* clamd_parse - clamd's answer so far (eof: the connection is closed). 1: complete, *r filled
 * (SCAN_DONE with hit and the signature, or SCAN_FAILED for an ERROR answer); 0: more is needed;
 * -1: not the protocol (r->detail says why). */
int clamd_parse(const char *buf, size_t len, bool eof, scan_result *r);

#endif

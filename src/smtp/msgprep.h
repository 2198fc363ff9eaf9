/*
 * msgprep.h - preparing a message handed to `sluice sendmail` (pure): input lines to CRLF
 * content (a lone "." ends it unless -i), the address lists of To/Cc/Bcc for -t (Bcc then
 * removed), and the header fields a local submission must have (From, Date, Message-ID) added
 * when missing. No I/O, no clock: the caller reads stdin and passes the values of the fields
 * to add. Any thread; a msgprep is used by one thread at a time.
 */
#ifndef SLUICE_SMTP_MSGPREP_H
#define SLUICE_SMTP_MSGPREP_H
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"

/* A message being read. */
typedef struct {
    strbuf raw;      /* the lines so far, each ending CRLF */
    bool ignore_dot; /* -i / -oi: a lone "." is an ordinary line */
    bool ended;      /* a lone "." ended the input */
    bool eight_bit;  /* a byte >= 0x80 was seen */
    size_t lines;
} msgprep;

/* The fields added when missing (values without the name, e.g. "Alice <alice@example.com>"). */
typedef struct {
    const char *from, *date, *message_id;
} msgprep_fields;

/* msgprep_init - an empty message; ignore_dot as for sendmail -i. */
void msgprep_init(msgprep *m, bool ignore_dot);
/* msgprep_free - release m. */
void msgprep_free(msgprep *m);
/* msgprep_line - one input line with or without its LF / CRLF (a final line may lack it).
 * Returns true when the line was a lone "." that ends the message (then it is not kept). */
bool msgprep_line(msgprep *m, const char *line, size_t len);
/* msgprep_address_list - the addr-specs of an RFC 5322 address-list value (display names,
 * comments, groups and source routes dropped; quoted local parts kept), appended to out. */
void msgprep_address_list(const char *value, strvec *out);
/*
 * msgprep_finish - the content to submit into out: header fields as read (with extract: the
 * addresses of To, Cc and Bcc appended to rcpts and every Bcc field removed), then f's fields
 * that the header lacks (NULL: never added), an empty line and the body. A leading mbox
 * "From " line is dropped; input that does not start with a header field is all body.
 */
void msgprep_finish(const msgprep *m, bool extract, strvec *rcpts, const msgprep_fields *f, strbuf *out);

#endif

/*
 * client.h - the pure parts of the SMTP client engine: reply parsing (multi-line, enhanced
 * status codes), EHLO capabilities, MAIL/RCPT command lines with SIZE/BODY/SMTPUTF8/DSN
 * parameters (xtext), dot-stuffing of message data (and the CRLF lines BDAT sends).
 * No sockets, clocks or files: the session engine (client_sess.c) feeds it lines and sends what
 * it builds, and unit tests drive it directly. Results are owned by the caller. Any thread.
 */
#ifndef SLUICE_SMTP_CLIENT_H
#define SLUICE_SMTP_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "queue/qfile.h"

#define SMTP_REPLY_MAX_LINES 256 /* a longer reply is treated as malformed */

/* One complete server reply. */
typedef struct {
    int code;       /* 200..599 */
    char enh[16];   /* enhanced status code of the first line ("5.1.1"), "" if none */
    strvec lines;   /* text of each line after "NNN-" / "NNN " */
} smtp_reply;

/* Reply parser state: lines of an unfinished multi-line reply. */
typedef struct {
    smtp_reply cur;
    bool active; /* a "NNN-" line has been seen */
} smtp_reply_parser;

/* smtp_reply_parser_init - an empty parser. */
void smtp_reply_parser_init(smtp_reply_parser *p);
/* smtp_reply_parser_free - release an unfinished reply and reset the parser. */
void smtp_reply_parser_free(smtp_reply_parser *p);
/*
 * smtp_reply_parse_line - feed one reply line (without CRLF). Returns 1 when out holds a complete
 * reply (caller frees it with smtp_reply_free), 0 when more lines are needed, -1 on a malformed
 * line (the parser is reset).
 */
int smtp_reply_parse_line(smtp_reply_parser *p, const char *line, size_t len, smtp_reply *out);
/* smtp_reply_free - release a reply's lines. */
void smtp_reply_free(smtp_reply *r);
/* smtp_reply_text - the reply as one line, "550 5.1.1 text more text"; caller frees. */
char *smtp_reply_text(const smtp_reply *r);
/* smtp_reply_status - the reply's enhanced status code, else "<class>.0.0", into buf. */
void smtp_reply_status(const smtp_reply *r, char *buf, size_t len);

/* Service extensions announced in an EHLO reply. */
typedef struct {
    bool esmtp; /* the peer answered EHLO (false after a HELO fallback) */
    bool pipelining, size, eightbitmime, dsn, smtputf8, enhancedstatuscodes, starttls, chunking;
    uint64_t size_max; /* SIZE limit; 0 = none announced */
    char xloop[65];    /* the peer's installation token (XLOOP keyword), "" if none */
} smtp_caps;

/* smtp_caps_parse - fill caps from a 2xx EHLO reply (the first line is the greeting). */
void smtp_caps_parse(const smtp_reply *ehlo, smtp_caps *caps);

/* smtp_client_mail_line - "MAIL FROM:<sender> [params]\r\n" for m as the peer's caps allow; caller frees. */
char *smtp_client_mail_line(const qmsg *m, const smtp_caps *caps);
/* smtp_client_rcpt_line - "RCPT TO:<addr> [NOTIFY= ORCPT=]\r\n" (DSN parameters only if offered); caller frees. */
char *smtp_client_rcpt_line(const qrcpt *r, const smtp_caps *caps);
/* smtp_client_folder_addr - the address that delivers to r's Sieve folder over LMTP: tmpl with
 * $U the local part, $D the domain, $S the folder ("$U+$S@$D", Dovecot's convention); caller
 * frees; NULL when r has no folder. */
char *smtp_client_folder_addr(const qrcpt *r, const char *tmpl);

/* smtp_emit_fn - receives one piece of output. */
typedef void (*smtp_emit_fn)(void *ctx, const void *p, size_t n);
/*
 * smtp_client_dot_stuff - emit data (lines, not stuffed) for DATA: every bare CR and bare LF
 * becomes CRLF (nothing else ever leaves: RFC 5321 2.3.8), a line starting with '.' gets another
 * '.', a missing final CRLF is added, then ".\r\n". Pieces point into data where possible, so the
 * caller copies the body at most once.
 */
void smtp_client_dot_stuff(const char *data, size_t len, smtp_emit_fn emit, void *ctx);
/* smtp_client_crlf_lines - the same without the dots, for BDAT: CRLF lines, a final CRLF added if missing. */
void smtp_client_crlf_lines(const char *data, size_t len, smtp_emit_fn emit, void *ctx);


#endif

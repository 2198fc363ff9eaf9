/*
 * parse.h - pure parsers for SMTP command lines, mailbox addresses and xtext (RFC 5321, 6531,
 * 3461, 1870, 3030). Untrusted bytes in, validated structs out; no I/O, no globals. Any thread.
 */
#ifndef SLUICE_SMTP_PARSE_H
#define SLUICE_SMTP_PARSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
#define SMTP_CMD_LINE_MAX 512   /* including CRLF (RFC 5321 4.5.3.1.4) */
#define SMTP_TEXT_LINE_MAX 1000 /* including CRLF */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500
#define SMTP_SOLICIT_MAX 256 /* SOLICIT= value (RFC 3865 sets no limit; a command line is 512) */

/* A mailbox: local-part and domain; the null path has both empty and is_null set. */
typedef struct {
    char *local;  /* local part exactly as written (a quoted-string keeps its quotes) */
    char *domain; /* lower-cased; a domain literal keeps its brackets: "[1.2.3.4]" */
    bool is_null; /* "<>" */
    bool utf8;    /* contains non-ASCII (needs SMTPUTF8) */
} smtp_addr;

/* smtp_addr_free - release a parsed address. */
void smtp_addr_free(smtp_addr *a);
/* smtp_addr_format - "local@domain" (or "" for null); caller frees. */
char *smtp_addr_format(const smtp_addr *a);
/*
 * smtp_addr_parse - parse a mailbox "local@domain" (no angle brackets). Accepts dot-atom and
 * quoted-string local parts, domain names and address literals, UTF-8 when allow_utf8.
 * Returns 0, or -1 with a reason in err.
 */
int smtp_addr_parse(const char *s, size_t len, bool allow_utf8, smtp_addr *out, char *err, size_t errlen);
/*
 * smtp_domain_check - validate a domain name (LDH labels, U-labels when allow_utf8) or an address
 * literal "[1.2.3.4]" / "[IPv6:...]" as used after '@' and in HELO/EHLO. Returns 0, or -1 with a
 * reason in err.
 */
int smtp_domain_check(const char *s, size_t len, bool allow_utf8, char *err, size_t errlen);

enum smtp_verb {
    SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_BDAT, SMTP_RSET, SMTP_NOOP,
    SMTP_QUIT, SMTP_VRFY, SMTP_HELP, SMTP_STARTTLS, SMTP_AUTH, SMTP_EXPN, SMTP_ETRN,
    SMTP_UNKNOWN,   /* not a command we know: 500 5.5.1 */
    SMTP_HOSTILE    /* GET/POST/CONNECT or "Header: value" shaped: close the session */
};

/* DSN NOTIFY bits; 0 means "not given" (default behaviour: failures only). */
enum { DSN_NOTIFY_NEVER = 1, DSN_NOTIFY_SUCCESS = 2, DSN_NOTIFY_FAILURE = 4, DSN_NOTIFY_DELAY = 8 };
enum dsn_ret { DSN_RET_UNSET = 0, DSN_RET_FULL = 1, DSN_RET_HDRS = 2 };
enum smtp_body { BODY_UNSET = 0, BODY_7BIT = 1, BODY_8BITMIME = 2, BODY_BINARYMIME = 3 };

typedef struct {
    enum smtp_verb verb;
    char *arg;          /* HELO/EHLO domain, VRFY/HELP text, AUTH mechanism line (raw), ETRN node
                           ("domain", "@domain" lower-cased, or "#queue") */
    smtp_addr path;     /* MAIL FROM / RCPT TO */
    /* MAIL parameters */
    uint64_t size;      /* SIZE=, 0 if absent */
    bool has_size;
    enum smtp_body body;
    bool smtputf8;
    enum dsn_ret ret;
    char *envid;        /* decoded xtext, NULL if absent */
    char *solicit;      /* SOLICIT= keywords as written (RFC 3865), NULL if absent */
    /* RCPT parameters */
    unsigned notify;    /* DSN_NOTIFY_* bits */
    char *orcpt;        /* "rfc822;addr" decoded, NULL if absent */
    /* BDAT */
    uint64_t bdat_size;
    bool bdat_last;
} smtp_cmd;

/* smtp_solicit_check - whether v (vlen bytes) is an RFC 3865 list of solicitation keywords. */
bool smtp_solicit_check(const char *v, size_t vlen);
/* smtp_cmd_free - release what smtp_cmd_parse allocated in cmd. */
void smtp_cmd_free(smtp_cmd *cmd);
/*
 * smtp_cmd_parse - parse one command line (without CRLF). On success returns 0. On a syntax
 * error returns the reply code (500, 501, 504, 555) and writes the complete reply text without
 * CRLF, e.g. "501 5.5.4 Syntax: MAIL FROM:<address>", into reply. verb is set whenever known.
 * esmtp: the session said EHLO, so MAIL/RCPT parameters are allowed (555 otherwise).
 */
int smtp_cmd_parse(const char *line, size_t len, bool esmtp, smtp_cmd *cmd, char *reply, size_t replylen);

/* xtext_decode - decode RFC 3461 xtext; NULL if malformed. Caller frees. */
char *xtext_decode(const char *s, size_t len);
/* xtext_encode - encode text as xtext; caller frees. */
char *xtext_encode(const char *s);

#endif

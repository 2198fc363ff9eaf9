/*
 * verdict.h - what a policy decision answers, and the one table that turns it into a reply line.
 *
 * A decision (connect, HELO, MAIL, RCPT, AUTH) ends in a verdict: accept, or a refusal of a
 * class (unknown user, relay denied, access table, ...) that is temporary or permanent. The
 * class fixes the default reply code, enhanced status code and text; an access table or a
 * rewrite rule may override the code, the status and the text. verdict_reply is the only place
 * that writes policy reply lines: protocol syntax errors stay in the SMTP engine. Whether a
 * class rests on local data (the directory, the tables) is in the table too, for the MX-fleet
 * switch that turns such rejections into 4xx. Pure; any thread.
 */
#ifndef SLUICE_VERDICT_H
#define SLUICE_VERDICT_H
#include <stdbool.h>

#include "core/util.h"

typedef enum {
    VERDICT_OK = 0,         /* accept */
    VERDICT_UNKNOWN_USER,   /* no such recipient in a local domain */
    VERDICT_RELAY_DENIED,   /* outsider to a domain we do not serve */
    VERDICT_ACCESS,         /* an access mapping table refused (its code and text) */
    VERDICT_MAILBOX_STATUS, /* the recipient's status forbids delivery */
    VERDICT_DOMAIN_STATUS,  /* the domain's status forbids delivery */
    VERDICT_SIZE,           /* the declared size is over the fixed maximum */
    VERDICT_RCPT_SIZE,      /* the message is larger than the recipient's limit (the directory's) */
    VERDICT_RCPT_LIMIT,     /* too many recipients in this transaction */
    VERDICT_RCPT_CUTOFF,    /* past the sender's recipient cutoff: the whole transaction is refused */
    VERDICT_GROUP_AUTH,     /* the sender may not submit to this group */
    VERDICT_LOOKUP_FAILED,  /* a lookup (directory, table, DNS) could not answer: always temporary */
    VERDICT_ROUTE,          /* rewriting refused the address (its $? text) */
    VERDICT_TLS_REQUIRED,   /* the service demands STARTTLS first */
    VERDICT_AUTH_REQUIRED,  /* the service demands AUTH first */
    VERDICT_AUTH_FAILED,    /* wrong credentials */
    VERDICT_AUTH_TEMP,      /* credentials could not be checked now */
    VERDICT_AUTH_OK,        /* AUTH accepted (235) */
    VERDICT_CONN_LIMIT,     /* too many connections (service or client) */
    VERDICT_CONTENT_REJECT, /* a content scanner's verdict (or a Sieve reject) refuses the message */
    VERDICT_SCAN_FAILED,    /* a required content scanner could not answer: always temporary */
    VERDICT_MILTER,         /* a milter refused the command (its reply code and text when it gave one) */
    VERDICT_DNSBL,          /* the client is on a DNS block list (DNS_VERIFY_DOMAIN) */
    VERDICT_SPF_FAIL,       /* SPF fail at MAIL FROM with spf_fail_action=reject (RFC 7372 5.7.23) */
    VERDICT_SPF_TEMP,       /* SPF temperror with spf_fail_action=reject: always temporary (4.7.24) */
    VERDICT_SOLICIT,        /* MAIL FROM's SOLICIT= names a keyword the source channel refuses (RFC 3865) */
    VERDICT_ETRN_STARTED,   /* ETRN: delivery of the node's queued messages started (253, RFC 1985) */
    VERDICT_ETRN_NONE,      /* ETRN: no message waits for the node (251) */
    VERDICT_ETRN_DENIED,    /* ETRN: ETRN_ACCESS (or the default, internal clients only) refuses the node (459) */
    VERDICT_ETRN_FAILED,    /* ETRN: the queue cannot be run now (458) */
    VERDICT_DMARC_REJECT,   /* DMARC fail of a p=reject domain with dmarc_action=reject (RFC 7489 §6.6.4) */
    VERDICT__COUNT
} verdict_class;

typedef struct {
    verdict_class cls;
    bool temp;          /* temporary (4xx) rather than permanent (5xx) */
    int code;           /* reply code override (an access table's), 0 for the class default */
    char status[12];    /* enhanced status override ("5.7.1"), "" for the class default */
    char *text;         /* text override (owned), NULL for the class default */
    const char *subject;/* the address the verdict is about (borrowed, for "<addr>:" texts), or NULL */
    unsigned delay_ms;  /* hold the reply back this long (an access table's $D) */
    bool disconnect;    /* close the session after the reply */
    const char *table;  /* VERDICT_ACCESS / a failed table lookup: the mapping table (static), or NULL */
} verdict;

/* verdict_ok - an accepting verdict. */
verdict verdict_ok(void);
/* verdict_refuse - a refusal of cls (temporary or not) about subject (borrowed, may be NULL). */
verdict verdict_refuse(verdict_class cls, bool temp, const char *subject);
/* verdict_set_text - override the text (copied). */
void verdict_set_text(verdict *v, const char *text);
/* verdict_set_status - override the enhanced status code ("5.1.2"; ignored when NULL or empty). */
void verdict_set_status(verdict *v, const char *status);
/* verdict_free - release what v owns. */
void verdict_free(verdict *v);
/* verdict_accepts - whether v lets the command proceed. */
bool verdict_accepts(const verdict *v);
/* verdict_code - the reply code v answers with. */
int verdict_code(const verdict *v);
/* verdict_reply - the complete reply line for v (no CRLF) into out; host is our host name. */
void verdict_reply(const verdict *v, const char *host, strbuf *out);
/* verdict_why - "class=NAME[ table=TABLE]" for log lines, into out. */
void verdict_why(const verdict *v, strbuf *out);
/* verdict_class_name - a stable name for logs ("unknown_user"). */
const char *verdict_class_name(verdict_class cls);
/* verdict_local_data - whether the class rests on local data that a sibling MX may lack. */
bool verdict_local_data(verdict_class cls);

#endif

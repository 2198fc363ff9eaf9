/*
 * tlsrpt_data.h - the bookkeeping of TLS-RPT (RFC 8460): what outbound TLS sessions achieved,
 * counted per day (UTC), policy domain and policy, and the pure pieces a report is made of: the
 * durable day file, the JSON report (RFC 8460 section 4), the `_smtp._tls` TXT record (section 3),
 * gzip and the report message (section 5.3).
 *
 * A book holds days; a day holds policy domains (at most max_domains: the sessions of further
 * domains are counted as dropped); a domain holds its policies (at most TLSRPT_MAX_POLICIES); a
 * policy holds its success and failure counts and its failure-detail rows (at most max_details;
 * failures beyond that are still counted, their details dropped and counted).
 *
 * Pure: no clock (days are arguments: days since 1970-01-01), no files, no logging. The daemon's
 * recorder (tlsrpt.h) owns one book and uses it on the loop thread only.
 */
#ifndef SLUICE_TLSRPT_DATA_H
#define SLUICE_TLSRPT_DATA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define TLSRPT_MAX_POLICIES 8 /* policies per domain and day */

/* policy-type of RFC 8460 4.4 */
enum tlsrpt_ptype { TLSRPT_POLICY_STS, TLSRPT_POLICY_TLSA, TLSRPT_POLICY_NONE /* no-policy-found */ };

/* result-type of RFC 8460 4.3 (TLSRPT_SUCCESS is a successful session, not a result-type) */
enum tlsrpt_rtype {
    TLSRPT_SUCCESS = 0,
    TLSRPT_STARTTLS_NOT_SUPPORTED,
    TLSRPT_CERT_HOST_MISMATCH,
    TLSRPT_CERT_EXPIRED,
    TLSRPT_CERT_NOT_TRUSTED,
    TLSRPT_VALIDATION_FAILURE,
    TLSRPT_TLSA_INVALID,
    TLSRPT_DNSSEC_INVALID,
    TLSRPT_DANE_REQUIRED,
    TLSRPT_STS_POLICY_FETCH_ERROR,
    TLSRPT_STS_POLICY_INVALID,
    TLSRPT_STS_WEBPKI_INVALID,
    TLSRPT_RTYPES
};

/* The policy a session was held to. Strings are the caller's; the book copies them. */
typedef struct {
    const char *domain;               /* policy-domain: the recipient domain */
    enum tlsrpt_ptype type;
    const char *const *strings;       /* policy-string: the STS policy's lines, the TLSA records */
    size_t n_strings;
    const char *const *mx_hosts;      /* mx-host: the MX patterns of an STS policy */
    size_t n_mx;
} tlsrpt_policy;

/* What one session achieved; the failure details (NULL: absent) are ignored for a success. */
typedef struct {
    enum tlsrpt_rtype type;
    const char *sending_ip;     /* sending-mta-ip */
    const char *receiving_mx;   /* receiving-mx-hostname */
    const char *receiving_ip;   /* receiving-ip */
    const char *receiving_helo; /* receiving-mx-helo */
    const char *reason;         /* failure-reason-code: e.g. the TLS library's reason */
} tlsrpt_result;

typedef struct tlsrpt_book tlsrpt_book;

/* tlsrpt_rtype_name - the result-type string of RFC 8460 4.3 ("success" for TLSRPT_SUCCESS). */
const char *tlsrpt_rtype_name(enum tlsrpt_rtype t);
/* tlsrpt_ptype_name - "sts", "tlsa" or "no-policy-found". */
const char *tlsrpt_ptype_name(enum tlsrpt_ptype t);
/* tlsrpt_day_name - "YYYY-MM-DD" of day into buf (at least 16 bytes). */
void tlsrpt_day_name(int64_t day, char *buf, size_t len);
/* tlsrpt_day_parse - the day of "YYYY-MM-DD"; -1 when malformed. */
int64_t tlsrpt_day_parse(const char *s);

/* tlsrpt_book_new - an empty book bounded by max_domains per day and max_details per policy. */
tlsrpt_book *tlsrpt_book_new(size_t max_domains, size_t max_details);
/* tlsrpt_book_free - release it (NULL allowed). */
void tlsrpt_book_free(tlsrpt_book *b);
/* tlsrpt_book_add - count one session of day; a record for a domain already reported starts it afresh. */
void tlsrpt_book_add(tlsrpt_book *b, int64_t day, const tlsrpt_policy *p, const tlsrpt_result *r);

/* tlsrpt_book_days - the days held, oldest first, into out (the caller's, at most max); their number. */
size_t tlsrpt_book_days(const tlsrpt_book *b, int64_t *out, size_t max);
/* tlsrpt_book_dirty - whether day changed since tlsrpt_book_mark(day, false). */
bool tlsrpt_book_dirty(const tlsrpt_book *b, int64_t day);
/* tlsrpt_book_mark - day is written out as it is now (dirty false), or must be written again (true). */
void tlsrpt_book_mark(tlsrpt_book *b, int64_t day, bool dirty);
/* tlsrpt_book_pending - the policy domains of day not reported yet, appended to out. */
void tlsrpt_book_pending(const tlsrpt_book *b, int64_t day, strvec *out);
/* tlsrpt_book_mark_sent - domain's report for day is out: its counts are forgotten, the mark kept. */
void tlsrpt_book_mark_sent(tlsrpt_book *b, int64_t day, const char *domain);
/* tlsrpt_book_forget - drop day from memory (its file stays). */
void tlsrpt_book_forget(tlsrpt_book *b, int64_t day);

/* Totals of one domain and day, for logs and tests. */
typedef struct {
    uint64_t success, failure, details_dropped;
    size_t policies;
    bool sent;
} tlsrpt_totals;
/* tlsrpt_book_totals - domain's totals on day; false when the book has no such domain. */
bool tlsrpt_book_totals(const tlsrpt_book *b, int64_t day, const char *domain, tlsrpt_totals *t);
/* tlsrpt_book_dropped - sessions of day not counted because the day had max_domains already. */
uint64_t tlsrpt_book_dropped(const tlsrpt_book *b, int64_t day);

/* tlsrpt_book_dump - day as the text of its day file (the format is described in tlsrpt_data.c). */
void tlsrpt_book_dump(const tlsrpt_book *b, int64_t day, strbuf *out);
/* tlsrpt_book_load - add the day file text[0..len) to the book; -1 with err when malformed (nothing added). */
int tlsrpt_book_load(tlsrpt_book *b, const char *text, size_t len, char *err, size_t errlen);

/* What a report says besides the counts. */
typedef struct {
    const char *org;       /* organization-name */
    const char *contact;   /* contact-info */
    const char *report_id; /* report-id */
} tlsrpt_meta;
/* tlsrpt_report_json - the JSON report of RFC 8460 4 for domain on day into out; false when none is held. */
bool tlsrpt_report_json(const tlsrpt_book *b, int64_t day, const char *domain, const tlsrpt_meta *m, strbuf *out);

/* tlsrpt_txt_parse - one TXT record: 1 and the rua URIs (mailto: and https: only, others ignored)
 * appended to rua when it is a valid TLSRPTv1 record; 0 when it is not a TLS-RPT record at all;
 * -1 when it claims v=TLSRPTv1 but is malformed or names no usable rua. */
int tlsrpt_txt_parse(const char *txt, strvec *rua);
/* tlsrpt_txt_select - RFC 8460 3: of the TXT records strs[0..n), exactly one must be a TLS-RPT
 * record; its ruas into rua and true, else false (none, several, or a malformed one). */
bool tlsrpt_txt_select(char *const *strs, size_t n, strvec *rua);

/* tlsrpt_gzip - in[0..len) gzip-compressed (RFC 1952) into out. */
void tlsrpt_gzip(const void *in, size_t len, strbuf *out);

/* The report message of RFC 8460 5.3. */
typedef struct {
    const char *from, *to;       /* From: and To: addresses */
    const char *domain;          /* the policy domain (TLS-Report-Domain) */
    const char *submitter;       /* our host name (TLS-Report-Submitter) */
    const char *report_id;
    const char *date, *msgid, *boundary;
    int64_t begin, end;          /* the report's date range (unix time), for the file name */
    const void *gz;              /* the gzipped JSON */
    size_t gz_len;
} tlsrpt_mail;
/* tlsrpt_mail_filename - "submitter!domain!begin!end!unique.json.gz" (5.3) into out. */
void tlsrpt_mail_filename(const tlsrpt_mail *m, strbuf *out);
/* tlsrpt_mail_build - the message (header and body, CRLF) into out. */
void tlsrpt_mail_build(const tlsrpt_mail *m, strbuf *out);

#endif

/*
 * scan.h - content scanner clients: what one scan is asked and what it answers.
 *
 * A scanner (option.dat spamfilterN_*, N = 1..8) is a spamd, clamd or milter service reached
 * over TCP or a Unix socket. The policy layer (policy/scan_stage.c) asks each scanner once per
 * distinct opt-in string among the accepted recipients, at the end of data and before the 250,
 * then turns each recipient's verdicts into actions (Sieve, sieve/sieve.h).
 *
 * Each client is a pure protocol engine (scan/spamd.c, scan/clamd.c, scan/milter.c: bytes in,
 * bytes and results out, no sockets, no clock) plus an I/O adapter on the loop (scan/scan_io.c
 * for the request/response scanners, scan/milter_io.c for milter). A scanner that dies, hangs or
 * speaks garbage ends its scan with SCAN_FAILED; it never takes the MTA down. Loop thread only.
 */
#ifndef SLUICE_SCAN_H
#define SLUICE_SCAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

enum scan_kind { SCAN_NONE = 0, SCAN_SPAMD, SCAN_CLAMD, SCAN_MILTER };

/* Where a scanner listens and how long it may take. */
typedef struct {
    enum scan_kind kind;
    char *host;        /* TCP host (IP address text), or NULL with a Unix socket */
    unsigned port;     /* TCP port */
    char *unix_path;   /* Unix socket path, or NULL */
    unsigned timeout;  /* seconds per stage (connect, send, answer); default 30 */
    uint64_t max_size; /* bytes of content sent at most (clamd's StreamMaxLength; spamd's limit); 0 = all */
} scan_target;

/* One scan's question; valid during the start call only (the adapter copies what it needs). */
typedef struct {
    const char *data;   /* the message: header and body, CRLF line ends */
    size_t len;
    const char *optin;  /* the opt-in string of this group of recipients ("" = none): spamd's User: */
    const char *qid;    /* queue id, for logs */
    const char *client_ip, *helo, *sender;
    const char *const *rcpts; /* the recipients of this group */
    size_t n_rcpts;
} scan_req;

enum scan_status { SCAN_DONE = 0, SCAN_FAILED = 1 };

/* One scan's answer. */
typedef struct {
    enum scan_status status;
    bool hit;        /* spam (spamd's "Spam: True") or a virus (clamd "FOUND") */
    char *verdict;   /* the verdict string: NULL = the null verdict (nothing found) */
    double score;    /* spamd: the score; clamd: 0 */
    double threshold;/* spamd: the required score */
    char *detail;    /* clamd: the signature name; spamd: the symbols; SCAN_FAILED: the reason */
    strvec headers;  /* spamd HEADERS: "Name: value" lines it would add (folded lines joined) */
} scan_result;

/* scan_result_free - release what r owns. */
void scan_result_free(scan_result *r);

#endif

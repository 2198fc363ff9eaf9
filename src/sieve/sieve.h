/*
 * sieve.h - a Sieve interpreter (RFC 5228) for per-recipient actions after content scanning.
 *
 * Scripts come from the configuration (spamfilterN_action_M, written as "data:," URLs the way
 * Messaging Server writes them) and from users (the directory attribute mailSieveRuleSource),
 * so the parser and the interpreter take untrusted text and untrusted messages: everything is
 * bounded (script size, nesting depth, string lengths, actions, matcher work; no :regex).
 *
 * Extensions: fileinto, envelope, reject, ereject (RFC 5429), vacation (RFC 5230), editheader
 * (RFC 5293), spamtest, spamtestplus, virustest (RFC 5235), relational (RFC 5231), copy
 * (RFC 3894), comparator-i;ascii-numeric, and Messaging Server's addtag. doc/sieve.md describes
 * the language, the limits and how the results of several scripts combine.
 *
 * Pure: no I/O, no clock, no globals. A compiled script is immutable, so one script may be run
 * by any number of threads at once; a result belongs to the caller.
 */
#ifndef SLUICE_SIEVE_H
#define SLUICE_SIEVE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

/* Limits (doc/sieve.md). A script over one of them does not compile; a run over one ends in a
 * runtime error (implicit keep). */
#define SIEVE_MAX_SCRIPT (128u * 1024u)  /* octets of script text */
#define SIEVE_MAX_DEPTH 32               /* nested blocks and tests together */
#define SIEVE_MAX_STRING (32u * 1024u)   /* octets of one string after unescaping */
#define SIEVE_MAX_HEADER_VALUE 2048u     /* octets of an addheader value */
#define SIEVE_MAX_LIST 256               /* strings in one string list, tests in one test list */
#define SIEVE_MAX_ACTIONS 64             /* actions executed by one run (header edits included) */
#define SIEVE_MAX_REDIRECTS 8            /* distinct redirect addresses of one run */
#define SIEVE_MAX_STEPS 5000000u         /* units of matching work of one run (tens of ms) */
#define SIEVE_VACATION_DAYS 7            /* vacation :days default; clamped to 1..30 */
#define SIEVE_VACATION_MAX_DAYS 30

typedef struct sieve_script sieve_script;

/* sieve_parse - compile text (len bytes); NULL with "line N: message" in err on any error. */
sieve_script *sieve_parse(const char *text, size_t len, char *err, size_t errlen);
/* sieve_parse_url - compile a "data:[;base64],<script>" URL (Messaging Server's inline form;
 * the text after the comma is taken literally, no %XX decoding), or a plain script as it is. */
sieve_script *sieve_parse_url(const char *text, char *err, size_t errlen);
/* sieve_free - release a compiled script; NULL is fine. */
void sieve_free(sieve_script *s);

/* One message as one run sees it; the caller keeps it alive during sieve_run. */
typedef struct {
    const char *header;  size_t header_len;   /* the header block (CRLF lines, without the empty line) */
    uint64_t size;                              /* the whole message's size in octets */
    const char *env_from;                       /* envelope sender ("" for <>) */
    const char *env_to;                         /* the envelope recipient this run is for */
    int spamtest;        /* RFC 5235: 0 = not tested, 1..10 */
    int spamtest_percent;/* 0..100, or -1 when not tested */
    int virustest;       /* 0 = not tested, 1..5 */
} sieve_msg;

/* What one run (or several merged runs) decided. Every pointer is owned by the result. */
typedef struct {
    bool keep;              /* the message goes to the inbox (explicit or implicit keep) */
    bool discard;           /* explicitly discarded (and not kept, filed, redirected or rejected) */
    strvec fileinto;        /* folders, in order, deduplicated */
    strvec redirect;        /* addresses, in order, deduplicated */
    char *reject;           /* reject/ereject reason, or NULL */
    bool ereject;
    char *header;  size_t header_len; /* the edited header block (NULL when no edit happened) */
    bool vacation;          /* a vacation action ran */
    unsigned vacation_days; char *vacation_reason, *vacation_subject, *vacation_from, *vacation_handle;
    strvec vacation_addresses; bool vacation_mime;
    char *error;            /* a runtime error (the result then keeps), or NULL */
    /* For sieve_result_merge: whether a keep was explicit (keep, or a runtime error), and
     * whether an action cancelled the implicit keep (discard, fileinto, redirect, reject). */
    bool keep_explicit;
    bool keep_cancelled;
} sieve_result;

/* sieve_run - evaluate s on m into out (zeroed first). Returns 0, or -1 on a runtime error
 * (out->error set, out->keep true, every other action dropped). */
int sieve_run(const sieve_script *s, const sieve_msg *m, sieve_result *out);
/* sieve_result_free - release what r owns and zero it. */
void sieve_result_free(sieve_result *r);
/* sieve_result_merge - fold the result of a later script (run on dst's header: pass dst->header,
 * when set, as the next run's m->header) into dst; src is emptied. Rules in doc/sieve.md. */
void sieve_result_merge(sieve_result *dst, sieve_result *src);

#endif

/*
 * ldap_pool.h - a pool of connections to LDAP servers for the LDAP directory backend, driven by
 * the event loop, which never waits for a server:
 *
 * - searches go out with libldap's asynchronous ldap_search_ext on a connected handle whose socket
 *   (LDAP_OPT_DESC) is non-blocking and watched by an event; when it is readable, ldap_result with
 *   a zero timeout collects whatever answers are complete;
 * - every search has a deadline (a timer): past it the search is abandoned and answered TEMP, and
 *   a connection that has said nothing since the search went out is closed and dialled again;
 * - setting a connection up (name resolution, TCP, ldaps:// or StartTLS, the bind) is done by
 *   libldap synchronously, so each attempt runs on a short-lived thread of its own (each step
 *   bounded by ldap_timeout) and hands the bound handle back to the loop through a pipe. An
 *   attempt tries the URIs in order (fail-over); when all fail the connection waits (1 s,
 *   doubling to 30 s) before the next attempt. A failed bind is such a failure: never an answer.
 *
 * Searches wait in a queue while no connection is up and one is being dialled; when none is up
 * or being dialled (every attempt failed, waiting for the next), a search is answered TEMP at
 * once rather than after its deadline. Answers come on the loop thread, never from inside
 * ld_pool_search. Loop thread only (apart from the dial threads, which touch nothing else).
 */
#ifndef SLUICE_DIR_LDAP_POOL_H
#define SLUICE_DIR_LDAP_POOL_H
#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/util.h"

struct event_base;
typedef struct ld_pool ld_pool;
typedef struct ld_search ld_search;

/* One entry of a search result: its DN and attribute values (names without options, in the
 * order the server sent them). Immutable and reference-counted once built. */
typedef struct {
    unsigned refs;
    char *dn;
    strvec names, values; /* parallel: values.v[i] is a value of names.v[i] */
} ld_entry;

/* ld_entry_ref - take a reference; returns e. */
ld_entry *ld_entry_ref(ld_entry *e);
/* ld_entry_unref - drop a reference (NULL allowed); the last frees the entry. */
void ld_entry_unref(void *e);
/* ld_entry_values - a dir_values_fn (dir/schema.h) over an ld_entry. */
void ld_entry_values(const void *e, const char *name, strvec *out);

/* What a search came to. */
typedef struct {
    sl_result rc;       /* OK: done (entries, maybe none); PERM: the base object does not exist;
                           TEMP: anything else (error says what) */
    bool truncated;     /* OK with more entries than the size limit (sizeLimitExceeded) */
    const char *error;  /* TEMP: why, for the log */
    ld_entry **entries; /* borrowed: take a reference to keep one */
    size_t n;
} ld_answer;

/* ld_search_cb - a search's answer (exactly once, unless it was cancelled). */
typedef void (*ld_search_cb)(void *arg, const ld_answer *a);

/* The pool's figures since it started. */
typedef struct {
    uint64_t sent;            /* searches sent */
    uint64_t timeouts;        /* searches past their deadline */
    uint64_t server_errors;   /* searches the server answered with an error, or lost with their connection */
    uint64_t connects;        /* connections set up */
    uint64_t reconnects;      /* of which after a connection had been lost */
    uint64_t connect_failures;/* attempts that failed on every URI */
    unsigned up, size;        /* connections up now, of size */
} ld_pool_counters;

/* ld_pool_new - a pool for the ldap_* options of opt (copied); attrs (NULL-terminated, copied)
 * are the attributes every search asks for. Nothing is contacted before ld_pool_start. */
ld_pool *ld_pool_new(const sl_options *opt, const char *const *attrs);
/* ld_pool_start - dial every connection; searches may be made from now on. */
void ld_pool_start(ld_pool *p, struct event_base *base);
/* ld_pool_search - search base (scope LDAP_SCOPE_BASE, _ONELEVEL or _SUBTREE) with filter for at
 * most sizelimit entries, answered by cb before deadline_ms (now_mono_ms clock). The handle is
 * valid until cb runs or ld_pool_cancel. */
ld_search *ld_pool_search(ld_pool *p, const char *base, int scope, const char *filter, int sizelimit,
                              int64_t deadline_ms, ld_search_cb cb, void *arg);
/* ld_pool_cancel - forget a search (abandoned at the server if sent); cb will not run. */
void ld_pool_cancel(ld_pool *p, ld_search *s);
/* ld_pool_get_counters - the figures. */
void ld_pool_get_counters(const ld_pool *p, ld_pool_counters *out);
/* ld_pool_free - close every connection and forget every search without answering it; safe from
 * inside a search's callback (the pool then goes when the callback returns). Dial attempts still
 * running finish on their own and discard what they made. */
void ld_pool_free(ld_pool *p);

#endif

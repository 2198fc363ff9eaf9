/*
 * shaping.h - the traffic shaping table (option shaping_file, doc/delivery.md "Traffic
 * shaping"): per destination, how many connections, messages per connection and messages per
 * hour it gets, and the reaction rules that halve a destination's rate or suspend it when a
 * reply says it is overwhelmed. Pure: text in, an immutable table out, no files or clocks; the
 * configuration loader reads the file (conf/conf.c), the scheduler (jobs/sched_shape.c) looks
 * entries and rules up. Built at configuration load and read-only afterwards: any thread.
 *
 * File format, one entry a line ('#' or '!' starts a comment, blank lines ignored):
 *     gmail.com                   connections=5 per_connection=50 per_hour=3600
 *     mx:.protection.outlook.com  connections=10 per_hour=20000 floor=600 ramp=20
 *     .example.net                connections=2
 *     *                           connections=20
 *     on 421 4.7.28                   action=suspend period=15m
 *     on 4xx /rate limit|too many/    action=halve
 * A destination line starts with a domain (exactly that domain), ".suffix" (every domain below
 * it), "*" (every domain without an entry of its own) or "mx:SUFFIX" (every domain whose most
 * preferred MX hosts are SUFFIX or end in ".SUFFIX": one destination for all of them, sharing
 * the limits). A domain, .suffix or * entry gives each domain it covers limits of its own.
 * Keys: connections, per_connection, per_hour (0 or absent: no limit), floor (the lowest
 * per_hour halving goes down to; default 60, never above per_hour), ramp (successful messages
 * per doubling back up; default 10). A reaction line is "on CODE [STATUS] [/REGEX/] action=..":
 * CODE three characters, each a digit or 'x' ("421", "4xx", "45x"); STATUS an enhanced code
 * whose parts may be 'x' ("4.7.28", "4.7.x"); REGEX a case-insensitive POSIX extended regular
 * expression matched against the reply text; action=halve, or action=suspend with period=DURATION
 * (default 15m). The first rule that matches wins.
 */
#ifndef SLUICE_SHAPING_H
#define SLUICE_SHAPING_H
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"

#define SHAPING_DEFAULT_FLOOR 60   /* messages per hour halving never goes below */
#define SHAPING_DEFAULT_RAMP 10    /* successful messages per doubling after a halving */
#define SHAPING_DEFAULT_PERIOD 900 /* seconds of a suspension without period= */

enum shaping_kind { SHAPING_DOMAIN, SHAPING_SUFFIX, SHAPING_ANY, SHAPING_MX };

typedef struct {
    enum shaping_kind kind;
    char *pattern;           /* lower case: "gmail.com", ".example.net", "*", or the MX suffix without "mx:" and its dot */
    unsigned connections;    /* concurrent connections (0: no limit) */
    unsigned per_connection; /* messages per connection (0: no limit) */
    unsigned per_hour;       /* messages per hour, spread evenly (0: no limit) */
    unsigned floor;          /* the lowest per_hour a halving leads to */
    unsigned ramp;           /* successful messages per doubling back up */
    int line;
} shaping_entry;

enum shaping_action { SHAPING_HALVE, SHAPING_SUSPEND };

typedef struct {
    char code[4];            /* "421", "4xx" */
    char *status;            /* "4.7.28", "4.7.x", or NULL: any */
    char *regex_src;         /* the pattern as written, or NULL */
    regex_t regex;
    enum shaping_action action;
    unsigned period;         /* seconds (suspend) */
    int line;
} shaping_rule;

typedef struct shaping_table {
    shaping_entry *v;
    size_t n;
    shaping_rule *rules;
    size_t n_rules;
    bool has_mx;             /* some entry is mx:: the MX hosts of domains are worth remembering */
} shaping_table;

/* shaping_err_cb - called once per malformed line (line numbers from 1). */
typedef void (*shaping_err_cb)(void *arg, int line, const char *msg);

/* shaping_parse - a table from the file's text; every malformed line is reported through err and
 * skipped. Returns a table (possibly empty) that the caller frees with shaping_free. */
shaping_table *shaping_parse(const char *text, shaping_err_cb err, void *arg);
/* shaping_free - free a table (NULL is fine). */
void shaping_free(shaping_table *t);
/*
 * shaping_lookup - the entry for a destination domain whose most preferred MX hosts are mx[0..n)
 * (n 0: not known): exactly the domain, then an mx: entry matching one of the MX hosts (the
 * longest suffix), then the longest ".suffix", then "*"; NULL when none applies.
 */
const shaping_entry *shaping_lookup(const shaping_table *t, const char *domain, const char *const *mx, size_t n);
/* shaping_mx_match - whether MX host name host is e's provider (e is an mx: entry). */
bool shaping_mx_match(const shaping_entry *e, const char *host);
/* shaping_react - the first rule matching a reply (code: "421"; status: "4.7.28" or NULL; text:
 * the reply text), or NULL. */
const shaping_rule *shaping_react(const shaping_table *t, const char *code, const char *status, const char *text);
/* shaping_action_name - "halve" or "suspend". */
const char *shaping_action_name(enum shaping_action a);

#endif

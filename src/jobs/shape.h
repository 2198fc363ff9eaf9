/*
 * shape.h - the traffic shaping state of one destination (doc/delivery.md "Traffic shaping"):
 * connections in use, the even spacing of messages for its per-hour rate, halvings and the
 * ramp back up, suspension, and the messages of the last hour. The limits are a shaping_entry
 * of the configuration (conf/shaping.h), passed in at every call, so a reload applies at once.
 *
 * Pure: time is an argument (milliseconds of a monotonic clock), nothing is logged, nothing is
 * allocated. The scheduler (jobs/sched_shape.c) owns one per destination; unit tests drive it
 * with a fake clock. Loop thread only (the scheduler's).
 *
 * The rate: with an effective rate of R messages per hour, a message may start only 3600/R
 * seconds after the previous one (spread evenly, never in bursts). A halving sets the effective
 * rate to max(floor, base / 2^k) after k halvings, base being per_hour (or, without per_hour,
 * the messages of the last hour, at least twice the floor); every `ramp` successful messages
 * without a new reaction undo one halving (the rate doubles) until none is left. A suspension
 * stops every new message until it ends; the halvings in force stay.
 */
#ifndef SLUICE_SHAPE_H
#define SLUICE_SHAPE_H
#include <stdbool.h>
#include <stdint.h>

#include "conf/shaping.h"

#define SHAPE_MAX_HALVINGS 30

typedef struct {
    int conns;               /* connections (jobs) in use */
    int64_t next_ms;         /* the earliest start of the next message (the rate's spacing) */
    int64_t until_ms;        /* suspended until then (0: not suspended) */
    unsigned level;          /* halvings in force */
    unsigned base;           /* the per-hour rate the halvings divide */
    unsigned successes;      /* successful messages since the level last changed */
    uint32_t minute_n[60];   /* messages started in each of the last 60 minutes... */
    int64_t minute_at[60];   /* ... and which minute each slot counts */
    uint64_t sent;           /* messages started in all */
} shape_state;

typedef enum {
    SHAPE_GO,        /* a message may start now */
    SHAPE_WAIT_CONN, /* not on a new connection: every connection is in use */
    SHAPE_WAIT_TIME  /* not before *at: suspended, or the rate's spacing */
} shape_verdict;

/* shape_rate - the effective messages per hour (0: no limit). */
unsigned shape_rate(const shape_state *st, const shaping_entry *e);
/* shape_check - whether a message may start at now, on a new connection (new_conn) or one already
 * open; for SHAPE_WAIT_TIME, when to look again into *at. */
shape_verdict shape_check(const shape_state *st, const shaping_entry *e, bool new_conn, int64_t now, int64_t *at);
/* shape_sent - a message starts at now: it takes the rate's next slot and counts in the hour. */
void shape_sent(shape_state *st, const shaping_entry *e, int64_t now);
/* shape_hour - messages started in the 60 minutes up to now. */
unsigned shape_hour(const shape_state *st, int64_t now);
/* shape_halve - a reaction halves the rate (not below the floor); false when it was at the floor already. */
bool shape_halve(shape_state *st, const shaping_entry *e, int64_t now);
/* shape_suspend - a reaction suspends the destination for period_s seconds from now (a longer
 * suspension in force stays). */
void shape_suspend(shape_state *st, int64_t now, unsigned period_s);
/* shape_success - a message was delivered: true when that undid a halving (the rate doubled). */
bool shape_success(shape_state *st, const shaping_entry *e);
/* shape_resumed - a suspension that ended by now is cleared: true once, when it does. */
bool shape_resumed(shape_state *st, int64_t now);
/* shape_suspended - suspended at now. */
bool shape_suspended(const shape_state *st, int64_t now);
/* shape_idle - nothing to remember: no connection, suspension or halving, no message in the last hour. */
bool shape_idle(const shape_state *st, int64_t now);
/* shape_mode_name - "suspended", "halved" or "active". */
const char *shape_mode_name(const shape_state *st, int64_t now);

#endif

/* shape.c - the traffic shaping state of one destination (see shape.h). */
#include "jobs/shape.h"

#include <string.h>

#define MINUTE_MS 60000

unsigned shape_rate(const shape_state *st, const shaping_entry *e)
{
    if (!st->level) return e->per_hour;
    unsigned r = st->level >= 32 ? 0 : st->base >> st->level;
    unsigned floor = e->floor ? e->floor : 1;
    if (e->per_hour && floor > e->per_hour) floor = e->per_hour;
    return r < floor ? floor : r;
}

bool shape_suspended(const shape_state *st, int64_t now)
{
    return st->until_ms && st->until_ms > now;
}

shape_verdict shape_check(const shape_state *st, const shaping_entry *e, bool new_conn, int64_t now, int64_t *at)
{
    if (shape_suspended(st, now)) {
        *at = st->until_ms;
        return SHAPE_WAIT_TIME;
    }
    if (shape_rate(st, e) && st->next_ms > now) {
        *at = st->next_ms;
        return SHAPE_WAIT_TIME;
    }
    if (new_conn && e->connections && st->conns >= (int)e->connections) return SHAPE_WAIT_CONN;
    return SHAPE_GO;
}

void shape_sent(shape_state *st, const shaping_entry *e, int64_t now)
{
    unsigned rate = shape_rate(st, e);
    if (rate) {
        int64_t from = st->next_ms > now ? st->next_ms : now;
        st->next_ms = from + 3600000 / rate;
    }
    int64_t minute = now / MINUTE_MS;
    size_t slot = (size_t)(minute % 60);
    if (st->minute_at[slot] != minute) {
        st->minute_at[slot] = minute;
        st->minute_n[slot] = 0;
    }
    st->minute_n[slot]++;
    st->sent++;
}

unsigned shape_hour(const shape_state *st, int64_t now)
{
    int64_t minute = now / MINUTE_MS;
    unsigned n = 0;
    for (size_t i = 0; i < 60; i++)
        if (st->minute_at[i] > minute - 60 && st->minute_at[i] <= minute) n += st->minute_n[i];
    return n;
}

bool shape_halve(shape_state *st, const shaping_entry *e, int64_t now)
{
    unsigned before = shape_rate(st, e);
    if (!st->level) {
        unsigned floor2 = (e->floor ? e->floor : 1) * 2;
        unsigned hour = shape_hour(st, now);
        st->base = e->per_hour ? e->per_hour : hour > floor2 ? hour : floor2;
    }
    if (before && before <= e->floor) return false; /* at the floor already */
    if (st->level >= SHAPE_MAX_HALVINGS) return false;
    st->level++;
    st->successes = 0;
    /* the next message keeps the new spacing from now */
    unsigned rate = shape_rate(st, e);
    if (rate && st->next_ms < now + 3600000 / rate) st->next_ms = now + 3600000 / rate;
    return true;
}

void shape_suspend(shape_state *st, int64_t now, unsigned period_s)
{
    int64_t until = now + (int64_t)period_s * 1000;
    if (until > st->until_ms) st->until_ms = until;
    st->successes = 0;
}

bool shape_success(shape_state *st, const shaping_entry *e)
{
    if (!st->level) return false;
    unsigned ramp = e->ramp ? e->ramp : 1;
    if (++st->successes < ramp) return false;
    st->successes = 0;
    st->level--;
    return true;
}

bool shape_resumed(shape_state *st, int64_t now)
{
    if (!st->until_ms || st->until_ms > now) return false;
    st->until_ms = 0;
    return true;
}

bool shape_idle(const shape_state *st, int64_t now)
{
    return !st->conns && !st->until_ms && !st->level && st->next_ms <= now && !shape_hour(st, now);
}

const char *shape_mode_name(const shape_state *st, int64_t now)
{
    return shape_suspended(st, now) ? "suspended" : st->level ? "halved" : "active";
}

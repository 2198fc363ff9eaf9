/*
 * deadline.c - session deadline and minimum data rate (see deadline.h).
 */
#include "smtp/deadline.h"

void smtp_deadline_init(smtp_deadline *d, const sl_options *opt, int64_t now)
{
    d->session_end = now + (int64_t)opt->session_timeout * 1000;
    d->rate = opt->min_data_rate;
    d->window_ms = (int64_t)opt->min_data_rate_window * 1000;
    d->in_phase = false;
    d->window_start = now;
    d->window_bytes = 0;
}

void smtp_deadline_data(smtp_deadline *d, bool was_data, bool is_data, size_t bytes, int64_t now)
{
    if (!d->in_phase && (was_data || is_data)) { /* the phase starts: a first window with no bytes */
        d->window_start = now;
        d->window_bytes = 0;
    }
    if (was_data || is_data) d->window_bytes += bytes;
    d->in_phase = is_data;
}

enum smtp_deadline_verdict smtp_deadline_check(smtp_deadline *d, int64_t now)
{
    if (now >= d->session_end) return SMTP_DEADLINE_SESSION;
    if (!d->in_phase || d->rate == 0 || now < d->window_start + d->window_ms) return SMTP_DEADLINE_OK;
    /* A late check judges the time that really passed, not just one window's length. */
    uint64_t want = d->rate * (uint64_t)(now - d->window_start) / 1000;
    if (d->window_bytes < want) return SMTP_DEADLINE_SLOW_DATA;
    d->window_start = now;
    d->window_bytes = 0;
    return SMTP_DEADLINE_OK;
}

int64_t smtp_deadline_next(const smtp_deadline *d)
{
    if (d->in_phase && d->rate && d->window_start + d->window_ms < d->session_end)
        return d->window_start + d->window_ms;
    return d->session_end;
}

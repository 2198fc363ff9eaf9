/*
 * deadline.h - the time limits of an SMTP server session that the idle timeout cannot enforce
 * against a client sending one byte just before each idle timeout: an overall session deadline
 * (option.dat session_timeout) and a minimum transfer rate while message content arrives
 * (min_data_rate bytes per second over windows of min_data_rate_window seconds).
 *
 * Pure: the caller passes the time (monotonic milliseconds) and what the session did; nothing
 * here reads a clock or touches a socket. The I/O layer (smtp/listener.c) reports every feed with
 * smtp_deadline_data, runs a timer to smtp_deadline_next and asks smtp_deadline_check when it
 * fires. One deadline belongs to one session, on the loop thread.
 *
 * The rate is measured only while content arrives (the "data phase"): from the 354 to DATA, or
 * from the first BDAT command of a transaction, until the end of the content (a BDAT transaction
 * stays in the phase between its chunks; waiting for our own queue commit is outside it). The
 * phase is cut into consecutive windows of min_data_rate_window seconds, the first starting when
 * the phase starts; at the end of each window the bytes received in it must reach min_data_rate x
 * the window's length. Content that is complete within the first window is never judged (the
 * grace period), and a window in which the client was faster counts for nothing later.
 */
#ifndef SLUICE_SMTP_DEADLINE_H
#define SLUICE_SMTP_DEADLINE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

enum smtp_deadline_verdict {
    SMTP_DEADLINE_OK = 0,
    SMTP_DEADLINE_SESSION,  /* the session is older than session_timeout */
    SMTP_DEADLINE_SLOW_DATA /* a window of the data phase got less than min_data_rate */
};

typedef struct {
    int64_t session_end;  /* when the session must be over (ms) */
    uint64_t rate;        /* min_data_rate, bytes per second; 0: not checked */
    int64_t window_ms;    /* min_data_rate_window */
    bool in_phase;        /* content is arriving */
    int64_t window_start; /* start of the current window (ms) */
    uint64_t window_bytes;/* bytes received in it */
} smtp_deadline;

/* smtp_deadline_init - the limits of opt for a session that starts at now. */
void smtp_deadline_init(smtp_deadline *d, const sl_options *opt, int64_t now);
/* smtp_deadline_data - bytes were consumed by one feed at now; was_data / is_data: whether the
 * session was in the data phase before the feed and is after it. */
void smtp_deadline_data(smtp_deadline *d, bool was_data, bool is_data, size_t bytes, int64_t now);
/* smtp_deadline_check - whether a limit is exceeded at now; a finished window that passed starts
 * the next one. */
enum smtp_deadline_verdict smtp_deadline_check(smtp_deadline *d, int64_t now);
/* smtp_deadline_next - when smtp_deadline_check has something to decide next (ms). */
int64_t smtp_deadline_next(const smtp_deadline *d);

#endif

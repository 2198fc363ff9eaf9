/*
 * log.h - one line per event: "<id> <event> key=value ..." (STYLE.md "Logs").
 * Lines go to stderr with a timestamp prefix (the service manager or a redirection keeps them).
 * Control characters in the formatted line are replaced so that peer-supplied text cannot forge
 * log lines. Thread-safe: a line is written with a single write(2); the level is atomic.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

/* log_set_level - lines above this level are dropped. */
void log_set_level(enum log_level lvl);
/* log_level_parse - "error"|"warn"|"info"|"debug" to a level; -1 if unknown. */
int log_level_parse(const char *s);
/* log_event - write "<id> <event> <formatted key=value text>"; id may be NULL ("-"). */
void log_event(enum log_level lvl, const char *id, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_info(id, ev, ...) log_event(LOG_LVL_INFO, id, ev, __VA_ARGS__)
#define log_warn(id, ev, ...) log_event(LOG_LVL_WARN, id, ev, __VA_ARGS__)
#define log_error(id, ev, ...) log_event(LOG_LVL_ERROR, id, ev, __VA_ARGS__)
#define log_debug(id, ev, ...) log_event(LOG_LVL_DEBUG, id, ev, __VA_ARGS__)

#endif

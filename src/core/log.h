/*
 * log.h - one line per event: "<id> <event> key=value ..." (STYLE.md "Logs").
 * Lines go to stderr with a timestamp prefix (the service manager or a redirection keeps them).
 * Control characters in the formatted line are replaced so that peer-supplied text cannot forge
 * log lines. With log_format=json each line is instead one JSON object with the members ts,
 * level, id, event, session, queue_id and the key=value fields as strings (log_json.c,
 * doc/operations.md). Thread-safe: a line is written with a single write(2); the level and the
 * format are atomic.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdbool.h>

#include "core/util.h"

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };

/* log_set_level - lines above this level are dropped. */
void log_set_level(enum log_level lvl);
/* log_level_parse - "error"|"warn"|"info"|"debug" to a level; -1 if unknown. */
int log_level_parse(const char *s);
/* log_set_format - text (the default) or JSON lines from now on. */
void log_set_format(enum log_format fmt);
/* log_format_parse - "text"|"json" to a format; -1 if unknown. */
int log_format_parse(const char *s);
/* log_is_json - whether lines are JSON now. */
bool log_is_json(void);
/* log_json_line - the JSON line (with its newline) of one event into out: ts and level as given,
 * id NULL for none, kv the formatted key=value text. Pure (log_json.c); exported for tests. */
void log_json_line(strbuf *out, const char *ts, const char *level, const char *id, const char *event, const char *kv);
/* log_event - write "<id> <event> <formatted key=value text>"; id may be NULL ("-"). */
void log_event(enum log_level lvl, const char *id, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_info(id, ev, ...) log_event(LOG_LVL_INFO, id, ev, __VA_ARGS__)
#define log_warn(id, ev, ...) log_event(LOG_LVL_WARN, id, ev, __VA_ARGS__)
#define log_error(id, ev, ...) log_event(LOG_LVL_ERROR, id, ev, __VA_ARGS__)
#define log_debug(id, ev, ...) log_event(LOG_LVL_DEBUG, id, ev, __VA_ARGS__)

#endif

/* log.c - event log lines (see log.h). */
#include "core/log.h"
#include "core/util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Read by every thread that logs, set by the loop at start-up and on reload. */
static _Atomic int current_level = LOG_LVL_INFO;
static _Atomic int current_format = LOG_FORMAT_TEXT;

void log_set_level(enum log_level lvl)
{
    atomic_store_explicit(&current_level, (int)lvl, memory_order_relaxed);
}

int log_level_parse(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++)
        if (str_ieq(s, names[i])) return (int)i;
    return -1;
}

void log_set_format(enum log_format fmt)
{
    atomic_store_explicit(&current_format, (int)fmt, memory_order_relaxed);
}

int log_format_parse(const char *s)
{
    if (str_ieq(s, "text")) return LOG_FORMAT_TEXT;
    if (str_ieq(s, "json")) return LOG_FORMAT_JSON;
    return -1;
}

bool log_is_json(void)
{
    return atomic_load_explicit(&current_format, memory_order_relaxed) == LOG_FORMAT_JSON;
}

/* log_time - "2026-01-02T03:04:05.678Z" into ts. */
static void log_time(char *ts, size_t len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t t = tv.tv_sec;
    gmtime_r(&t, &tm);
    size_t n = strftime(ts, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* neutralise - peer text must never start a new log line or hide characters. */
static void neutralise(strbuf *sb, size_t start)
{
    for (size_t i = start; i < sb->len; i++) {
        unsigned char c = (unsigned char)sb->data[i];
        if (c < 0x20 || c == 0x7f) sb->data[i] = '?';
    }
    while (sb->len > start && sb->data[sb->len - 1] == ' ') sb->len--;
    if (sb->data) sb->data[sb->len] = '\0';
}

void log_event(enum log_level lvl, const char *id, const char *event, const char *fmt, ...)
{
    if ((int)lvl > atomic_load_explicit(&current_level, memory_order_relaxed)) return;
    static const char *lvl_names[] = {"error", "warn", "info", "debug"};
    char ts[40];
    log_time(ts, sizeof ts);
    strbuf kv = {0}, sb = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&kv, fmt, ap);
    va_end(ap);
    neutralise(&kv, 0);
    if (log_is_json()) {
        log_json_line(&sb, ts, lvl_names[lvl], id, event, kv.data ? kv.data : "");
    } else {
        sb_printf(&sb, "%s sluice[%d] %s: %s %s", ts, (int)getpid(), lvl_names[lvl], id ? id : "-", event);
        if (kv.len) sb_printf(&sb, " %s", kv.data);
        sb_putc(&sb, '\n');
    }
    ssize_t w = write(STDERR_FILENO, sb.data, sb.len);
    (void)w;
    sb_free(&kv);
    sb_free(&sb);
}

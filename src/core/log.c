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

void log_event(enum log_level lvl, const char *id, const char *event, const char *fmt, ...)
{
    if ((int)lvl > atomic_load_explicit(&current_level, memory_order_relaxed)) return;
    strbuf sb;
    sb_init(&sb);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t t = tv.tv_sec;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    static const char *lvl_names[] = {"error", "warn", "info", "debug"};
    sb_printf(&sb, "%s.%03dZ sluice[%d] %s: %s %s ", ts, (int)(tv.tv_usec / 1000), (int)getpid(),
              lvl_names[lvl], id ? id : "-", event);
    size_t start = sb.len;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    /* Peer text must never start a new log line or hide characters. */
    for (size_t i = start; i < sb.len; i++) {
        unsigned char c = (unsigned char)sb.data[i];
        if (c < 0x20 || c == 0x7f) sb.data[i] = '?';
    }
    while (sb.len && sb.data[sb.len - 1] == ' ') sb.len--;
    sb_putc(&sb, '\n');
    ssize_t w = write(STDERR_FILENO, sb.data, sb.len);
    (void)w;
    sb_free(&sb);
}

/*
 * chan_option.c - <channel>_option files: per-channel SMTP/LMTP client settings as "KEY=VALUE"
 * lines (keys case-insensitive; timeouts are durations, a plain number being seconds). Every
 * channel starts from the defaults (option.dat's connect_timeout and command_timeout, the fixed
 * values in conf.h), then a "defaults_option" file, then its own file. conf_load finds the files
 * in the configuration directory and hands each one's text here. Called while loading only.
 */
#include "conf/conf.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400u

/* One key: the field it sets, its range, and whether the value is a duration or a plain number. */
typedef struct {
    const char *key;
    size_t offset;
    bool duration;
    uint64_t min, max;
    const char *expect;
} copt_def;

#define OFF(f) offsetof(sl_chan_opts, f)
static const copt_def copt_defs[] = {
    {"CONNECT_TIMEOUT", OFF(connect_timeout), true, 1, 3600, "a duration 1s..1h"},
    {"GREETING_TIMEOUT", OFF(greeting_timeout), true, 1, DAY, "a duration 1s..1d"},
    {"COMMAND_TIMEOUT", OFF(command_timeout), true, 1, DAY, "a duration 1s..1d"},
    {"DATA_TIMEOUT", OFF(data_timeout), true, 1, DAY, "a duration 1s..1d"},
    {"MAX_RCPTS_PER_TRANSACTION", OFF(max_rcpts), false, 1, 100000, "a number 1..100000"},
    {"MAX_MESSAGES_PER_CONNECTION", OFF(max_messages), false, 1, 100000, "a number 1..100000"},
};
#undef OFF

void conf_chan_opts_defaults(const sl_options *opt, sl_chan_opts *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout = opt->connect_timeout;
    o->greeting_timeout = 300;
    o->command_timeout = opt->command_timeout;
    o->data_timeout = 600;
    o->max_rcpts = 100;
    o->max_messages = 100;
}

/* copt_value - value as d's kind within d's range; -1 if it is not. */
static int copt_value(const copt_def *d, const char *value, unsigned *out)
{
    uint64_t n;
    if (d->duration) {
        int64_t secs;
        if (parse_duration(value, &secs) != 0 || secs < (int64_t)d->min || secs > (int64_t)d->max) return -1;
        n = (uint64_t)secs;
    } else if (parse_uint(value, d->min, d->max, &n) != 0) {
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

/* copt_line - one "KEY=VALUE" line; 1 if it was an error (recorded), else 0. */
static int copt_line(const char *file, int line, char *text, sl_chan_opts *o, conf_errors *errs)
{
    char *eq = strchr(text, '=');
    if (!eq) {
        conf_error(errs, file, line, "expected KEY=VALUE");
        return 1;
    }
    *eq = '\0';
    char *key = str_trim(text), *value = str_trim(eq + 1);
    for (size_t i = 0; i < SL_ARRAY_LEN(copt_defs); i++) {
        const copt_def *d = &copt_defs[i];
        if (!str_ieq(key, d->key)) continue;
        unsigned v;
        if (copt_value(d, value, &v) != 0) {
            conf_error(errs, file, line, "%s: bad value '%s' (expected %s)", d->key, value, d->expect);
            return 1;
        }
        *(unsigned *)(void *)((char *)o + d->offset) = v;
        return 0;
    }
    conf_error(errs, file, line, "unknown option '%s'", key);
    return 1;
}

int conf_parse_chan_option(const char *file, const char *text, sl_chan_opts *o, conf_errors *errs)
{
    int nerr = 0, lineno = 0;
    char *copy = xstrdup(text), *cursor = copy, *line;
    while ((line = conf_next_line(&cursor)) != NULL) {
        lineno++;
        if (conf_line_is_comment(line, "!#")) continue;
        char *t = str_trim(line);
        if (*t) nerr += copt_line(file, lineno, t, o, errs);
    }
    free(copy);
    return nerr;
}

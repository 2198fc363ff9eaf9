/*
 * conf.c - loading a configuration directory into one sl_conf (see conf.h): reads option.dat,
 * dispatcher.cnf, sluice.cnf and directory.ldif, runs the per-file parsers (options.c,
 * dispatcher.c, sluice_cnf.c), checks what spans files, and owns the error list and the lookups
 * on a loaded conf. Called at start-up and on SIGHUP from the main thread; lookups are pure reads.
 */
#include "conf/conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/dir.h"

void conf_error(conf_errors *errs, const char *file, int line, const char *fmt, ...)
{
    strbuf sb;
    va_list ap;
    sb_init(&sb);
    if (line > 0) sb_printf(&sb, "%s:%d: ", file, line);
    else sb_printf(&sb, "%s: ", file);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    sv_push_owned(&errs->msgs, sb_steal(&sb));
}

char *conf_next_line(char **cursor)
{
    char *line = *cursor;
    if (!line) return NULL;
    char *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *cursor = nl + 1;
        if (**cursor == '\0') *cursor = NULL;
    } else {
        *cursor = NULL;
        if (*line == '\0') return NULL;
    }
    size_t n = strlen(line);
    if (n && line[n - 1] == '\r') line[n - 1] = '\0';
    return line;
}

bool conf_line_is_comment(const char *line, const char *marks)
{
    while (*line == ' ' || *line == '\t') line++;
    return *line && strchr(marks, *line) != NULL;
}

size_t conf_split_list(const char *s, strvec *out)
{
    size_t count = 0;
    while (*s) {
        while (*s == ',' || *s == ' ' || *s == '\t') s++;
        if (!*s) break;
        size_t n = strcspn(s, ", \t");
        sv_push_owned(out, xstrndup(s, n));
        count++;
        s += n;
    }
    return count;
}

/* read_text - the whole file as a string; NULL with errno set on failure. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    strbuf sb;
    char buf[8192];
    size_t n;
    sb_init(&sb);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_append(&sb, buf, n);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        sb_free(&sb);
        errno = EIO;
        return NULL;
    }
    return sb_steal(&sb);
}

/* load_file - read dir/name; an absent optional file gives NULL without error. */
static char *load_file(const char *path, bool required, conf_errors *errs)
{
    char *text = read_text(path);
    if (text) return text;
    if (errno == ENOENT && !required) return NULL;
    conf_error(errs, path, 0, "cannot read: %s", strerror(errno));
    return NULL;
}

/* join_path - dir + "/" + name, without doubling a trailing slash. */
static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    return xasprintf("%s%s%s", dir, (n && dir[n - 1] == '/') ? "" : "/", name);
}

/* load_options - option.dat, or the defaults when it is absent. */
static void load_options(sl_conf *c, conf_errors *errs)
{
    char *path = join_path(c->dir, "option.dat");
    char *text = load_file(path, false, errs);
    if (text) conf_parse_options(path, text, &c->opt, errs);
    else conf_options_defaults(&c->opt);
    free(text);
    free(path);
}

/* load_required - run parse on a file that must exist. */
static void load_required(sl_conf *c, const char *name, conf_errors *errs,
                          int (*parse)(const char *, const char *, sl_conf *, conf_errors *))
{
    char *path = join_path(c->dir, name);
    char *text = load_file(path, true, errs);
    if (text) parse(path, text, c, errs);
    free(text);
    free(path);
}

/* load_directory - directory.ldif, or an empty directory when it is absent. */
static void load_directory(sl_conf *c, conf_errors *errs)
{
    char *path = join_path(c->dir, "directory.ldif");
    char *text = load_file(path, false, errs);
    c->directory = dir_load_ldif(path, text ? text : "", errs);
    free(text);
    free(path);
}

/* check_service_channels - every service's source channel must be a channel of sluice.cnf. */
static void check_service_channels(sl_conf *c, conf_errors *errs)
{
    char *path = join_path(c->dir, "dispatcher.cnf");
    for (size_t i = 0; i < c->n_services; i++) {
        const sl_service *s = &c->services[i];
        if (!conf_channel_by_name(c, s->channel))
            conf_error(errs, path, s->line, "service '%s': channel '%s' is not defined in sluice.cnf",
                       s->name, s->channel);
    }
    free(path);
}

sl_conf *conf_load(const char *dir, conf_errors *errs)
{
    size_t before = errs->msgs.n;
    sl_conf *c = xcalloc(1, sizeof *c);
    c->dir = xstrdup(dir);
    load_options(c, errs);
    load_required(c, "dispatcher.cnf", errs, conf_parse_dispatcher);
    size_t before_cnf = errs->msgs.n;
    load_required(c, "sluice.cnf", errs, conf_parse_sluice_cnf);
    /* channel names are only meaningful once sluice.cnf parsed cleanly */
    if (errs->msgs.n == before_cnf) check_service_channels(c, errs);
    load_directory(c, errs);
    if (errs->msgs.n != before) {
        conf_free(c);
        return NULL;
    }
    return c;
}

void conf_free(sl_conf *c)
{
    if (!c) return;
    conf_options_free(&c->opt);
    conf_dispatcher_free(c);
    conf_sluice_cnf_free(c);
    if (c->directory) dir_free(c->directory);
    free(c->dir);
    free(c);
}

const sl_channel *conf_channel_by_name(const sl_conf *c, const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < c->n_channels; i++)
        if (str_ieq(c->channels[i].name, name)) return &c->channels[i];
    return NULL;
}

const sl_channel *conf_channel_by_host(const sl_conf *c, const char *host)
{
    if (!host) return NULL;
    for (size_t i = 0; i < c->n_channels; i++)
        if (sv_contains_ci(&c->channels[i].hosts, host)) return &c->channels[i];
    return NULL;
}

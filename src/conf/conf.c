/*
 * conf.c - loading a configuration directory into one sl_conf (see conf.h): reads option.dat,
 * dispatcher.cnf, sluice.cnf, job_controller.cnf, the <channel>_option files, directory.ldif and
 * tls_policy_file (tls_policy_load.c), shaping_file (shaping_load.c),
 * runs the per-file parsers (options.c, dispatcher.c, sluice_cnf.c, job_controller.c,
 * chan_option.c), checks what spans files (service channels, channel pools, option files naming
 * channels), and owns the error list and the lookups on a loaded conf. Called at start-up and on
 * SIGHUP from the main thread; lookups are pure reads.
 */
#include "conf/conf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void conf_verror(conf_errors *errs, const char *file, int line, const char *fmt, va_list ap)
{
    strbuf sb;
    sb_init(&sb);
    if (line > 0) sb_printf(&sb, "%s:%d: ", file, line);
    else sb_printf(&sb, "%s: ", file);
    sb_vprintf(&sb, fmt, ap);
    sv_push_owned(&errs->msgs, sb_steal(&sb));
}

void conf_error(conf_errors *errs, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_verror(errs, file, line, fmt, ap);
    va_end(ap);
}

void conf_file_line_error(void *arg, int line, const char *msg)
{
    conf_file_errs *fe = arg;
    conf_error(fe->errs, fe->path, line, "%s", msg);
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


int conf_section(char *text, char **kind, char **name)
{
    size_t n = strlen(text);
    char *eq = strchr(text, '=');
    if (n < 3 || text[0] != '[' || text[n - 1] != ']' || !eq) return -1;
    text[n - 1] = '\0';
    *eq = '\0';
    *kind = str_trim(text + 1);
    *name = str_trim(eq + 1);
    return 0;
}

char *conf_file_read(const char *path, bool required, conf_errors *errs)
{
    char *text = file_read_text(path);
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
    char *text = conf_file_read(path, false, errs);
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
    char *text = conf_file_read(path, true, errs);
    if (text) parse(path, text, c, errs);
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

/* load_job_controller - job_controller.cnf, or the single DEFAULT pool when it is absent. */
static void load_job_controller(sl_conf *c, conf_errors *errs)
{
    char *path = join_path(c->dir, "job_controller.cnf");
    char *text = conf_file_read(path, false, errs);
    conf_parse_job_controller(path, text ? text : "", c, errs);
    free(text);
    free(path);
}

/* resolve_channel_pools - every channel's pool must be declared; none named means the first pool.
 * The channel keeps the pool's name as declared, so the job controller may compare with strcmp.
 * A pool inherited from "defaults" is reported once, on the defaults line. */
static void resolve_channel_pools(sl_conf *c, conf_errors *errs)
{
    char *path = join_path(c->dir, "sluice.cnf");
    const sl_channel *d = c->n_channels && str_ieq(c->channels[0].name, "defaults") ? &c->channels[0] : NULL;
    const char *dpool = d && d->pool ? d->pool : NULL;
    for (size_t i = 0; i < c->n_channels; i++) {
        sl_channel *ch = &c->channels[i];
        const sl_pool *pl = ch->pool ? conf_pool_by_name(c, ch->pool) : &c->pools[0];
        if (!pl) {
            if (!d || ch == d || !str_ieq(ch->pool, dpool))
                conf_error(errs, path, ch->line, "channel '%s': unknown pool '%s' (not declared in job_controller.cnf)",
                           ch->name, ch->pool);
            continue;
        }
        free(ch->pool);
        ch->pool = xstrdup(pl->name);
    }
    free(path);
}

/* is_option_file - scandir filter: "<name>_option" (suffix case-insensitive), not hidden. */
static int is_option_file(const struct dirent *e)
{
    static const char suffix[] = "_option";
    size_t n = strlen(e->d_name), k = sizeof suffix - 1;
    return e->d_name[0] != '.' && n > k && str_ieq(e->d_name + n - k, suffix);
}

/* apply_option_file - parse dir/name over o. */
static void apply_option_file(sl_conf *c, const char *name, sl_chan_opts *o, conf_errors *errs)
{
    char *path = join_path(c->dir, name);
    char *text = conf_file_read(path, true, errs);
    if (text) conf_parse_chan_option(path, text, o, errs);
    free(text);
    free(path);
}

/* load_chan_options - fill every channel's copts: defaults, then defaults_option, then <channel>_option.
 * An option file whose name is no channel is an error (a misspelt name would otherwise do nothing). */
static void load_chan_options(sl_conf *c, conf_errors *errs)
{
    struct dirent **names = NULL;
    int n = scandir(c->dir, &names, is_option_file, alphasort);
    if (n < 0) {
        conf_error(errs, c->dir, 0, "cannot list the directory: %s", strerror(errno));
        n = 0;
    }
    sl_chan_opts base;
    conf_chan_opts_defaults(&c->opt, &base);
    for (int i = 0; i < n; i++)
        if (str_ieq(names[i]->d_name, "defaults_option")) apply_option_file(c, names[i]->d_name, &base, errs);
    for (size_t i = 0; i < c->n_channels; i++) c->channels[i].copts = base;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (str_ieq(name, "defaults_option")) continue;
        char *chname = xstrndup(name, strlen(name) - strlen("_option"));
        sl_channel *ch = (sl_channel *)conf_channel_by_name(c, chname);
        if (ch) {
            apply_option_file(c, name, &ch->copts, errs);
        } else {
            char *path = join_path(c->dir, name);
            conf_error(errs, path, 0, "option file for channel '%s', which sluice.cnf does not define", chname);
            free(path);
        }
        free(chname);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
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
    bool cnf_ok = errs->msgs.n == before_cnf;
    if (cnf_ok) check_service_channels(c, errs);
    size_t before_jc = errs->msgs.n;
    load_job_controller(c, errs);
    if (cnf_ok && errs->msgs.n == before_jc) resolve_channel_pools(c, errs);
    if (cnf_ok) load_chan_options(c, errs);
    static const char *tmpl_files[3] = {"dsn_failed.txt", "dsn_delayed.txt", "dsn_success.txt"};
    for (int i = 0; i < 3; i++) {
        char *path = join_path(c->dir, tmpl_files[i]);
        c->dsn_templates[i] = conf_file_read(path, false, errs);
        free(path);
    }
    if (c->opt.sieve_filter) { /* relative to the configuration directory */
        char *path = c->opt.sieve_filter[0] == '/' ? xstrdup(c->opt.sieve_filter) : join_path(c->dir, c->opt.sieve_filter);
        c->sieve_filter_text = conf_file_read(path, true, errs);
        free(path);
    }
    conf_load_tls_policy(c, errs);
    conf_load_shaping(c, errs);
    conf_load_tls_sni(c, errs);
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
    conf_job_controller_free(c);
    for (int i = 0; i < 3; i++) free(c->dsn_templates[i]);
    free(c->sieve_filter_text);
    conf_free_tls_policy(c);
    conf_free_shaping(c);
    conf_free_tls_sni(c);
    if (c->mappings && c->mappings_free) c->mappings_free(c->mappings);
    if (c->dkim_keys && c->dkim_keys_free) c->dkim_keys_free(c->dkim_keys);
    if (c->dmarc_psl && c->dmarc_psl_free) c->dmarc_psl_free(c->dmarc_psl);
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

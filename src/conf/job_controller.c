/*
 * job_controller.c - job_controller.cnf: the job controller's pools. Each "[POOL=NAME]" section
 * declares a pool and its job_limit (simultaneous delivery jobs shared by every channel of the
 * pool, 1..10000, default 10). The first pool is the default pool of channels that name none; a
 * file that is absent or declares no pool gives one pool DEFAULT with job_limit 10. Whether the
 * pools channels name exist is checked by conf_load once sluice.cnf is read. Called while loading
 * a configuration only.
 */
#include "conf/conf.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_POOL "DEFAULT"
#define DEFAULT_JOB_LIMIT 10
#define MAX_JOB_LIMIT 10000

/* Parser state: the section being read; cur indexes c->pools, or -1 for a bad or duplicate section. */
typedef struct {
    const char *file;
    sl_conf *c;
    conf_errors *errs;
    bool in_section;
    long cur;
    int nerr;
} jc_parser;

/* jc_error - record an error at line and count it. */
static void jc_error(jc_parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void jc_error(jc_parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_verror(p->errs, p->file, line, fmt, ap);
    va_end(ap);
    p->nerr++;
}

void conf_job_controller_free(sl_conf *c)
{
    for (size_t i = 0; i < c->n_pools; i++) free(c->pools[i].name);
    free(c->pools);
    c->pools = NULL;
    c->n_pools = 0;
}

const sl_pool *conf_pool_by_name(const sl_conf *c, const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < c->n_pools; i++)
        if (str_ieq(c->pools[i].name, name)) return &c->pools[i];
    return NULL;
}

/* pool_add - append a pool with the default job_limit; returns its index. */
static long pool_add(sl_conf *c, const char *name, int line)
{
    c->pools = xrealloc(c->pools, (c->n_pools + 1) * sizeof *c->pools);
    sl_pool *pl = &c->pools[c->n_pools];
    pl->name = xstrdup(name);
    pl->job_limit = DEFAULT_JOB_LIMIT;
    pl->line = line;
    return (long)c->n_pools++;
}

/* section_open - "[POOL=NAME]"; a bad or duplicate header still opens a section so its keys are checked. */
static void section_open(jc_parser *p, int line, char *text)
{
    p->in_section = true;
    p->cur = -1;
    char *kind, *name;
    if (conf_section(text, &kind, &name) < 0) {
        jc_error(p, line, "malformed section header '%s' (expected [POOL=NAME])", text);
        return;
    }
    if (!str_ieq(kind, "POOL")) {
        jc_error(p, line, "unknown section '[%s=...]' (expected [POOL=NAME])", kind);
        return;
    }
    if (!*name || strpbrk(name, " \t[]=\"/")) {
        jc_error(p, line, "bad pool name '%s'", name);
        return;
    }
    const sl_pool *old = conf_pool_by_name(p->c, name);
    if (old) {
        jc_error(p, line, "duplicate pool '%s' (first at line %d)", name, old->line);
        return;
    }
    p->cur = pool_add(p->c, name, line);
}

/* parse_key_line - "key=value" inside a section. */
static void parse_key_line(jc_parser *p, int line, char *text)
{
    char *eq = strchr(text, '=');
    if (!eq) {
        jc_error(p, line, "expected key=value or [POOL=NAME]");
        return;
    }
    *eq = '\0';
    char *key = str_trim(text), *value = str_trim(eq + 1);
    if (!p->in_section) {
        jc_error(p, line, "'%s' outside a [POOL=NAME] section", key);
        return;
    }
    if (!str_ieq(key, "job_limit")) {
        jc_error(p, line, "unknown key '%s'", key);
        return;
    }
    uint64_t v;
    if (parse_uint(value, 1, MAX_JOB_LIMIT, &v) != 0) {
        jc_error(p, line, "job_limit: bad value '%s' (expected 1..%d)", value, MAX_JOB_LIMIT);
        return;
    }
    if (p->cur >= 0) p->c->pools[p->cur].job_limit = (unsigned)v;
}

int conf_parse_job_controller(const char *file, const char *text, sl_conf *c, conf_errors *errs)
{
    jc_parser p;
    memset(&p, 0, sizeof p);
    p.file = file;
    p.c = c;
    p.errs = errs;
    p.cur = -1;
    char *copy = xstrdup(text), *cursor = copy, *line;
    int lineno = 0;
    while ((line = conf_next_line(&cursor)) != NULL) {
        lineno++;
        if (conf_line_is_comment(line, "!#")) continue;
        char *t = str_trim(line);
        if (!*t) continue;
        if (*t == '[') section_open(&p, lineno, t);
        else parse_key_line(&p, lineno, t);
    }
    if (c->n_pools == 0) pool_add(c, DEFAULT_POOL, 0);
    free(copy);
    return p.nerr;
}

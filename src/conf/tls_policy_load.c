/*
 * tls_policy_load.c - reading tls_policy_file (option.dat) into the conf's policy table
 * (core/tls_policy.h holds the format and the parser). Called by conf_load on the main thread.
 */
#include "conf/conf.h"
#include "core/tls_policy.h"

#include <stdlib.h>

struct load_ctx {
    conf_errors *errs;
    const char *path;
};

/* on_error - a malformed line of the file becomes a "file:line: message" error. */
static void on_error(void *arg, int line, const char *msg)
{
    struct load_ctx *lc = arg;
    conf_error(lc->errs, lc->path, line, "%s", msg);
}

/* level_implemented - whether this build can apply level (MTA-STS is not built yet). */
static bool level_implemented(enum tls_level l)
{
    return l != TLS_LEVEL_STS;
}

void conf_load_tls_policy(sl_conf *c, conf_errors *errs)
{
    if (!c->opt.tls_policy_file) return;
    char *text = conf_file_read(c->opt.tls_policy_file, true, errs);
    if (!text) return;
    struct load_ctx lc = {errs, c->opt.tls_policy_file};
    c->tls_policy = tls_policy_parse(text, on_error, &lc);
    for (size_t i = 0; i < c->tls_policy->n; i++) {
        const tls_policy_entry *e = &c->tls_policy->v[i];
        if (!level_implemented(e->level))
            conf_error(errs, c->opt.tls_policy_file, e->line, "%s: level %s is not implemented in this version (doc/tls.md)",
                       e->pattern, tls_level_name(e->level));
    }
    free(text);
}

void conf_free_tls_policy(sl_conf *c)
{
    tls_policy_free(c->tls_policy);
    c->tls_policy = NULL;
}

/*
 * shaping_load.c - reading shaping_file (option.dat) into the conf's shaping table
 * (conf/shaping.h holds the format and the parser). Called by conf_load on the main thread.
 */
#include "conf/conf.h"
#include "conf/shaping.h"

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

void conf_load_shaping(sl_conf *c, conf_errors *errs)
{
    if (!c->opt.shaping_file) return;
    char *text = conf_file_read(c->opt.shaping_file, true, errs);
    if (!text) return;
    struct load_ctx lc = {errs, c->opt.shaping_file};
    c->shaping = shaping_parse(text, on_error, &lc);
    free(text);
}

void conf_free_shaping(sl_conf *c)
{
    shaping_free(c->shaping);
    c->shaping = NULL;
}

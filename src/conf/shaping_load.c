/*
 * shaping_load.c - reading shaping_file (option.dat) into the conf's shaping table
 * (conf/shaping.h holds the format and the parser). Called by conf_load on the main thread.
 */
#include "conf/conf.h"
#include "conf/shaping.h"

#include <stdlib.h>

void conf_load_shaping(sl_conf *c, conf_errors *errs)
{
    if (!c->opt.shaping_file) return;
    char *text = conf_file_read(c->opt.shaping_file, true, errs);
    if (!text) return;
    conf_file_errs lc = {errs, c->opt.shaping_file};
    c->shaping = shaping_parse(text, conf_file_line_error, &lc);
    free(text);
}

void conf_free_shaping(sl_conf *c)
{
    shaping_free(c->shaping);
    c->shaping = NULL;
}

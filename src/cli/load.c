/*
 * load.c - a configuration directory loaded whole (see load.h).
 */
#include "cli/load.h"

#include <stdlib.h>

bool load_all(const char *confdir, conf_errors *errs, sl_conf **conf, sl_dir **dir)
{
    *conf = conf_load(confdir, errs);
    char *path = xasprintf("%s/directory.ldif", confdir);
    *dir = dir_open_embedded(path, errs);
    free(path);
    if (*conf && *dir) return true;
    conf_free(*conf);
    dir_unref(*dir);
    *conf = NULL;
    *dir = NULL;
    return false;
}

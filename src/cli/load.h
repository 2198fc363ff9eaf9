/*
 * load.h - loading everything a configuration directory holds: the configuration proper
 * (conf_load) and the directory behind it (dir/dir.h, from directory.ldif). Start-up, SIGHUP
 * and `sluice check`; main thread only.
 */
#ifndef SLUICE_CLI_LOAD_H
#define SLUICE_CLI_LOAD_H
#include <stdbool.h>

#include "conf/conf.h"
#include "dir/dir.h"

/* load_all - the configuration and directory of confdir; false (nothing returned) when either has
 * errors, which are added to errs as "file:line: message". */
bool load_all(const char *confdir, conf_errors *errs, sl_conf **conf, sl_dir **dir);

#endif

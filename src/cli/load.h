/*
 * load.h - loading everything a configuration directory holds: the configuration proper
 * (conf_load), the checks and tables of the layers above conf (rewrite templates, the mappings
 * file) and the directory behind it (dir/dir.h: directory.ldif, or LDAP). Start-up, SIGHUP and the
 * commands; main thread only.
 */
#ifndef SLUICE_CLI_LOAD_H
#define SLUICE_CLI_LOAD_H
#include <stdbool.h>

#include "conf/conf.h"
#include "dir/dir.h"

/* load_conf - conf_load, the rule templates checked by the rewrite engine, and the mappings
 * file attached; NULL with errs filled on any error. Caller frees with conf_free. */
sl_conf *load_conf(const char *confdir, conf_errors *errs);
/* load_all - the configuration and directory of confdir; false (nothing returned) when either has
 * errors, which are added to errs as "file:line: message". The directory is the LDAP backend when
 * option.dat sets ldap_uri (contacted only once dir_attach gives it the daemon's loop: `sluice
 * check` never connects), else the embedded one from directory.ldif. */
bool load_all(const char *confdir, conf_errors *errs, sl_conf **conf, sl_dir **dir);

#endif

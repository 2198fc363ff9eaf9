/*
 * tls_policy_load.c - reading tls_policy_file (option.dat) into the conf's policy table
 * (core/tls_policy.h holds the format and the parser). Called by conf_load on the main thread.
 */
#include "conf/conf.h"
#include "core/tls_policy.h"

#include <stdlib.h>

void conf_load_tls_policy(sl_conf *c, conf_errors *errs)
{
    if (!c->opt.tls_policy_file) return;
    char *text = conf_file_read(c->opt.tls_policy_file, true, errs);
    if (!text) return;
    conf_file_errs lc = {errs, c->opt.tls_policy_file};
    c->tls_policy = tls_policy_parse(text, conf_file_line_error, &lc);
    free(text);
}

void conf_free_tls_policy(sl_conf *c)
{
    tls_policy_free(c->tls_policy);
    c->tls_policy = NULL;
}

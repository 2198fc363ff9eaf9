/*
 * tls_sni_load.c - reading tls_sni_file (option.dat) into the conf's table of the server's
 * certificates by name (core/tls_sni.h holds the format and the parser). Called by conf_load on
 * the main thread; the certificate files are read when the server context is built
 * (cli/daemon.c at start and reload, `sluice check`).
 */
#include "conf/conf.h"
#include "core/tls_sni.h"

#include <stdlib.h>

void conf_load_tls_sni(sl_conf *c, conf_errors *errs)
{
    if (!c->opt.tls_sni_file) return;
    if (!c->opt.tls_certificate)
        conf_error(errs, c->opt.tls_sni_file, 0, "tls_sni_file needs tls_certificate (the certificate for clients "
                                                  "that send no name or one without an entry)");
    char *text = conf_file_read(c->opt.tls_sni_file, true, errs);
    if (!text) return;
    conf_file_errs lc = {errs, c->opt.tls_sni_file};
    c->tls_sni = tls_sni_parse(text, c->dir, conf_file_line_error, &lc);
    free(text);
}

void conf_free_tls_sni(sl_conf *c)
{
    tls_sni_free(c->tls_sni);
    c->tls_sni = NULL;
}

/*
 * load.c - a configuration directory loaded whole (see load.h).
 */
#include "cli/load.h"
#include "dkim/dkim_keys.h"
#include "dkim/dmarc.h"
#include "rewrite/mapping.h"
#include "rewrite/rewrite.h"

#include <stdlib.h>
#include <string.h>

/* path_in - dir + "/" + name, without doubling a trailing slash (as conf_load names files). */
static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    return xasprintf("%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

sl_conf *load_conf(const char *confdir, conf_errors *errs)
{
    sl_conf *c = conf_load(confdir, errs);
    if (!c) return NULL;
    size_t before = errs->msgs.n;
    char *cnf = path_in(confdir, "sluice.cnf");
    rewrite_rules_check(c, cnf, errs);
    free(cnf);
    char *mpath = path_in(confdir, "mappings");
    char *mtext = conf_file_read(mpath, false, errs);
    if (mtext) {
        c->mappings = mappings_parse(mpath, mtext, confdir, errs);
        c->mappings_free = mappings_free;
    }
    free(mtext);
    free(mpath);
    if (c->opt.dkim_keys_file) { /* every key read now, never per message */
        c->dkim_keys = dkim_keys_load(c->opt.dkim_keys_file, errs);
        c->dkim_keys_free = dkim_keys_free;
    }
    if (c->opt.dmarc_check) { /* organizational domains (RFC 7489 §3.2) */
        c->dmarc_psl = dmarc_psl_load(c->opt.dmarc_psl_file ? c->opt.dmarc_psl_file
                                                            : "/usr/share/publicsuffix/public_suffix_list.dat", errs);
        c->dmarc_psl_free = dmarc_psl_free;
    }
    if (c->opt.dkim_sign != DKIM_SIGN_NO && !c->opt.dkim_keys_file) {
        char *opath = path_in(confdir, "option.dat");
        conf_error(errs, opath, 0, "dkim_sign needs dkim_keys_file");
        free(opath);
    }
    if (errs->msgs.n == before) return c;
    conf_free(c);
    return NULL;
}

/* load_directory - the LDAP backend when option.dat has ldap_uri (not connected yet: the daemon
 * attaches it to its loop), else directory.ldif; both read the ldap_* attribute names. Without a
 * valid configuration the LDIF is still checked, so one run reports every error. */
static sl_dir *load_directory(const char *confdir, const sl_conf *c, conf_errors *errs)
{
    if (c && c->opt.ldap_uris.n) return dir_open_ldap(&c->opt, errs);
    char *path = path_in(confdir, "directory.ldif");
    sl_dir *d = c ? dir_open_embedded_opts(path, &c->opt, errs) : dir_open_embedded(path, errs);
    free(path);
    return d;
}

bool load_all(const char *confdir, conf_errors *errs, sl_conf **conf, sl_dir **dir)
{
    *conf = load_conf(confdir, errs);
    *dir = load_directory(confdir, *conf, errs);
    if (*conf && *dir) return true;
    conf_free(*conf);
    dir_unref(*dir);
    *conf = NULL;
    *dir = NULL;
    return false;
}

/*
 * embedded_backend.c - the embedded LDIF directory behind the directory interface: every answer
 * is given before the lookup returns (the data is in memory), copied for the caller.
 */
#include "dir/dir.h"
#include "dir/embedded.h"

#include <stdlib.h>

static void emb_domain(void *be, const char *domain, dir_domain_cb cb, void *arg)
{
    cb(arg, embedded_domain_is_local(be, domain) ? SL_OK : SL_PERM);
}

static void emb_expand(void *be, const char *addr, dir_expand_cb cb, void *arg)
{
    strvec out = {0};
    char why[256] = "";
    sl_result rc = embedded_expand(be, addr, &out, why, sizeof why);
    cb(arg, rc, out, why);
}

static void emb_user(void *be, const char *addr, dir_user_cb cb, void *arg)
{
    const dir_entry *e = embedded_lookup(be, addr);
    dir_user u = {0};
    if (e) {
        u.mail = xstrdup(e->mail);
        u.status = xstrdup(e->status);
        u.password = xstrdup(e->password);
        u.is_group = e->kind == DIR_GROUP;
    }
    cb(arg, e ? SL_OK : SL_PERM, &u);
    if (!e) dir_user_free(&u);
}

static void emb_stats(void *be, size_t *domains, size_t *users)
{
    *domains = embedded_domain_count(be);
    *users = embedded_user_count(be);
}

static void emb_free(void *be)
{
    embedded_free(be);
}

static const dir_backend embedded_ops = {"embedded", emb_domain, emb_expand, emb_user, emb_stats, emb_free};

sl_dir *dir_open_embedded(const char *path, conf_errors *errs)
{
    size_t before = errs->msgs.n;
    char *text = conf_file_read(path, false, errs);
    embedded_dir *e = errs->msgs.n == before ? embedded_load_ldif(path, text ? text : "", errs) : NULL;
    free(text);
    return e ? dir_new(&embedded_ops, e) : NULL;
}

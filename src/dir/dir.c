/*
 * dir.c - the directory interface (see dir.h): reference counting and dispatch to the backend.
 */
#include "dir/dir.h"

#include <stdlib.h>

struct sl_dir {
    const dir_backend *ops;
    void *be;
    unsigned refs;
};

sl_dir *dir_new(const dir_backend *ops, void *be)
{
    sl_dir *d = xcalloc(1, sizeof *d);
    d->ops = ops;
    d->be = be;
    d->refs = 1;
    return d;
}

sl_dir *dir_ref(sl_dir *d)
{
    d->refs++;
    return d;
}

void dir_unref(sl_dir *d)
{
    if (!d || --d->refs > 0) return;
    d->ops->free(d->be);
    free(d);
}

void dir_domain(sl_dir *d, const char *domain, dir_domain_cb cb, void *arg)
{
    d->ops->domain(d->be, domain, cb, arg);
}

void dir_expand(sl_dir *d, const char *addr, dir_expand_cb cb, void *arg)
{
    d->ops->expand(d->be, addr, cb, arg);
}

void dir_user_lookup(sl_dir *d, const char *addr, dir_user_cb cb, void *arg)
{
    d->ops->user(d->be, addr, cb, arg);
}

void dir_user_free(dir_user *u)
{
    if (!u) return;
    free(u->mail);
    free(u->status);
    free(u->password);
    u->mail = u->status = u->password = NULL;
}

const char *dir_backend_name(const sl_dir *d)
{
    return d->ops->name;
}

void dir_stats(const sl_dir *d, size_t *domains, size_t *users)
{
    d->ops->stats(d->be, domains, users);
}

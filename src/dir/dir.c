/*
 * dir.c - the directory interface (see dir.h): reference counting and dispatch to the backend.
 */
#include "dir/dir.h"
#include "dir/ldap_url.h"

#include <stdlib.h>
#include <string.h>

struct sl_dir {
    const dir_backend *ops;
    const dir_backend_extra *extra; /* NULL: none */
    void *be;
    unsigned refs;
};

sl_dir *dir_new(const dir_backend *ops, void *be)
{
    return dir_new_extra(ops, NULL, be);
}

sl_dir *dir_new_extra(const dir_backend *ops, const dir_backend_extra *extra, void *be)
{
    sl_dir *d = xcalloc(1, sizeof *d);
    d->ops = ops;
    d->extra = extra;
    d->be = be;
    d->refs = 1;
    return d;
}

void dir_url_match(sl_dir *d, const char *url, const dir_who *who, dir_match_cb cb, void *arg)
{
    char err[200];
    ld_url u;
    if (ld_url_parse(url, &u, err, sizeof err) < 0) {
        char *why = xasprintf("malformed LDAP URL: %s", err);
        cb(arg, SL_TEMP, why);
        free(why);
        return;
    }
    if (!d->extra || !d->extra->url_match) {
        ld_url_free(&u);
        cb(arg, SL_TEMP, "this directory backend cannot evaluate LDAP URLs");
        return;
    }
    d->extra->url_match(d->be, &u, who, cb, arg);
    ld_url_free(&u);
}

void dir_attach(sl_dir *d, struct event_base *base)
{
    if (d->extra && d->extra->attach) d->extra->attach(d->be, base);
}

void dir_counters(const sl_dir *d, strbuf *out)
{
    if (d->extra && d->extra->counters) d->extra->counters(d->be, out);
}

void dir_notes(const sl_dir *d, strvec *out)
{
    if (d->extra && d->extra->notes) d->extra->notes(d->be, out);
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

void dir_lookup(sl_dir *d, const char *addr, dir_entry_cb cb, void *arg)
{
    d->ops->lookup(d->be, addr, cb, arg);
}

void dir_domain_info_free(dir_domain_info *i)
{
    if (!i) return;
    free(i->name);
    free(i->status[0]);
    free(i->status[1]);
    for (size_t k = 0; k < DIR_OPTINS; k++) free(i->optin[k]);
    memset(i, 0, sizeof *i);
}

void dir_entry_free(dir_entry *e)
{
    if (!e) return;
    free(e->dn);
    free(e->mail);
    free(e->status[0]);
    free(e->status[1]);
    free(e->password);
    free(e->reject_text);
    free(e->submit_channel);
    sv_free(&e->allowed_broadcasters);
    sv_free(&e->disallowed_broadcasters);
    sv_free(&e->allowed_domains);
    sv_free(&e->disallowed_domains);
    free(e->broadcaster_policy);
    sv_free(&e->moderators);
    free(e->reject_action);
    for (size_t i = 0; i < DIR_OPTINS; i++) free(e->optin[i]);
    free(e->sieve);
    memset(e, 0, sizeof *e);
}

const char *dir_backend_name(const sl_dir *d)
{
    return d->ops->name;
}

void dir_stats(const sl_dir *d, size_t *domains, size_t *users)
{
    d->ops->stats(d->be, domains, users);
}

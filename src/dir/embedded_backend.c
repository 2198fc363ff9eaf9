/*
 * embedded_backend.c - the embedded LDIF directory behind the directory interface: every answer
 * is given before the lookup returns (the data is in memory), copied for the caller; entries are
 * mapped to dir_entry / dir_domain_info by the shared schema (dir/schema.h), as LDAP's are.
 */
#include "dir/dir.h"
#include "dir/embedded.h"
#include "dir/ldap_url.h"
#include "dir/schema.h"

#include <stdlib.h>

typedef struct {
    embedded_dir *d;
    dir_schema schema;
} emb_backend;

/* One entry as a source of attribute values for the schema. */
typedef struct {
    const embedded_dir *d;
    const emb_entry *e;
} emb_src;

static void emb_values(const void *src, const char *name, strvec *out)
{
    const emb_src *s = src;
    embedded_values(s->d, s->e, name, out);
}

static void emb_domain(void *be, const char *domain, dir_domain_cb cb, void *arg)
{
    emb_backend *b = be;
    const emb_entry *e = embedded_domain(b->d, domain);
    if (!e) {
        cb(arg, SL_PERM, NULL);
        return;
    }
    emb_src src = {b->d, e};
    dir_domain_info info;
    dir_domain_fill(&b->schema, emb_values, &src, e->domain, &info);
    cb(arg, SL_OK, &info);
}

static void emb_expand(void *be, const char *addr, dir_expand_cb cb, void *arg)
{
    emb_backend *b = be;
    strvec out = {0};
    char why[256] = "";
    sl_result rc = embedded_expand_schema(b->d, &b->schema, addr, &out, why, sizeof why);
    cb(arg, rc, out, why);
}

static void emb_lookup(void *be, const char *addr, dir_entry_cb cb, void *arg)
{
    emb_backend *b = be;
    const emb_entry *e = embedded_lookup(b->d, addr);
    if (!e) {
        cb(arg, SL_PERM, NULL);
        return;
    }
    dir_entry out = {0};
    out.dn = xstrdup(e->dn);
    out.mail = xstrdup(e->mail);
    out.password = xstrdup(e->password);
    emb_src src = {b->d, e};
    dir_entry_fill(&b->schema, emb_values, &src, e->kind == EMB_GROUP, &out);
    cb(arg, SL_OK, &out);
}

static void emb_stats(void *be, size_t *domains, size_t *users)
{
    emb_backend *b = be;
    *domains = embedded_domain_count(b->d);
    *users = embedded_user_count(b->d);
}

static void emb_free(void *be)
{
    emb_backend *b = be;
    embedded_free(b->d);
    dir_schema_free(&b->schema);
    free(b);
}

static void emb_notes(void *be, strvec *out)
{
    emb_backend *b = be;
    embedded_notes(b->d, out);
}

/* emb_url_match - dir_url_match over the LDIF, answered before returning. */
static void emb_url_match(void *be, const ld_url *u, const dir_who *who, dir_match_cb cb, void *arg)
{
    emb_backend *b = be;
    char why[300] = "";
    strvec none = {0};
    sl_result rc = embedded_url_match(b->d, u, who->addrs ? who->addrs : &none, who->dn, why, sizeof why);
    cb(arg, rc, why);
}

static const dir_backend embedded_ops = {"embedded", emb_domain, emb_expand, emb_lookup, emb_stats, emb_free};
static const dir_backend_extra embedded_extra = {NULL, NULL, emb_notes, emb_url_match};

/* open_with - the embedded backend reading the attribute names of opt (NULL: the defaults). */
static sl_dir *open_with(const char *path, const sl_options *opt, conf_errors *errs)
{
    size_t before = errs->msgs.n;
    char *text = conf_file_read(path, false, errs);
    embedded_dir *e = errs->msgs.n == before ? embedded_load_ldif(path, text ? text : "", errs) : NULL;
    free(text);
    if (!e) return NULL;
    emb_backend *b = xcalloc(1, sizeof *b);
    b->d = e;
    if (!opt) dir_schema_defaults(&b->schema);
    else if (dir_schema_from_options(&b->schema, opt) < 0) abort(); /* option table out of step with schema.c */
    return dir_new_extra(&embedded_ops, &embedded_extra, b);
}

sl_dir *dir_open_embedded(const char *path, conf_errors *errs)
{
    return open_with(path, NULL, errs);
}

sl_dir *dir_open_embedded_opts(const char *path, const sl_options *opt, conf_errors *errs)
{
    return open_with(path, opt, errs);
}

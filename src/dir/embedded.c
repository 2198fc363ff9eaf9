/*
 * dir.c - the embedded directory (see dir.h): builds domains, users and groups from the records
 * of directory.ldif and answers lookups from hash tables keyed by lower-cased names.
 * Loading runs in passes over the parsed records so that order in the file does not matter:
 * DNs first, then domains, then users and groups (whose domains must be local), then group
 * member DNs (forward references allowed). The result is immutable; every query is read-only.
 */
#include "dir/embedded.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dir/ldap_text.h"
#include "dir/ldap_url.h"
#include "dir/ldif.h"
#include "dir/schema.h"

/* Groups nested deeper than this are a configuration mistake, not a delivery plan. */
#define DIR_MAX_DEPTH 10

/* ---- a small open-addressing hash table with case-insensitive string keys ---- */

typedef struct {
    char *key; /* owned, lower-cased; NULL = empty slot */
    void *val;
} dir_slot;

typedef struct {
    dir_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
} dir_table;

/* table_hash - FNV-1a over the lower-cased key, so lookups need no lower-cased copy. */
static uint64_t table_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)tolower((unsigned char)*s);
        h *= 1099511628211ULL;
    }
    return h;
}

/* table_find - the slot holding key, or the empty slot where it would go. */
static dir_slot *table_find(const dir_table *t, const char *key)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)table_hash(key) & mask;; i = (i + 1) & mask) {
        dir_slot *s = &t->slots[i];
        if (!s->key || strcasecmp(s->key, key) == 0) return s;
    }
}

/* table_get - the value stored under key, or NULL. */
static void *table_get(const dir_table *t, const char *key)
{
    if (t->cap == 0) return NULL;
    dir_slot *s = table_find(t, key);
    return s->key ? s->val : NULL;
}

/* table_grow - double the table (keeps the load factor under 1/2). */
static void table_grow(dir_table *t)
{
    dir_table bigger = {.cap = t->cap ? t->cap * 2 : 64, .n = t->n};
    bigger.slots = xcalloc(bigger.cap, sizeof *bigger.slots);
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].key) *table_find(&bigger, t->slots[i].key) = t->slots[i];
    free(t->slots);
    *t = bigger;
}

/* table_put - store val under a lower-cased copy of key; false (nothing stored) if key exists. */
static bool table_put(dir_table *t, const char *key, void *val)
{
    if ((t->n + 1) * 2 > t->cap) table_grow(t);
    dir_slot *s = table_find(t, key);
    if (s->key) return false;
    s->key = str_lower(xstrdup(key));
    s->val = val;
    t->n++;
    return true;
}

/* table_free - release the keys and slots (values are not owned). */
static void table_free(dir_table *t)
{
    for (size_t i = 0; i < t->cap; i++) free(t->slots[i].key);
    free(t->slots);
    *t = (dir_table){0};
}

/* ---- the directory ---- */

struct embedded_dir {
    emb_entry **entries; /* in file order */
    size_t n, cap;
    dir_table addrs;   /* mail and mailAlternateAddress -> user or group */
    dir_table domains; /* local domain name -> domain entry */
    size_t n_users;
    const char *first_domain;
    ldif_file ldif;    /* the records, kept for the attributes the schema maps (embedded_values) */
    strvec notes;      /* "file:line: warning: ..." about attributes that are no longer read */
};

typedef struct {
    const char *file;
    conf_errors *errs;
    int errors;
    embedded_dir *d;
    ldif_file ldif;
    dir_table dns;       /* normalised DN -> record index + 1 */
    int *kinds;          /* per record: enum emb_kind, or -1 for entries without mail meaning */
    emb_entry **by_rec;  /* per record: the entry built from it, or NULL */
} dir_loader;

/* load_error - report an error at line of the LDIF and count it. */
static void load_error(dir_loader *L, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void load_error(dir_loader *L, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_verror(L->errs, L->file, line, fmt, ap);
    va_end(ap);
    L->errors++;
}

/* entry_free - release an entry and everything it owns. */
static void entry_free(emb_entry *e)
{
    if (!e) return;
    free(e->dn);
    free(e->mail);
    sv_free(&e->alt);
    sv_free(&e->forward);
    free(e->status);
    free(e->uid);
    free(e->password);
    sv_free(&e->members);
    free(e->domain);
    free(e);
}

/* directory_add - append e to the file-order entry list. */
static void directory_add(embedded_dir *d, emb_entry *e)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->entries = xrealloc(d->entries, d->cap * sizeof *d->entries);
    }
    d->entries[d->n++] = e;
    if (e->kind == EMB_USER) d->n_users++;
}

/* dn_normalize - lower-case dn and drop blanks around ',' '=' '+' so equal DNs compare equal. */
static char *dn_normalize(const char *dn)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (const char *p = dn; *p; p++) {
        char c = *p;
        if (c == '\\' && p[1]) {
            sb_putc(&sb, c);
            sb_putc(&sb, (char)tolower((unsigned char)*++p));
            continue;
        }
        if (c == ' ' && (sb.len == 0 || strchr(",=+", sb.data[sb.len - 1]))) continue;
        if (c == ',' || c == '=' || c == '+')
            while (sb.len && sb.data[sb.len - 1] == ' ') sb.data[--sb.len] = '\0';
        sb_putc(&sb, (char)tolower((unsigned char)c));
    }
    while (sb.len && sb.data[sb.len - 1] == ' ') sb.data[--sb.len] = '\0';
    return sb_steal(&sb);
}

/* dn_domain - the dc= values of dn joined with '.', lower case; NULL when dn has none. */
static char *dn_domain(const char *dn)
{
    char *norm = dn_normalize(dn);
    strbuf sb;
    sb_init(&sb);
    char *save = NULL;
    for (char *rdn = strtok_r(norm, ",", &save); rdn; rdn = strtok_r(NULL, ",", &save)) {
        if (strncmp(rdn, "dc=", 3) != 0 || !rdn[3]) continue;
        if (sb.len) sb_putc(&sb, '.');
        sb_puts(&sb, rdn + 3);
    }
    free(norm);
    return sb.len ? sb_steal(&sb) : NULL;
}

/* addr_domain - the domain part of a normalised address. */
static const char *addr_domain(const char *addr)
{
    return strrchr(addr, '@') + 1;
}

/* record_kind - what a record is by its objectClass values; -1 for entries we ignore. */
static int record_kind(const ldif_record *r)
{
    if (ldif_record_has_value(r, "objectclass", "mailDomain")) return EMB_DOMAIN;
    if (ldif_record_has_value(r, "objectclass", "mailGroup")) return EMB_GROUP;
    if (ldif_record_has_value(r, "objectclass", "mailUser")) return EMB_USER;
    if (ldif_record_has_value(r, "objectclass", "inetOrgPerson") && ldif_record_first(r, "mail")) return EMB_USER;
    return -1;
}

/* load_dns - index every DN (for member references) and classify every record. */
static void load_dns(dir_loader *L)
{
    for (size_t i = 0; i < L->ldif.n; i++) {
        const ldif_record *r = &L->ldif.recs[i];
        L->kinds[i] = record_kind(r);
        char *norm = dn_normalize(r->dn);
        if (!*norm)
            load_error(L, r->line, "empty dn");
        else if (!table_put(&L->dns, norm, (void *)(uintptr_t)(i + 1)))
            load_error(L, r->line, "duplicate dn: %s", r->dn);
        free(norm);
    }
}

/* domain_register - make name (already validated) a local domain of entry e. */
static void domain_register(dir_loader *L, emb_entry *e, const char *name, int line)
{
    char *lower = str_lower(xstrdup(name));
    const emb_entry *other = table_get(&L->d->domains, lower);
    if (other) {
        load_error(L, line, "domain %s already defined at line %d", lower, other->line);
        free(lower);
        return;
    }
    table_put(&L->d->domains, lower, e);
    if (!e->domain)
        e->domain = lower;
    else
        free(lower);
    if (!L->d->first_domain) L->d->first_domain = e->domain;
}

/* load_domain - build a EMB_DOMAIN entry from record i. */
static void load_domain(dir_loader *L, size_t i)
{
    const ldif_record *r = &L->ldif.recs[i];
    emb_entry *e = xcalloc(1, sizeof *e);
    e->dn = xstrdup(r->dn);
    e->kind = EMB_DOMAIN;
    e->line = r->line;
    e->rec = (int)i;
    bool named = false;
    for (size_t k = 0; k < r->n; k++) {
        const ldif_attr *a = &r->attrs[k];
        if (strcmp(a->name, "associateddomain") == 0) {
            named = true;
            if (dir_domain_valid(a->value))
                domain_register(L, e, a->value, a->line);
            else
                load_error(L, a->line, "bad domain name: %s", a->value);
        } else if (strcmp(a->name, "maildomainstatus") == 0 && !e->status) {
            e->status = xstrdup(a->value);
        }
    }
    if (!named) {
        char *dom = dn_domain(r->dn);
        if (!dom)
            load_error(L, r->line, "mailDomain entry has neither associatedDomain nor dc= components");
        else if (!dir_domain_valid(dom))
            load_error(L, r->line, "bad domain name: %s", dom);
        else
            domain_register(L, e, dom, r->line);
        free(dom);
    }
    L->by_rec[i] = e;
    directory_add(L->d, e);
}

/* checked_addr - normalised copy of value, or NULL with an error for line. */
static char *checked_addr(dir_loader *L, const ldif_attr *a)
{
    char *n = dir_addr_normalize(a->value);
    if (!n) load_error(L, a->line, "%s is not an address (local@domain): %s", a->name, a->value);
    return n;
}

/* addr_register - index addr for entry e; its domain must be local and nobody else may own it. */
static void addr_register(dir_loader *L, emb_entry *e, const char *addr, int line)
{
    if (!table_get(&L->d->domains, addr_domain(addr))) {
        load_error(L, line, "%s: domain %s is not a local domain of the directory", addr, addr_domain(addr));
        return;
    }
    const emb_entry *other = table_get(&L->d->addrs, addr);
    if (other) {
        load_error(L, line, "duplicate address %s (already used by the entry at line %d)", addr, other->line);
        return;
    }
    table_put(&L->d->addrs, addr, e);
}

/* note_max_message_size - maxMessageSize was never enforced and is no longer read: say exactly
 * what replaces it (a warning, so that old directories still load). */
static void note_max_message_size(dir_loader *L, int line, bool group)
{
    sv_push_owned(&L->d->notes,
                  xasprintf("%s:%d: warning: maxMessageSize is not read: rename it to %s", L->file, line,
                            group ? "mgrpMsgMaxSize (bytes) or mailMsgMaxBlocks (blocks of block_size bytes)"
                                  : "mailMsgMaxBlocks (blocks of block_size bytes, e.g. 10240 for 10M with the "
                                    "default block_size=1024)"));
}

/* entry_set_once - store a copy of value in *field unless it is already set. */
static void entry_set_once(char **field, const char *value)
{
    if (!*field) *field = xstrdup(value);
}

/* entry_apply_attr - fill e from one attribute of its record; addresses are checked. */
static void entry_apply_attr(dir_loader *L, emb_entry *e, const ldif_attr *a)
{
    const char *n = a->name;
    bool user = e->kind == EMB_USER;
    uint64_t num;
    char *addr;
    if (strcmp(n, "mail") == 0) {
        if (e->mail) {
            load_error(L, a->line, "more than one mail value (use mailAlternateAddress)");
            return;
        }
        e->mail = checked_addr(L, a);
    } else if (strcmp(n, "mailalternateaddress") == 0 || strcmp(n, "mailequivalentaddress") == 0) {
        if ((addr = checked_addr(L, a))) sv_push_owned(&e->alt, addr);
    } else if (user && strcmp(n, "mailforwardingaddress") == 0) {
        if ((addr = checked_addr(L, a))) sv_push_owned(&e->forward, addr);
    } else if (user && strcmp(n, "maildeliveryoption") == 0) {
        if (str_ieq(a->value, "mailbox")) e->keep_mailbox = true;
    } else if (user && strcmp(n, "mailuserstatus") == 0) {
        entry_set_once(&e->status, a->value);
    } else if (strcmp(n, "uid") == 0) {
        entry_set_once(&e->uid, a->value);
    } else if (strcmp(n, "userpassword") == 0) {
        entry_set_once(&e->password, a->value);
    } else if (strcmp(n, "maxmessagesize") == 0 || strcmp(n, "mailquota") == 0) {
        if (parse_uint(a->value, 0, UINT64_MAX, &num) < 0)
            load_error(L, a->line, "%s is not a number: %s", n, a->value);
        else if (n[1] == 'a') /* maxmessagesize */
            note_max_message_size(L, a->line, e->kind == EMB_GROUP);
    }
}

/* load_mail_entry - build a user or group from record i and index its addresses. */
static void load_mail_entry(dir_loader *L, size_t i, enum emb_kind kind)
{
    const ldif_record *r = &L->ldif.recs[i];
    emb_entry *e = xcalloc(1, sizeof *e);
    e->dn = xstrdup(r->dn);
    e->kind = kind;
    e->line = r->line;
    e->rec = (int)i;
    int before = L->errors;
    for (size_t k = 0; k < r->n; k++) entry_apply_attr(L, e, &r->attrs[k]);
    if (!e->mail) {
        if (L->errors == before)
            load_error(L, r->line, "%s without mail: %s", kind == EMB_USER ? "user" : "group", r->dn);
        entry_free(e);
        return;
    }
    const ldif_attr *mail = ldif_record_first(r, "mail");
    addr_register(L, e, e->mail, mail->line);
    for (size_t k = 0; k < r->n; k++) {
        if (strcmp(r->attrs[k].name, "mailalternateaddress") != 0 && strcmp(r->attrs[k].name, "mailequivalentaddress") != 0)
            continue;
        char *alt = dir_addr_normalize(r->attrs[k].value); /* NULL: already reported */
        if (alt) addr_register(L, e, alt, r->attrs[k].line);
        free(alt);
    }
    L->by_rec[i] = e;
    directory_add(L->d, e);
}

/* member_by_dn - the mail of the user or group named by dn (a uniqueMember's optional UID
 * ignored), or NULL (error added if unknown). */
static const char *member_by_dn(dir_loader *L, const ldif_attr *a)
{
    char *dn = strcmp(a->name, "uniquemember") == 0 ? ld_member_dn(a->value) : xstrdup(a->value);
    char *norm = dn_normalize(dn);
    free(dn);
    uintptr_t idx = (uintptr_t)table_get(&L->dns, norm);
    free(norm);
    if (!idx) {
        load_error(L, a->line, "member %s names no entry", a->value);
        return NULL;
    }
    const emb_entry *target = L->by_rec[idx - 1];
    if (target && target->kind != EMB_DOMAIN) return target->mail;
    /* a user or group that failed to load has had its error reported already */
    if (L->kinds[idx - 1] != EMB_USER && L->kinds[idx - 1] != EMB_GROUP)
        load_error(L, a->line, "member %s is not a user or group", a->value);
    return NULL;
}

/* load_members - fill the members of the group built from record i, in file order. */
static void load_members(dir_loader *L, size_t i)
{
    const ldif_record *r = &L->ldif.recs[i];
    emb_entry *e = L->by_rec[i];
    for (size_t k = 0; k < r->n; k++) {
        const ldif_attr *a = &r->attrs[k];
        if (strcmp(a->name, "mgrprfc822mailmember") == 0) {
            /* validated, but kept as written: an external address goes out exactly as given */
            char *addr = checked_addr(L, a);
            if (addr) sv_push(&e->members, a->value);
            free(addr);
        } else if (strcmp(a->name, "member") == 0 || strcmp(a->name, "uniquemember") == 0) {
            const char *mail = member_by_dn(L, a);
            if (mail) sv_push(&e->members, mail);
        }
    }
}

embedded_dir *embedded_load_ldif(const char *file, const char *text, conf_errors *errs)
{
    dir_loader L = {.file = file, .errs = errs};
    L.d = xcalloc(1, sizeof *L.d);
    L.errors = ldif_parse(file, text, &L.ldif, errs);
    size_t n = L.ldif.n;
    L.kinds = xcalloc(n, sizeof *L.kinds);
    L.by_rec = xcalloc(n, sizeof *L.by_rec);
    load_dns(&L);
    for (size_t i = 0; i < n; i++)
        if (L.kinds[i] == EMB_DOMAIN) load_domain(&L, i);
    for (size_t i = 0; i < n; i++)
        if (L.kinds[i] == EMB_USER || L.kinds[i] == EMB_GROUP) load_mail_entry(&L, i, (enum emb_kind)L.kinds[i]);
    for (size_t i = 0; i < n; i++)
        if (L.kinds[i] == EMB_GROUP && L.by_rec[i]) load_members(&L, i);
    embedded_dir *d = L.d;
    if (L.errors) {
        embedded_free(d);
        d = NULL;
    }
    if (d) d->ldif = L.ldif; /* kept: the backend reads attributes from it */
    else ldif_file_free(&L.ldif);
    table_free(&L.dns);
    free(L.kinds);
    free(L.by_rec);
    return d;
}

void embedded_free(embedded_dir *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) entry_free(d->entries[i]);
    free(d->entries);
    table_free(&d->addrs);
    table_free(&d->domains);
    ldif_file_free(&d->ldif);
    sv_free(&d->notes);
    free(d);
}

void embedded_notes(const embedded_dir *d, strvec *out)
{
    for (size_t i = 0; d && i < d->notes.n; i++) sv_push(out, d->notes.v[i]);
}

bool embedded_domain_is_local(const embedded_dir *d, const char *domain)
{
    return embedded_domain(d, domain) != NULL;
}

const emb_entry *embedded_domain(const embedded_dir *d, const char *domain)
{
    if (!d || !domain) return NULL;
    return table_get(&d->domains, domain); /* keys compare case-insensitively */
}

void embedded_values(const embedded_dir *d, const emb_entry *e, const char *name, strvec *out)
{
    const ldif_record *r = &d->ldif.recs[e->rec];
    for (size_t i = 0; i < r->n; i++)
        if (str_ieq(r->attrs[i].name, name)) sv_push(out, r->attrs[i].value);
}

const emb_entry *embedded_lookup(const embedded_dir *d, const char *addr)
{
    if (!d || !addr) return NULL;
    return table_get(&d->addrs, addr);
}

size_t embedded_domain_count(const embedded_dir *d)
{
    return d ? d->domains.n : 0;
}

size_t embedded_user_count(const embedded_dir *d)
{
    return d ? d->n_users : 0;
}

const char *embedded_first_domain(const embedded_dir *d)
{
    return d ? d->first_domain : NULL;
}

/* ---- LDAP URLs ---- */

/* One entry as a source of values for a filter. */
typedef struct {
    const embedded_dir *d;
    const emb_entry *e;
} url_src;

/* url_values - a dir_values_fn over one entry's LDIF record (for ld_filter_eval). */
static void url_values(const void *src, const char *name, strvec *out)
{
    const url_src *s = src;
    embedded_values(s->d, s->e, name, out);
}

/* entry_is_sender - whether e has one of addrs, or is the entry dn. */
static bool entry_is_sender(const emb_entry *e, const strvec *addrs, const char *dn)
{
    for (size_t i = 0; i < addrs->n; i++) {
        if (e->mail && str_ieq(e->mail, addrs->v[i])) return true;
        for (size_t k = 0; k < e->alt.n; k++)
            if (str_ieq(e->alt.v[k], addrs->v[i])) return true;
    }
    if (!dn) return false;
    char *a = dn_normalize(dn), *b = dn_normalize(e->dn);
    bool same = strcmp(a, b) == 0;
    free(a);
    free(b);
    return same;
}

sl_result embedded_url_match(const embedded_dir *d, const ld_url *u, const strvec *addrs, const char *dn, char *why,
                             size_t whylen)
{
    char err[160];
    ld_filter *f = ld_filter_parse(u->filter, err, sizeof err);
    if (!f) { /* ld_url_parse checked it: cannot happen, but never a guess */
        snprintf(why, whylen, "bad filter %s: %s", u->filter, err);
        return SL_TEMP;
    }
    sl_result rc = SL_PERM;
    for (size_t i = 0; d && i < d->n && rc != SL_OK; i++) {
        const emb_entry *e = d->entries[i];
        if (e->kind == EMB_DOMAIN || !entry_is_sender(e, addrs, dn)) continue;
        if (*u->dn && !ld_dn_in_scope(e->dn, u->dn, u->scope)) continue;
        url_src src = {d, e};
        int m = ld_filter_eval(f, url_values, &src);
        if (m > 0) rc = SL_OK;
        if (m < 0) {
            snprintf(why, whylen, "the embedded directory cannot evaluate the filter %s (only =, =*, substrings, &, |, !)",
                     u->filter);
            rc = SL_TEMP;
            break;
        }
    }
    ld_filter_free(f);
    return rc;
}

/* ---- expansion ---- */

typedef struct {
    const embedded_dir *d;
    const dir_schema *schema; /* the attribute the disabled rule reads */
    strvec out;
    dir_table seen;   /* addresses already in out */
    dir_table groups; /* groups already expanded: a group reached twice (or a cycle) adds nothing */
    char *err;
    size_t errlen;
} dir_expansion;

/* One entry as a source of values for the schema. */
typedef struct {
    const embedded_dir *d;
    const emb_entry *e;
} emb_values_src;

static void emb_values(const void *src, const char *name, strvec *out)
{
    const emb_values_src *s = src;
    embedded_values(s->d, s->e, name, out);
}

/* user_disabled - whether the user's status says the mailbox must not receive mail (the
 * schema's rule, shared with LDAP: dir_user_disabled). */
static bool user_disabled(const dir_expansion *x, const emb_entry *e)
{
    emb_values_src src = {x->d, e};
    return dir_user_disabled(x->schema, emb_values, &src);
}

/* expansion_add - append addr to the result unless it is already there. */
static void expansion_add(dir_expansion *x, const char *addr)
{
    if (table_put(&x->seen, addr, x)) sv_push(&x->out, addr);
}

/* expand_user - a user's forwarding addresses (plus its mailbox when asked), else its mailbox. */
static void expand_user(dir_expansion *x, const emb_entry *e)
{
    for (size_t i = 0; i < e->forward.n; i++) expansion_add(x, e->forward.v[i]);
    if (e->forward.n == 0 || e->keep_mailbox) expansion_add(x, e->mail);
}

static sl_result expand_group(dir_expansion *x, const emb_entry *e, int depth);

/* expand_member - one member entry: a group recursively, a user unless disabled (so that one
 * closed mailbox does not bounce a list). */
static sl_result expand_member(dir_expansion *x, const emb_entry *m, int depth)
{
    if (m->kind == EMB_GROUP) return expand_group(x, m, depth + 1);
    if (m->kind == EMB_USER && !user_disabled(x, m)) expand_user(x, m);
    return SL_OK;
}

/* expand_url - the users and groups a memberURL selects (a dynamic group), in file order; TEMP
 * when the URL is malformed or its filter cannot be evaluated here. */
static sl_result expand_url(dir_expansion *x, const emb_entry *g, const char *url, int depth)
{
    ld_url u;
    char why[200];
    if (ld_url_parse(url, &u, why, sizeof why) < 0) {
        snprintf(x->err, x->errlen, "%s: memberURL %s: %s", g->dn, url, why);
        return SL_TEMP;
    }
    ld_filter *f = ld_filter_parse(u.filter, why, sizeof why);
    sl_result r = f ? SL_OK : SL_TEMP;
    if (!f) snprintf(x->err, x->errlen, "%s: memberURL %s: %s", g->dn, url, why);
    for (size_t i = 0; f && r == SL_OK && i < x->d->n; i++) {
        const emb_entry *m = x->d->entries[i];
        if (m->kind == EMB_DOMAIN || (*u.dn && !ld_dn_in_scope(m->dn, u.dn, u.scope))) continue;
        url_src src = {x->d, m};
        int hit = ld_filter_eval(f, url_values, &src);
        if (hit < 0) {
            snprintf(x->err, x->errlen, "%s: memberURL %s: the embedded directory cannot evaluate the filter", g->dn, url);
            r = SL_TEMP;
        } else if (hit) {
            r = expand_member(x, m, depth);
        }
    }
    ld_filter_free(f);
    ld_url_free(&u);
    return r;
}

/* expand_group - the members of group e, recursively; depth 1 is the group asked for: the
 * static members, then those of its memberURL values. */
static sl_result expand_group(dir_expansion *x, const emb_entry *e, int depth)
{
    if (depth > DIR_MAX_DEPTH) {
        snprintf(x->err, x->errlen, "group nesting deeper than %d levels at %s", DIR_MAX_DEPTH, e->mail);
        return SL_PERM;
    }
    if (!table_put(&x->groups, e->mail, x)) return SL_OK;
    for (size_t i = 0; i < e->members.n; i++) {
        const emb_entry *m = embedded_lookup(x->d, e->members.v[i]);
        if (!m) {
            expansion_add(x, e->members.v[i]); /* external: the router takes it from here */
            continue;
        }
        sl_result r = expand_member(x, m, depth);
        if (r != SL_OK) return r;
    }
    strvec urls = {0};
    embedded_values(x->d, e, "memberURL", &urls);
    sl_result r = SL_OK;
    for (size_t i = 0; r == SL_OK && i < urls.n; i++) r = expand_url(x, e, urls.v[i], depth);
    sv_free(&urls);
    return r;
}

sl_result embedded_expand(const embedded_dir *d, const char *addr, strvec *out, char *err, size_t errlen)
{
    dir_schema s;
    dir_schema_defaults(&s);
    sl_result r = embedded_expand_schema(d, &s, addr, out, err, errlen);
    dir_schema_free(&s);
    return r;
}

sl_result embedded_expand_schema(const embedded_dir *d, const dir_schema *schema, const char *addr, strvec *out,
                                 char *err, size_t errlen)
{
    char scratch[1];
    dir_expansion x = {.d = d, .schema = schema, .err = errlen ? err : scratch, .errlen = errlen ? errlen : sizeof scratch};
    x.err[0] = '\0';
    sl_result r = SL_OK;
    const emb_entry *e = embedded_lookup(d, addr);
    if (!e) {
        snprintf(x.err, x.errlen, "no such user");
        r = SL_PERM;
    } else if (e->kind == EMB_USER && user_disabled(&x, e)) {
        snprintf(x.err, x.errlen, "mailbox disabled");
        r = SL_PERM;
    } else if (e->kind == EMB_USER) {
        expand_user(&x, e);
    } else if ((r = expand_group(&x, e, 1)) == SL_OK && x.out.n == 0) {
        snprintf(x.err, x.errlen, "group has no deliverable members");
        r = SL_PERM;
    }
    if (r == SL_OK) {
        for (size_t i = 0; i < x.out.n; i++) sv_push_owned(out, x.out.v[i]);
        free(x.out.v);
    } else {
        sv_free(&x.out);
    }
    table_free(&x.seen);
    table_free(&x.groups);
    return r;
}

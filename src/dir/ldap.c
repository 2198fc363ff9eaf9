/*
 * ldap.c - the LDAP directory backend (dir_open_ldap): the questions of dir.h answered from an
 * LDAP server through the connection pool (dir/ldap_pool.h), with two caches in front of it.
 *
 * - domain: (&(objectClass=mailDomain)(associatedDomain=D)) under ldap_base_dn; when nothing
 *   matches and the DN "dc=..." of D lies under the base, that entry read with scope base, if it
 *   is a mailDomain without associatedDomain (the embedded backend's dc= naming).
 * - lookup: (&(|(objectClass=mailUser)(objectClass=mailGroup)(objectClass=inetOrgPerson))
 *   (|(mail=A)(mailAlternateAddress=A)(mailEquivalentAddress=A))), size limit 2: a second match is
 *   a directory data error (logged) and a temporary failure, never a guess.
 * - expand: the same rules as the embedded backend (dir/embedded.c), computed by a walk over
 *   entries fetched so far: what the walk still needs (member DNs read with scope base, member
 *   addresses looked up) is fetched in parallel, and the walk runs again until it needs nothing;
 *   so the answer, its order and its errors are those of the embedded backend on the same data.
 * - memberURL (dynamic groups): the URL's base (empty: ldap_base_dn) and scope with
 *   (&F(|(objectClass=mailUser)(objectClass=mailGroup)(objectClass=inetOrgPerson))), size limit
 *   10000 (more is a data error); the entries found are members, as if named by member DNs.
 * - url_match (LDAP URL broadcaster lists): the URL's base (empty: ldap_base_dn) and scope with
 *   (&F(|(mail=S)(mailAlternateAddress=S)(mailEquivalentAddress=S)...)), size limit 1; when nothing
 *   matches, the sender's own entry (if in scope) read with scope base and F. The answer is cached
 *   (key: the URL, the addresses and the DN) with the entry cache's times to live.
 *
 * Entries map to dir_entry / dir_domain_info through dir/schema.h, as the embedded backend's do.
 * Answers found (a domain of ours, an entry) and definite absences are cached with their own time
 * to live; failures never are. Every failure, timeout or server error is SL_TEMP. Each question
 * must be answered within ldap_timeout, all its searches together. Loop thread only.
 */
#include "dir/dir.h"
#include "dir/dcache.h"
#include "dir/ldap_pool.h"
#include "dir/ldap_text.h"
#include "dir/ldap_url.h"
#include "dir/schema.h"

#include <inttypes.h>
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* The embedded backend's bound on group nesting (the group asked for is level 1). */
#define EXPAND_MAX_DEPTH 10
/* Entries one expansion may fetch: more is a directory too large to expand at RCPT time. */
#define EXPAND_MAX_FETCHES 10000

typedef struct ld_req ld_req;

typedef struct {
    ld_pool *pool;
    dir_schema schema;
    char *base_dn;
    unsigned timeout_s;
    size_t n_uris;
    dcache *domains; /* lower-cased domain -> its entry, or none */
    dcache *entries; /* "a:" address or "d:" normalised DN -> the entry, or none */
    unsigned dom_ttl, dom_neg_ttl, ent_ttl, ent_neg_ttl;
    bool attached;
    ld_req *reqs;    /* questions under way */
    struct {
        uint64_t dom_searches, addr_searches, dn_searches, url_searches;
        uint64_t dom_hits, dom_misses, ent_hits, ent_misses;
        uint64_t data_errors, failures;
    } n;
} ld_be;

enum req_kind { REQ_DOMAIN, REQ_LOOKUP, REQ_EXPAND, REQ_URL };
enum srch_what { SRCH_DOMAIN, SRCH_DOMAIN_DC, SRCH_ADDR, SRCH_DN, SRCH_URL_ADDR, SRCH_URL_DN, SRCH_MEMBER_URL };

/* One search of a question, and what it is for. */
typedef struct {
    ld_req *r;
    ld_search *s;
    enum srch_what what;
    char *key; /* the entry cache key it resolves (SRCH_ADDR, SRCH_DN) */
} req_search;

struct ld_req {
    ld_be *be;
    ld_req *prev, *next;
    enum req_kind kind;
    char *name; /* the domain or address asked */
    dir_domain_cb dcb;
    dir_entry_cb ecb;
    dir_expand_cb xcb;
    dir_match_cb mcb;
    void *arg;
    int64_t deadline;
    req_search **srch; /* searches under way */
    size_t nsrch;
    dcache *resolved;  /* expand: cache key -> entry (or none), everything fetched for this question */
    size_t fetched;
    struct {           /* url: the URL's search, and the sender's entry to try when no address matched */
        char *base, *filter, *dn;
        char *key;     /* the entry cache key of the answer */
        int scope;
    } url;
};

static const char *const fixed_attrs[] = {
    "objectClass", "mail", "mailAlternateAddress", "mailEquivalentAddress", "mailForwardingAddress",
    "mailDeliveryOption", "userPassword", "member", "uniqueMember", "mgrpRFC822MailMember", "associatedDomain",
    "memberURL",
};

static int64_t now_s(void)
{
    return now_mono_ms() / 1000;
}

/* ---- entries ---- */

enum ent_kind { ENT_NONE, ENT_USER, ENT_GROUP };

/* entry_mail - the first mail value, domain lower-cased, or NULL when it is not an address. */
static char *entry_mail(const ld_entry *e)
{
    strvec v = {0};
    ld_entry_values(e, "mail", &v);
    char *m = v.n ? dir_addr_normalize(v.v[0]) : NULL;
    sv_free(&v);
    return m;
}

/* entry_has - whether attribute name has value (any case). */
static bool entry_has(const ld_entry *e, const char *name, const char *value)
{
    for (size_t i = 0; i < e->names.n; i++)
        if (str_ieq(e->names.v[i], name) && str_ieq(e->values.v[i], value)) return true;
    return false;
}

/* entry_kind - what an entry is by its object classes, as the embedded backend decides. */
static enum ent_kind entry_kind(const ld_entry *e)
{
    char *mail = entry_mail(e);
    enum ent_kind k = ENT_NONE;
    if (!mail || entry_has(e, "objectClass", "mailDomain")) k = ENT_NONE;
    else if (entry_has(e, "objectClass", "mailGroup")) k = ENT_GROUP;
    else if (entry_has(e, "objectClass", "mailUser") || entry_has(e, "objectClass", "inetOrgPerson")) k = ENT_USER;
    free(mail);
    return k;
}

/* entry_first - the first value of name, or NULL (caller frees). */
static char *entry_first(const ld_entry *e, const char *name)
{
    for (size_t i = 0; i < e->names.n; i++)
        if (str_ieq(e->names.v[i], name)) return xstrdup(e->values.v[i]);
    return NULL;
}

/* to_dir_entry - the caller's dir_entry of a user or group. */
static void to_dir_entry(const ld_be *be, const ld_entry *e, dir_entry *out)
{
    memset(out, 0, sizeof *out);
    out->dn = xstrdup(e->dn);
    out->mail = entry_mail(e);
    out->password = entry_first(e, "userPassword");
    dir_entry_fill(&be->schema, ld_entry_values, e, entry_kind(e) == ENT_GROUP, out);
}

/* addr_key, dn_key - entry cache keys (caller frees). */
static char *addr_key(const char *addr)
{
    return str_lower(xasprintf("a:%s", addr));
}

static char *dn_key(const char *dn)
{
    char *n = ld_dn_normalize(dn);
    char *k = xasprintf("d:%s", n);
    free(n);
    return k;
}

/* ---- questions ---- */

static void on_search(void *arg, const ld_answer *a);

/* req_new - a question under way. */
static ld_req *req_new(ld_be *be, enum req_kind kind, const char *name, void *arg)
{
    ld_req *r = xcalloc(1, sizeof *r);
    r->be = be;
    r->kind = kind;
    r->name = xstrdup(name);
    r->arg = arg;
    r->deadline = now_mono_ms() + (int64_t)be->timeout_s * 1000;
    r->next = be->reqs;
    if (be->reqs) be->reqs->prev = r;
    be->reqs = r;
    return r;
}

/* req_search_start - start a search for r (key: the entry cache key it resolves, or NULL). */
static void req_search_start(ld_req *r, enum srch_what what, const char *base, int scope, const char *filter,
                             int sizelimit, const char *key)
{
    ld_be *be = r->be;
    req_search *rs = xcalloc(1, sizeof *rs);
    rs->r = r;
    rs->what = what;
    rs->key = xstrdup(key);
    r->srch = xrealloc(r->srch, (r->nsrch + 1) * sizeof *r->srch);
    r->srch[r->nsrch++] = rs;
    if (what == SRCH_DOMAIN || what == SRCH_DOMAIN_DC) be->n.dom_searches++;
    else if (what == SRCH_ADDR) be->n.addr_searches++;
    else if (what == SRCH_DN) be->n.dn_searches++;
    else be->n.url_searches++;
    rs->s = ld_pool_search(be->pool, base, scope, filter, sizelimit, r->deadline, on_search, rs);
}

/* req_search_done - rs answered: off r's list (the pool frees its search). */
static void req_search_done(ld_req *r, req_search *rs)
{
    for (size_t i = 0; i < r->nsrch; i++) {
        if (r->srch[i] != rs) continue;
        r->srch[i] = r->srch[--r->nsrch];
        break;
    }
    free(rs->key);
    free(rs);
}

/* req_free - cancel what r still waits for and free it (the answer is the caller's to give). */
static void req_free(ld_req *r)
{
    ld_be *be = r->be;
    for (size_t i = 0; i < r->nsrch; i++) {
        ld_pool_cancel(be->pool, r->srch[i]->s);
        free(r->srch[i]->key);
        free(r->srch[i]);
    }
    free(r->srch);
    if (r->prev) r->prev->next = r->next;
    else be->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    dcache_free(r->resolved);
    free(r->url.base);
    free(r->url.filter);
    free(r->url.dn);
    free(r->url.key);
    free(r->name);
    free(r);
}

/* req_fail - answer r TEMP (and free it). */
static void req_fail(ld_req *r)
{
    void *arg = r->arg;
    enum req_kind kind = r->kind;
    dir_domain_cb dcb = r->dcb;
    dir_entry_cb ecb = r->ecb;
    dir_expand_cb xcb = r->xcb;
    dir_match_cb mcb = r->mcb;
    r->be->n.failures++;
    req_free(r);
    if (kind == REQ_DOMAIN) dcb(arg, SL_TEMP, NULL);
    else if (kind == REQ_LOOKUP) ecb(arg, SL_TEMP, NULL);
    else if (kind == REQ_URL) mcb(arg, SL_TEMP, "directory lookup failed");
    else xcb(arg, SL_TEMP, (strvec){0}, "directory lookup failed");
}

/* req_failed_search - a search failed: log it, answer TEMP. */
static void req_failed_search(ld_req *r, const char *what, const char *error)
{
    log_warn(NULL, "ldap_search_failed", "%s=<%s> error=\"%s\"", what, r->name, error);
    req_fail(r);
}

/* req_data_error - the directory's data cannot give an answer (logged for its keepers): TEMP. */
static void req_data_error(ld_req *r, const char *what, const char *error)
{
    r->be->n.data_errors++;
    log_warn(NULL, "ldap_data_error", "%s=<%s> error=\"%s\"", what, r->name, error);
    req_fail(r);
}

/* dns_of - the DNs of a result, for a data error's log line (caller frees). */
static char *dns_of(const ld_answer *a)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (size_t i = 0; i < a->n; i++) sb_printf(&sb, "%s%s", i ? "; " : "", a->entries[i]->dn);
    if (a->truncated) sb_puts(&sb, "; ...");
    return sb_steal(&sb);
}

/* ---- domains ---- */

/* domain_answer - OK with the domain's entry (e), or PERM when e is NULL; r freed. */
static void domain_answer(ld_req *r, const ld_entry *e)
{
    void *arg = r->arg;
    dir_domain_cb cb = r->dcb;
    dir_domain_info info;
    if (e) {
        char *name = entry_first(e, "associatedDomain"); /* the embedded backend's: its first name */
        if (!name) name = xstrdup(r->name);
        dir_domain_fill(&r->be->schema, ld_entry_values, e, str_lower(name), &info);
        free(name);
    }
    req_free(r);
    cb(arg, e ? SL_OK : SL_PERM, e ? &info : NULL);
}

/* domain_remember - cache the answer about r's domain (e NULL: not ours). */
static void domain_remember(ld_req *r, const ld_entry *e)
{
    ld_be *be = r->be;
    int64_t now = now_s();
    char *key = str_lower(xstrdup(r->name));
    dcache_put(be->domains, key, e ? ld_entry_ref((ld_entry *)e) : NULL, now + (e ? be->dom_ttl : be->dom_neg_ttl),
               now);
    free(key);
}

static void ldb_domain(void *bep, const char *domain, dir_domain_cb cb, void *arg)
{
    ld_be *be = bep;
    if (!be->attached) {
        cb(arg, SL_TEMP, NULL);
        return;
    }
    char *key = str_lower(xstrdup(domain));
    void *hit;
    bool found = dcache_get(be->domains, key, now_s(), &hit);
    free(key);
    ld_req *r = req_new(be, REQ_DOMAIN, domain, arg);
    r->dcb = cb;
    if (found) {
        be->n.dom_hits++;
        domain_answer(r, hit);
        return;
    }
    be->n.dom_misses++;
    strbuf f;
    sb_init(&f);
    sb_puts(&f, "(&(objectClass=mailDomain)(associatedDomain=");
    ld_filter_escape(&f, domain);
    sb_puts(&f, "))");
    req_search_start(r, SRCH_DOMAIN, be->base_dn, LDAP_SCOPE_SUBTREE, f.data, 2, NULL);
    sb_free(&f);
}

/* domain_searched - the associatedDomain search, or the dc= entry read after it. */
static void domain_searched(ld_req *r, enum srch_what what, const ld_answer *a)
{
    if (a->rc == SL_TEMP) return req_failed_search(r, "domain", a->error);
    if (a->rc == SL_PERM && what == SRCH_DOMAIN) return req_failed_search(r, "domain", "ldap_base_dn does not exist");
    if (a->n > 1 || a->truncated) {
        char *dns = dns_of(a);
        char *msg = xasprintf("more than one mailDomain entry names the domain: %s", dns);
        req_data_error(r, "domain", msg);
        free(msg);
        free(dns);
        return;
    }
    if (a->rc == SL_OK && a->n == 1) {
        domain_remember(r, a->entries[0]);
        return domain_answer(r, a->entries[0]);
    }
    char *dc = what == SRCH_DOMAIN ? ld_dc_dn(r->name, r->be->base_dn) : NULL;
    if (dc) { /* a mailDomain entry named by its dc= components only */
        req_search_start(r, SRCH_DOMAIN_DC, dc, LDAP_SCOPE_BASE, "(&(objectClass=mailDomain)(!(associatedDomain=*)))",
                         1, NULL);
        free(dc);
        return;
    }
    domain_remember(r, NULL);
    domain_answer(r, NULL);
}

/* ---- addresses ---- */

/* addr_filter - the search for the entry that owns addr. */
static char *addr_filter(const char *addr)
{
    strbuf f;
    sb_init(&f);
    sb_puts(&f, "(&(|(objectClass=mailUser)(objectClass=mailGroup)(objectClass=inetOrgPerson))(|(mail=");
    ld_filter_escape(&f, addr);
    sb_puts(&f, ")(mailAlternateAddress=");
    ld_filter_escape(&f, addr);
    sb_puts(&f, ")(mailEquivalentAddress=");
    ld_filter_escape(&f, addr);
    sb_puts(&f, ")))");
    return sb_steal(&f);
}

/* entry_remember - cache an entry (or its absence) under key. */
static void entry_remember(ld_be *be, const char *key, ld_entry *e)
{
    int64_t now = now_s();
    dcache_put(be->entries, key, e ? ld_entry_ref(e) : NULL, now + (e ? be->ent_ttl : be->ent_neg_ttl), now);
}

/* lookup_answer - OK with e (a user or group), PERM when NULL; r freed. */
static void lookup_answer(ld_req *r, const ld_entry *e)
{
    void *arg = r->arg;
    dir_entry_cb cb = r->ecb;
    dir_entry out;
    if (e) to_dir_entry(r->be, e, &out);
    req_free(r);
    cb(arg, e ? SL_OK : SL_PERM, e ? &out : NULL);
}

static void ldb_lookup(void *bep, const char *addr, dir_entry_cb cb, void *arg)
{
    ld_be *be = bep;
    if (!be->attached) {
        cb(arg, SL_TEMP, NULL);
        return;
    }
    ld_req *r = req_new(be, REQ_LOOKUP, addr, arg);
    r->ecb = cb;
    char *key = addr_key(addr);
    void *hit;
    if (dcache_get(be->entries, key, now_s(), &hit)) {
        be->n.ent_hits++;
        free(key);
        lookup_answer(r, hit);
        return;
    }
    be->n.ent_misses++;
    char *f = addr_filter(addr);
    req_search_start(r, SRCH_ADDR, be->base_dn, LDAP_SCOPE_SUBTREE, f, 2, key);
    free(f);
    free(key);
}

/* addr_result - the entry an address search found (or NULL); false when the answer is a data error
 * (r answered and freed then). */
static bool addr_result(ld_req *r, const ld_answer *a, const char *addr, ld_entry **out)
{
    *out = NULL;
    const char *what = r->kind == REQ_LOOKUP ? "addr" : "member_of";
    if (a->n > 1 || a->truncated) {
        char *dns = dns_of(a);
        char *msg = xasprintf("more than one entry has the address %s: %s", addr, dns);
        req_data_error(r, what, msg);
        free(msg);
        free(dns);
        return false;
    }
    if (a->n == 1 && entry_kind(a->entries[0]) == ENT_NONE) {
        char *msg = xasprintf("%s: the entry for %s has no usable mail value", a->entries[0]->dn, addr);
        req_data_error(r, what, msg);
        free(msg);
        return false;
    }
    if (a->n == 1) *out = a->entries[0];
    return true;
}

/* ---- expansion ---- */

typedef struct {
    ld_req *r;
    const dir_schema *schema;
    strvec out;
    dcache *seen;   /* addresses in out */
    dcache *groups; /* groups expanded (by DN): a group reached twice, or a cycle, adds nothing */
    strvec need;    /* cache keys the walk met and nothing is known of yet */
    strvec need_dn; /* for each: the DN as the server wrote it ("" for an address) */
    dcache *needset;
    strvec notes;   /* data problems met (logged once the walk is complete) */
    char why[256];
} walk;

/* walk_known - the entry under key (*e, NULL: there is none) if fetched; else false, and key is
 * recorded as needed (dn: the DN to read, NULL for an address). */
static bool walk_known(walk *w, const char *key, const char *dn, ld_entry **e)
{
    void *v;
    if (dcache_get(w->r->resolved, key, 0, &v)) {
        *e = v;
        return true;
    }
    if (!dcache_get(w->needset, key, 0, &v)) {
        dcache_put(w->needset, key, NULL, INT64_MAX, 0);
        sv_push(&w->need, key);
        sv_push(&w->need_dn, dn ? dn : "");
    }
    return false;
}

/* walk_add - append addr to the result unless it is there already (any case). */
static void walk_add(walk *w, const char *addr)
{
    void *v;
    if (dcache_get(w->seen, addr, 0, &v)) return;
    dcache_put(w->seen, addr, NULL, INT64_MAX, 0);
    sv_push(&w->out, addr);
}

/* walk_user - a user's forwarding addresses (and its mailbox with mailDeliveryOption: mailbox), or
 * its mailbox. */
static void walk_user(walk *w, const ld_entry *e)
{
    strvec fwd = {0};
    ld_entry_values(e, "mailForwardingAddress", &fwd);
    size_t used = 0;
    for (size_t i = 0; i < fwd.n; i++) {
        char *a = dir_addr_normalize(fwd.v[i]);
        if (!a) {
            sv_push_owned(&w->notes, xasprintf("%s: mailForwardingAddress is not an address: %s", e->dn, fwd.v[i]));
            continue;
        }
        walk_add(w, a);
        free(a);
        used++;
    }
    sv_free(&fwd);
    if (used == 0 || entry_has(e, "mailDeliveryOption", "mailbox")) {
        char *mail = entry_mail(e);
        walk_add(w, mail);
        free(mail);
    }
}

/* user_disabled - the schema's rule (dir_user_disabled), shared with the embedded backend. */
static bool user_disabled(const walk *w, const ld_entry *e)
{
    return dir_user_disabled(w->schema, ld_entry_values, e);
}

static sl_result walk_group(walk *w, const ld_entry *g, int depth);

/* walk_member - one member entry of a group: a group recursively, a user unless disabled (so one
 * closed mailbox does not bounce a list). */
static sl_result walk_member(walk *w, const ld_entry *m, int depth, const char *as)
{
    enum ent_kind k = entry_kind(m);
    if (k == ENT_GROUP) return walk_group(w, m, depth + 1);
    if (k == ENT_USER && !user_disabled(w, m)) walk_user(w, m);
    if (k == ENT_NONE) sv_push_owned(&w->notes, xasprintf("member %s is not a user or group", as));
    return SL_OK;
}

/* walk_member_url - a dynamic group's memberURL: the entries its search found (fetched as one
 * made-up entry whose member values are their DNs, each found entry cached under its DN). */
static sl_result walk_member_url(walk *w, const ld_entry *g, const char *url, int depth)
{
    ld_url u;
    char why[200];
    if (ld_url_parse(url, &u, why, sizeof why) < 0) {
        snprintf(w->why, sizeof w->why, "%s: memberURL %s: %s", g->dn, url, why);
        return SL_TEMP;
    }
    ld_url_free(&u);
    char *key = xasprintf("u:%s", url);
    ld_entry *m;
    bool known = walk_known(w, key, NULL, &m);
    free(key);
    if (!known || !m) return SL_OK;
    return walk_group(w, m, depth); /* the made-up entry: its members at this group's level */
}

/* walk_group - the members of group g in the order the server gives its values: member and
 * uniqueMember DNs, mgrpRFC822MailMember addresses (external ones kept as written). */
static sl_result walk_group(walk *w, const ld_entry *g, int depth)
{
    if (depth > EXPAND_MAX_DEPTH) {
        char *mail = entry_mail(g);
        snprintf(w->why, sizeof w->why, "group nesting deeper than %d levels at %s", EXPAND_MAX_DEPTH, mail);
        free(mail);
        return SL_PERM;
    }
    char *gk = dn_key(g->dn);
    void *v;
    bool again = dcache_get(w->groups, gk, 0, &v);
    if (!again) dcache_put(w->groups, gk, NULL, INT64_MAX, 0);
    free(gk);
    if (again) return SL_OK;
    for (size_t i = 0; i < g->names.n; i++) {
        const char *name = g->names.v[i], *value = g->values.v[i];
        char *key, *dn = NULL;
        ld_entry *m;
        if (str_ieq(name, "member") || str_ieq(name, "uniqueMember")) {
            dn = str_ieq(name, "uniqueMember") ? ld_member_dn(value) : xstrdup(value);
            key = dn_key(dn);
        } else if (str_ieq(name, "memberURL")) {
            sl_result rc = walk_member_url(w, g, value, depth);
            if (rc != SL_OK) return rc;
            continue;
        } else if (str_ieq(name, "mgrpRFC822MailMember")) {
            char *a = dir_addr_normalize(value);
            if (!a) {
                sv_push_owned(&w->notes, xasprintf("%s: mgrpRFC822MailMember is not an address: %s", g->dn, value));
                continue;
            }
            free(a);
            key = addr_key(value);
        } else {
            continue;
        }
        bool known = walk_known(w, key, dn, &m);
        free(key);
        free(dn);
        if (!known) continue;
        sl_result rc = SL_OK;
        if (m) rc = walk_member(w, m, depth, value);
        else if (str_ieq(name, "mgrpRFC822MailMember")) walk_add(w, value); /* external: the router takes it */
        else sv_push_owned(&w->notes, xasprintf("member %s names no entry", value));
        if (rc != SL_OK) return rc;
    }
    return SL_OK;
}

/* walk_root - the expansion of the address asked, as far as the entries fetched allow. */
static sl_result walk_root(walk *w)
{
    char *key = addr_key(w->r->name);
    ld_entry *e;
    bool known = walk_known(w, key, NULL, &e);
    free(key);
    if (!known) return SL_OK;
    if (!e) {
        snprintf(w->why, sizeof w->why, "no such user");
        return SL_PERM;
    }
    if (entry_kind(e) == ENT_USER) {
        if (user_disabled(w, e)) {
            snprintf(w->why, sizeof w->why, "mailbox disabled");
            return SL_PERM;
        }
        walk_user(w, e);
        return SL_OK;
    }
    sl_result rc = walk_group(w, e, 1);
    if (rc == SL_OK && !w->need.n && w->out.n == 0) {
        snprintf(w->why, sizeof w->why, "group has no deliverable members");
        rc = SL_PERM;
    }
    return rc;
}

static void walk_free(walk *w)
{
    sv_free(&w->out);
    dcache_free(w->seen);
    dcache_free(w->groups);
    sv_free(&w->need);
    sv_free(&w->need_dn);
    dcache_free(w->needset);
    sv_free(&w->notes);
}

/* expand_answer - the walk is complete: log its data notes, answer, free r. */
static void expand_answer(ld_req *r, walk *w, sl_result rc)
{
    for (size_t i = 0; i < w->notes.n; i++) {
        r->be->n.data_errors++;
        log_warn(NULL, "ldap_data_error", "expand=<%s> error=\"%s\"", r->name, w->notes.v[i]);
    }
    void *arg = r->arg;
    dir_expand_cb cb = r->xcb;
    strvec out = {0};
    if (rc == SL_OK) {
        out = w->out;
        w->out = (strvec){0};
    }
    char why[sizeof w->why];
    memcpy(why, w->why, sizeof why);
    walk_free(w);
    req_free(r);
    cb(arg, rc, out, why);
}

/* expand_fetch - start fetching key (the entry at dn, or the owner of an address when dn is ""); the
 * cache may know it already: then it is resolved now and false returned. */
static bool expand_fetch(ld_req *r, const char *key, const char *dn)
{
    ld_be *be = r->be;
    void *hit;
    if (dcache_get(be->entries, key, now_s(), &hit)) {
        be->n.ent_hits++;
        dcache_put(r->resolved, key, hit ? ld_entry_ref(hit) : NULL, INT64_MAX, 0);
        return false;
    }
    be->n.ent_misses++;
    if (strncmp(key, "u:", 2) == 0) { /* a memberURL (checked by the walk) */
        ld_url u;
        if (ld_url_parse(key + 2, &u, NULL, 0) < 0) abort();
        char *f = xasprintf("(&%s(|(objectClass=mailUser)(objectClass=mailGroup)(objectClass=inetOrgPerson)))", u.filter);
        req_search_start(r, SRCH_MEMBER_URL, *u.dn ? u.dn : be->base_dn, (int)u.scope, f, EXPAND_MAX_FETCHES, key);
        free(f);
        ld_url_free(&u);
    } else if (*dn) {
        req_search_start(r, SRCH_DN, dn, LDAP_SCOPE_BASE, "(objectClass=*)", 1, key);
    } else {
        char *f = addr_filter(key + 2);
        req_search_start(r, SRCH_ADDR, be->base_dn, LDAP_SCOPE_SUBTREE, f, 2, key);
        free(f);
    }
    return true;
}

/* expand_run - walk; fetch what the walk needs, or answer when it needs nothing. */
static void expand_run(ld_req *r)
{
    for (;;) {
        walk w = {.r = r, .schema = &r->be->schema};
        w.seen = dcache_new(SIZE_MAX, NULL);
        w.groups = dcache_new(SIZE_MAX, NULL);
        w.needset = dcache_new(SIZE_MAX, NULL);
        sl_result rc = walk_root(&w);
        if (rc == SL_TEMP || !w.need.n) return expand_answer(r, &w, rc);
        bool waiting = false;
        for (size_t i = 0; i < w.need.n; i++) {
            if (++r->fetched > EXPAND_MAX_FETCHES) {
                walk_free(&w);
                return req_data_error(r, "expand", "group too large to expand (more than 10000 entries to fetch)");
            }
            if (expand_fetch(r, w.need.v[i], w.need_dn.v[i])) waiting = true;
        }
        walk_free(&w);
        if (waiting) return;
    }
}

/* member_url_found - a memberURL's search: a made-up entry (member: each DN found) under key,
 * and each entry found under its DN; then the walk goes on when nothing else is awaited. */
static void member_url_found(ld_req *r, const char *key, const ld_answer *a)
{
    ld_entry *m = xcalloc(1, sizeof *m);
    m->refs = 1;
    m->dn = xasprintf("memberURL:%s", key + 2);
    for (size_t i = 0; a->rc == SL_OK && i < a->n; i++) {
        sv_push(&m->names, "member");
        sv_push(&m->values, a->entries[i]->dn);
        char *dk = dn_key(a->entries[i]->dn);
        entry_remember(r->be, dk, a->entries[i]);
        dcache_put(r->resolved, dk, ld_entry_ref(a->entries[i]), INT64_MAX, 0);
        free(dk);
    }
    entry_remember(r->be, key, m);
    dcache_put(r->resolved, key, m, INT64_MAX, 0); /* our reference goes to the question */
    if (r->nsrch == 0) expand_run(r);
}

/* expand_searched - an entry the walk needed has come: remember it, walk again when all have. */
static void expand_searched(ld_req *r, req_search *rs, const ld_answer *a)
{
    const char *key = rs->key;
    if (a->rc == SL_TEMP) return req_failed_search(r, "expand", a->error);
    ld_entry *e = NULL;
    if (rs->what == SRCH_MEMBER_URL) {
        if (a->truncated) return req_data_error(r, "expand", "a memberURL selects more than 10000 entries");
        return member_url_found(r, key, a);
    }
    if (rs->what == SRCH_ADDR) {
        if (a->rc == SL_PERM) return req_failed_search(r, "expand", "ldap_base_dn does not exist");
        if (!addr_result(r, a, key + 2, &e)) return;
    } else if (a->rc == SL_OK && a->n >= 1) {
        e = a->entries[0];
    }
    entry_remember(r->be, key, e);
    dcache_put(r->resolved, key, e ? ld_entry_ref(e) : NULL, INT64_MAX, 0);
    if (r->nsrch == 0) expand_run(r);
}

static void ldb_expand(void *bep, const char *addr, dir_expand_cb cb, void *arg)
{
    ld_be *be = bep;
    if (!be->attached) {
        cb(arg, SL_TEMP, (strvec){0}, "directory not connected");
        return;
    }
    ld_req *r = req_new(be, REQ_EXPAND, addr, arg);
    r->xcb = cb;
    r->resolved = dcache_new(SIZE_MAX, ld_entry_unref);
    expand_run(r);
}

/* ---- LDAP URLs (dynamic broadcaster lists) ---- */

/* url_answer - answer r (and free it). */
static void url_answer(ld_req *r, sl_result rc, const char *why)
{
    if (rc != SL_TEMP) { /* a definite answer is cached like an entry (a match) or its absence */
        ld_entry *yes = NULL;
        if (rc == SL_OK) {
            yes = xcalloc(1, sizeof *yes);
            yes->refs = 1;
            yes->dn = xstrdup(r->name);
        }
        entry_remember(r->be, r->url.key, yes);
        ld_entry_unref(yes);
    }
    void *arg = r->arg;
    dir_match_cb cb = r->mcb;
    req_free(r);
    cb(arg, rc, why);
}

/* url_try_dn - no address matched: the sender's own entry, if it lies in the URL's scope. */
static void url_try_dn(ld_req *r)
{
    if (!r->url.dn || !ld_dn_in_scope(r->url.dn, r->url.base, (enum ld_scope)r->url.scope))
        return url_answer(r, SL_PERM, "");
    req_search_start(r, SRCH_URL_DN, r->url.dn, LDAP_SCOPE_BASE, r->url.filter, 1, NULL);
}

/* url_searched - the URL's search with the addresses, or the sender's entry read with its filter. */
static void url_searched(ld_req *r, enum srch_what what, const ld_answer *a)
{
    if (a->rc == SL_TEMP) return req_failed_search(r, "url", a->error);
    if (a->rc == SL_OK && (a->n || a->truncated)) return url_answer(r, SL_OK, "");
    if (a->rc == SL_PERM && what == SRCH_URL_ADDR) /* nothing lies under a base that does not exist */
        log_warn(NULL, "ldap_data_error", "url=<%s> error=\"the base DN %s does not exist\"", r->name, r->url.base);
    if (what == SRCH_URL_ADDR && a->rc == SL_OK) return url_try_dn(r);
    url_answer(r, SL_PERM, "");
}

/* url_key - the entry cache key of the answer about the URL (canonical name) for who: "m:",
 * then the URL, the addresses and the normalised DN separated by newlines (which none holds). */
static char *url_key(const char *name, const dir_who *who)
{
    strbuf k;
    sb_init(&k);
    sb_printf(&k, "m:%s", name);
    for (size_t i = 0; who->addrs && i < who->addrs->n; i++) {
        char *a = str_lower(xstrdup(who->addrs->v[i]));
        sb_printf(&k, "\n%s", a);
        free(a);
    }
    char *dn = who->dn ? ld_dn_normalize(who->dn) : xstrdup("");
    sb_printf(&k, "\n\n%s", dn);
    free(dn);
    return sb_steal(&k);
}

/* ldb_url_match - dir_url_match: one search with the URL's filter and the sender's addresses. */
static void ldb_url_match(void *bep, const ld_url *u, const dir_who *who, dir_match_cb cb, void *arg)
{
    ld_be *be = bep;
    if (!be->attached) {
        cb(arg, SL_TEMP, "directory not connected");
        return;
    }
    char *name = xasprintf("ldap:///%s??%s?%s", u->dn, u->scope == LD_SCOPE_BASE ? "base" : u->scope == LD_SCOPE_ONE ? "one" : "sub",
                           u->filter);
    ld_req *r = req_new(be, REQ_URL, name, arg);
    free(name);
    r->mcb = cb;
    r->url.base = xstrdup(*u->dn ? u->dn : be->base_dn);
    r->url.filter = xstrdup(u->filter);
    r->url.dn = who->dn ? xstrdup(who->dn) : NULL;
    r->url.scope = (int)u->scope;
    r->url.key = url_key(r->name, who);
    void *hit;
    if (dcache_get(be->entries, r->url.key, now_s(), &hit)) {
        be->n.ent_hits++;
        void *a = r->arg;
        req_free(r); /* answered from the cache: not stored again (its time to live stands) */
        cb(a, hit ? SL_OK : SL_PERM, "");
        return;
    }
    be->n.ent_misses++;
    if (!who->addrs || !who->addrs->n) return url_try_dn(r);
    /* one search: the URL's filter and any of the sender's addresses */
    strbuf f;
    sb_init(&f);
    sb_printf(&f, "(&%s(|", u->filter);
    for (size_t i = 0; i < who->addrs->n; i++) {
        static const char *const attrs[] = {"mail", "mailAlternateAddress", "mailEquivalentAddress"};
        for (size_t k = 0; k < SL_ARRAY_LEN(attrs); k++) {
            sb_printf(&f, "(%s=", attrs[k]);
            ld_filter_escape(&f, who->addrs->v[i]);
            sb_putc(&f, ')');
        }
    }
    sb_puts(&f, "))");
    req_search_start(r, SRCH_URL_ADDR, r->url.base, r->url.scope, f.data, 1, NULL);
    sb_free(&f);
}

/* ---- search answers ---- */

static void on_search(void *arg, const ld_answer *a)
{
    req_search *rs = arg;
    ld_req *r = rs->r;
    enum srch_what what = rs->what;
    char *key = rs->key;
    rs->key = NULL;
    req_search_done(r, rs);
    if (r->kind == REQ_DOMAIN) {
        domain_searched(r, what, a);
    } else if (r->kind == REQ_URL) {
        url_searched(r, what, a);
    } else if (r->kind == REQ_LOOKUP) {
        ld_entry *e;
        if (a->rc == SL_TEMP) req_failed_search(r, "addr", a->error);
        else if (a->rc == SL_PERM) req_failed_search(r, "addr", "ldap_base_dn does not exist");
        else if (addr_result(r, a, r->name, &e)) {
            entry_remember(r->be, key, e);
            lookup_answer(r, e);
        }
    } else {
        req_search tmp = {r, NULL, what, key};
        expand_searched(r, &tmp, a);
    }
    free(key);
}

/* ---- the backend ---- */

static void ldb_stats(void *bep, size_t *domains, size_t *users)
{
    ld_be *be = bep;
    *domains = dcache_count(be->domains);
    *users = dcache_count(be->entries);
}

static void ldb_free(void *bep)
{
    ld_be *be = bep;
    while (be->reqs) req_fail(be->reqs); /* their sessions are gone: the answers are dropped */
    ld_pool_free(be->pool);
    dcache_free(be->domains);
    dcache_free(be->entries);
    dir_schema_free(&be->schema);
    free(be->base_dn);
    free(be);
}

static void ldb_attach(void *bep, struct event_base *base)
{
    ld_be *be = bep;
    if (be->attached) return;
    be->attached = true;
    ld_pool_start(be->pool, base);
}

static void ldb_counters(void *bep, strbuf *out)
{
    ld_be *be = bep;
    ld_pool_counters c;
    ld_pool_get_counters(be->pool, &c);
    sb_printf(out, "directory: ldap (%zu URI%s, base %s)\n", be->n_uris, be->n_uris == 1 ? "" : "s", be->base_dn);
    sb_printf(out,
              "directory searches: domain=%" PRIu64 " address=%" PRIu64 " dn=%" PRIu64 " url=%" PRIu64 " sent=%" PRIu64 "\n",
              be->n.dom_searches, be->n.addr_searches, be->n.dn_searches, be->n.url_searches, c.sent);
    sb_printf(out,
              "directory cache: domain_hits=%" PRIu64 " domain_misses=%" PRIu64 " domains=%zu address_hits=%" PRIu64
              " address_misses=%" PRIu64 " entries=%zu\n",
              be->n.dom_hits, be->n.dom_misses, dcache_count(be->domains), be->n.ent_hits, be->n.ent_misses,
              dcache_count(be->entries));
    sb_printf(out,
              "directory errors: failed=%" PRIu64 " timeouts=%" PRIu64 " server=%" PRIu64 " data=%" PRIu64 "\n",
              be->n.failures, c.timeouts, c.server_errors, be->n.data_errors);
    sb_printf(out,
              "directory connections: up=%u size=%u connects=%" PRIu64 " reconnects=%" PRIu64 " failed=%" PRIu64 "\n",
              c.up, c.size, c.connects, c.reconnects, c.connect_failures);
}

static const dir_backend ldap_ops = {"ldap", ldb_domain, ldb_expand, ldb_lookup, ldb_stats, ldb_free};
static const dir_backend_extra ldap_extra = {ldb_attach, ldb_counters, NULL, ldb_url_match};

sl_dir *dir_open_ldap(const sl_options *opt, conf_errors *errs)
{
    if (!opt->ldap_uris.n || !opt->ldap_base_dn) {
        conf_error(errs, "option.dat", 0, "the LDAP directory needs ldap_uri and ldap_base_dn");
        return NULL;
    }
    ld_be *be = xcalloc(1, sizeof *be);
    if (dir_schema_from_options(&be->schema, opt) < 0) abort(); /* option table out of step with schema.c */
    be->base_dn = xstrdup(opt->ldap_base_dn);
    be->timeout_s = opt->ldap_timeout;
    be->n_uris = opt->ldap_uris.n;
    be->domains = dcache_new(opt->ldap_domain_cache_size, ld_entry_unref);
    be->entries = dcache_new(opt->ldap_cache_size, ld_entry_unref);
    be->dom_ttl = opt->ldap_domain_cache_ttl;
    be->dom_neg_ttl = opt->ldap_domain_cache_negative_ttl;
    be->ent_ttl = opt->ldap_cache_ttl;
    be->ent_neg_ttl = opt->ldap_cache_negative_ttl;
    /* the attributes every search asks for: what the backend reads itself and what the schema maps */
    strvec attrs = {0};
    for (size_t i = 0; i < SL_ARRAY_LEN(fixed_attrs); i++) sv_push(&attrs, fixed_attrs[i]);
    strvec mapped = {0};
    dir_schema_attrs(&be->schema, &mapped);
    for (size_t i = 0; i < mapped.n; i++)
        if (!sv_contains_ci(&attrs, mapped.v[i])) sv_push(&attrs, mapped.v[i]);
    sv_free(&mapped);
    sv_push_owned(&attrs, NULL);
    be->pool = ld_pool_new(opt, (const char *const *)attrs.v);
    sv_free(&attrs);
    return dir_new_extra(&ldap_ops, &ldap_extra, be);
}

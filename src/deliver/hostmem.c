/*
 * hostmem.c - the memory of failing MX hosts per destination (see hostmem.h). Destinations and
 * hosts are short arrays searched linearly: only destinations with a failing host are kept,
 * and a destination has a handful of MX hosts.
 */
#include "deliver/hostmem.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    int64_t until; /* forgotten at this time */
} mem_host;

typedef struct {
    char *dest;
    mem_host hosts[HOSTMEM_HOSTS]; /* in the order to try them */
    size_t n;
} mem_dest;

struct mx_memory;

struct hostmem {
    mem_dest *dests;
    size_t n, cap;
    struct mx_memory *mx; /* the MX hosts of domains (created at the first hostmem_mx_learn) */
};

static void mx_free(struct mx_memory *mm);

hostmem *hostmem_new(void)
{
    return xcalloc(1, sizeof(hostmem));
}

/* dest_clear - release a destination's strings. */
static void dest_clear(mem_dest *d)
{
    for (size_t i = 0; i < d->n; i++) free(d->hosts[i].name);
    free(d->dest);
    d->n = 0;
}

void hostmem_free(hostmem *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) dest_clear(&m->dests[i]);
    free(m->dests);
    mx_free(m->mx);
    free(m);
}

/* dest_find - the destination's entry, or NULL. */
static mem_dest *dest_find(hostmem *m, const char *dest)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->dests[i].dest, dest)) return &m->dests[i];
    return NULL;
}

/* dest_drop - remove entry i (the last one takes its place). */
static void dest_drop(hostmem *m, size_t i)
{
    dest_clear(&m->dests[i]);
    m->dests[i] = m->dests[--m->n];
}

/* dest_latest - when the destination's last remembered failure expires. */
static int64_t dest_latest(const mem_dest *d)
{
    int64_t t = INT64_MIN;
    for (size_t i = 0; i < d->n; i++)
        if (d->hosts[i].until > t) t = d->hosts[i].until;
    return t;
}

/* dest_evict - make room by dropping the destination whose failures are the oldest. */
static void dest_evict(hostmem *m)
{
    size_t oldest = 0;
    for (size_t i = 1; i < m->n; i++)
        if (dest_latest(&m->dests[i]) < dest_latest(&m->dests[oldest])) oldest = i;
    dest_drop(m, oldest);
}

/* dest_add - a new, empty entry for dest. */
static mem_dest *dest_add(hostmem *m, const char *dest)
{
    if (m->n == HOSTMEM_DESTS) dest_evict(m);
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->dests = xrealloc(m->dests, m->cap * sizeof *m->dests);
    }
    mem_dest *d = &m->dests[m->n++];
    memset(d, 0, sizeof *d);
    d->dest = xstrdup(dest);
    return d;
}

/* host_find - index of host in d (case-insensitive), or d->n. */
static size_t host_find(const mem_dest *d, const char *host)
{
    size_t i = 0;
    while (i < d->n && !str_ieq(d->hosts[i].name, host)) i++;
    return i;
}

/* host_remove - take host i out of d, keeping the order of the others; returns it. */
static mem_host host_remove(mem_dest *d, size_t i)
{
    mem_host h = d->hosts[i];
    memmove(&d->hosts[i], &d->hosts[i + 1], (d->n - i - 1) * sizeof *d->hosts);
    d->n--;
    return h;
}

/* dest_expire - forget d's hosts whose time is over; drop d when none is left. */
static void dest_expire(hostmem *m, mem_dest *d, int64_t now)
{
    for (size_t i = 0; i < d->n;) {
        if (d->hosts[i].until > now) {
            i++;
            continue;
        }
        free(host_remove(d, i).name);
    }
    if (!d->n) dest_drop(m, (size_t)(d - m->dests));
}

void hostmem_failed(hostmem *m, const char *dest, const char *host, int64_t now)
{
    mem_dest *d = dest_find(m, dest);
    if (!d) d = dest_add(m, dest);
    size_t i = host_find(d, host);
    if (i == d->n) {
        if (d->n == HOSTMEM_HOSTS) free(host_remove(d, 0).name); /* the first in line makes room */
        i = d->n++;
        d->hosts[i].name = xstrdup(host);
    }
    d->hosts[i].until = now + HOSTMEM_HOLD;
}

void hostmem_to_back(hostmem *m, const char *dest, const char *host)
{
    mem_dest *d = dest_find(m, dest);
    if (!d) return;
    size_t i = host_find(d, host);
    if (i == d->n) return;
    mem_host h = host_remove(d, i);
    d->hosts[d->n++] = h;
}

void hostmem_ok(hostmem *m, const char *dest, const char *host)
{
    mem_dest *d = dest_find(m, dest);
    if (!d) return;
    size_t i = host_find(d, host);
    if (i < d->n) free(host_remove(d, i).name);
    if (!d->n) dest_drop(m, (size_t)(d - m->dests));
}

void hostmem_failing(hostmem *m, const char *dest, int64_t now, strvec *out)
{
    mem_dest *d = dest_find(m, dest);
    if (!d) return;
    dest_expire(m, d, now);
    d = dest_find(m, dest); /* dest_expire may have dropped it */
    for (size_t i = 0; d && i < d->n; i++) sv_push(out, d->hosts[i].name);
}

/* ---- the MX hosts of domains: a chained hash plus a list in the order they were learnt ---- */

#define MX_BUCKETS 4096

typedef struct mx_ent {
    char *domain; /* lower case */
    char *names[HOSTMEM_MX_NAMES];
    size_t n;
    int64_t until;
    struct mx_ent *chain;       /* same bucket */
    struct mx_ent *older, *newer; /* learning order */
} mx_ent;

typedef struct mx_memory {
    mx_ent *buckets[MX_BUCKETS];
    mx_ent *oldest, *newest;
    size_t n;
} mx_memory;

/* mx_mem - m's MX memory, created on first use (so that a daemon without mx: entries pays nothing). */
static mx_memory *mx_mem(hostmem *m, bool create)
{
    if (!m->mx && create) m->mx = xcalloc(1, sizeof *m->mx);
    return m->mx;
}

/* mx_hash - bucket of a domain (FNV-1a over its lower-case bytes). */
static size_t mx_hash(const char *d)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)d; *p; p++) {
        unsigned char c = *p >= 'A' && *p <= 'Z' ? (unsigned char)(*p + 32) : *p;
        h = (h ^ c) * 16777619u;
    }
    return h % MX_BUCKETS;
}

/* mx_names_clear - free an entry's host names. */
static void mx_names_clear(mx_ent *e)
{
    for (size_t i = 0; i < e->n; i++) free(e->names[i]);
    e->n = 0;
}

/* mx_drop - unlink and free e. */
static void mx_drop(mx_memory *mm, mx_ent *e)
{
    for (mx_ent **pp = &mm->buckets[mx_hash(e->domain)]; *pp; pp = &(*pp)->chain)
        if (*pp == e) {
            *pp = e->chain;
            break;
        }
    if (e->older) e->older->newer = e->newer;
    else mm->oldest = e->newer;
    if (e->newer) e->newer->older = e->older;
    else mm->newest = e->older;
    mx_names_clear(e);
    free(e->domain);
    free(e);
    mm->n--;
}

/* mx_free - release the MX memory (NULL allowed). */
static void mx_free(mx_memory *mm)
{
    if (!mm) return;
    while (mm->oldest) mx_drop(mm, mm->oldest);
    free(mm);
}

/* mx_find - domain's entry, or NULL. */
static mx_ent *mx_find(mx_memory *mm, const char *domain)
{
    for (mx_ent *e = mm->buckets[mx_hash(domain)]; e; e = e->chain)
        if (str_ieq(e->domain, domain)) return e;
    return NULL;
}

/* mx_append - put e last in the learning order. */
static void mx_append(mx_memory *mm, mx_ent *e)
{
    e->newer = NULL;
    e->older = mm->newest;
    if (mm->newest) mm->newest->newer = e;
    else mm->oldest = e;
    mm->newest = e;
}

void hostmem_mx_learn(hostmem *m, const char *domain, const dns_mx *mx, size_t n, int64_t now)
{
    unsigned best = UINT32_MAX;
    for (size_t i = 0; i < n; i++)
        if (mx[i].host[0] && mx[i].pref < best) best = mx[i].pref;
    if (best == UINT32_MAX) return; /* a null MX: nothing to group by */
    mx_memory *mm = mx_mem(m, true);
    mx_ent *e = mx_find(mm, domain);
    if (e) { /* learnt afresh: to the end of the order */
        if (e->older) e->older->newer = e->newer;
        else mm->oldest = e->newer;
        if (e->newer) e->newer->older = e->older;
        else mm->newest = e->older;
        mx_names_clear(e);
    } else {
        if (mm->n == HOSTMEM_MX_DOMAINS) mx_drop(mm, mm->oldest);
        e = xcalloc(1, sizeof *e);
        e->domain = str_lower(xstrdup(domain));
        size_t b = mx_hash(domain);
        e->chain = mm->buckets[b];
        mm->buckets[b] = e;
        mm->n++;
    }
    mx_append(mm, e);
    for (size_t i = 0; i < n && e->n < HOSTMEM_MX_NAMES; i++)
        if (mx[i].host[0] && mx[i].pref == best) e->names[e->n++] = xstrdup(mx[i].host);
    e->until = now + HOSTMEM_MX_HOLD;
}

size_t hostmem_mx_find(hostmem *m, const char *domain, int64_t now, const char *names[HOSTMEM_MX_NAMES])
{
    mx_memory *mm = mx_mem(m, false);
    mx_ent *e = mm ? mx_find(mm, domain) : NULL;
    if (!e) return 0;
    if (e->until <= now) {
        mx_drop(mm, e);
        return 0;
    }
    for (size_t i = 0; i < e->n; i++) names[i] = e->names[i];
    return e->n;
}

/*
 * dcache.c - the bounded answer cache (see dcache.h): a chained hash table of lower-cased keys,
 * with every entry also on a doubly linked list in order of use (head: most recent), so that
 * eviction takes the tail in constant time.
 */
#include "dir/dcache.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

typedef struct dc_node {
    char *key; /* lower case */
    void *val; /* NULL: negative */
    int64_t expires;
    struct dc_node *chain;       /* next in the bucket */
    struct dc_node *prev, *next; /* use order */
} dc_node;

struct dcache {
    dc_node **buckets;
    size_t nbuckets; /* a power of two, or 0 */
    size_t n, max;
    dc_node *head, *tail;
    dcache_free_fn free_val;
};

/* key_hash - FNV-1a over the lower-cased key. */
static uint64_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)tolower((unsigned char)*s);
        h *= 1099511628211ULL;
    }
    return h;
}

dcache *dcache_new(size_t max, dcache_free_fn free_val)
{
    dcache *c = xcalloc(1, sizeof *c);
    c->max = max;
    c->free_val = free_val;
    return c;
}

/* use_unlink - take n off the use list. */
static void use_unlink(dcache *c, dc_node *n)
{
    if (n->prev) n->prev->next = n->next;
    else c->head = n->next;
    if (n->next) n->next->prev = n->prev;
    else c->tail = n->prev;
    n->prev = n->next = NULL;
}

/* use_push - make n the most recently used. */
static void use_push(dcache *c, dc_node *n)
{
    n->next = c->head;
    n->prev = NULL;
    if (c->head) c->head->prev = n;
    c->head = n;
    if (!c->tail) c->tail = n;
}

/* slot_of - the link that points at key's node, or at the NULL ending its bucket. */
static dc_node **slot_of(const dcache *c, const char *key)
{
    dc_node **p = &c->buckets[key_hash(key) & (c->nbuckets - 1)];
    while (*p && strcasecmp((*p)->key, key) != 0) p = &(*p)->chain;
    return p;
}

/* node_drop - remove the node *slot points at and free it with its value. */
static void node_drop(dcache *c, dc_node **slot)
{
    dc_node *n = *slot;
    *slot = n->chain;
    use_unlink(c, n);
    if (n->val && c->free_val) c->free_val(n->val);
    free(n->key);
    free(n);
    c->n--;
}

/* table_grow - double the buckets (keeps chains short). */
static void table_grow(dcache *c)
{
    size_t nb = c->nbuckets ? c->nbuckets * 2 : 64;
    dc_node **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (dc_node *n = c->buckets[i], *next; n; n = next) {
            next = n->chain;
            size_t k = key_hash(n->key) & (nb - 1);
            n->chain = b[k];
            b[k] = n;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

bool dcache_get(dcache *c, const char *key, int64_t now, void **val)
{
    *val = NULL;
    if (!c->n) return false;
    dc_node **slot = slot_of(c, key);
    dc_node *n = *slot;
    if (!n) return false;
    if (n->expires <= now) {
        node_drop(c, slot);
        return false;
    }
    use_unlink(c, n);
    use_push(c, n);
    *val = n->val;
    return true;
}

void dcache_put(dcache *c, const char *key, void *val, int64_t expires, int64_t now)
{
    if (c->max == 0 || expires <= now) {
        if (val && c->free_val) c->free_val(val);
        return;
    }
    if (c->nbuckets == 0 || c->n >= c->nbuckets) table_grow(c);
    dc_node **slot = slot_of(c, key);
    if (*slot) node_drop(c, slot);
    while (c->n >= c->max) node_drop(c, slot_of(c, c->tail->key));
    dc_node *n = xcalloc(1, sizeof *n);
    n->key = str_lower(xstrdup(key));
    n->val = val;
    n->expires = expires;
    slot = slot_of(c, key); /* eviction may have changed the bucket's chain */
    n->chain = *slot;
    *slot = n;
    use_push(c, n);
    c->n++;
}

size_t dcache_count(const dcache *c)
{
    return c->n;
}

void dcache_free(dcache *c)
{
    if (!c) return;
    while (c->head) node_drop(c, slot_of(c, c->head->key));
    free(c->buckets);
    free(c);
}

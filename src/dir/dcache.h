/*
 * dcache.h - a bounded cache of directory answers: case-insensitive string keys, a value or a
 * negative entry (no value: "there is no such thing"), an expiry time per entry and least-recently
 * used eviction when full. Pure: the caller passes the time (any monotonic clock, in seconds), so
 * a test drives expiry directly. The cache owns its values and frees them with the function given
 * at creation. One thread (the LDAP backend's loop).
 */
#ifndef SLUICE_DIR_DCACHE_H
#define SLUICE_DIR_DCACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dcache dcache;
typedef void (*dcache_free_fn)(void *val);

/* dcache_new - a cache of at most max entries (0: nothing is ever kept); free_val releases values. */
dcache *dcache_new(size_t max, dcache_free_fn free_val);
/* dcache_free - release the cache and every value (NULL allowed). */
void dcache_free(dcache *c);
/* dcache_get - whether key has an entry still valid at now (expired ones are dropped); *val is its
 * value (borrowed: valid until the next put or free), NULL for a negative entry. A hit makes the
 * entry the most recently used. */
bool dcache_get(dcache *c, const char *key, int64_t now, void **val);
/* dcache_put - store val (NULL: a negative entry) under key until expires, replacing any entry
 * of that key; when full, the least recently used entry goes first. The cache takes val, and
 * frees it at once when it keeps nothing (max 0 or expires <= now). */
void dcache_put(dcache *c, const char *key, void *val, int64_t expires, int64_t now);
/* dcache_count - entries held (expired ones not yet dropped included). */
size_t dcache_count(const dcache *c);

#endif

/*
 * dir.h - the directory interface: the questions recipient policy and AUTH ask (is this domain
 * ours, what does this address deliver to, who is this user), answered by a backend behind a
 * table of operations. The embedded LDIF directory (dir/embedded.h) is the first backend; an
 * LDAP backend answers the same questions asynchronously.
 *
 * Every lookup answers OK, PERM (a definite no: not our domain, no such user) or TEMP (cannot
 * tell now: never to be turned into a 5xx, DESIGN.md §1 problem 3) through a callback, which a
 * backend may call before the lookup function returns (the embedded one does) or later on the
 * loop. Answers belong to the caller. A directory is reference-counted: the daemon holds the
 * current one (sl_ctx.dir), a session holds the one it started with, and a reload swaps in a
 * new one without disturbing sessions under way. Loop thread only (a backend may use threads).
 */
#ifndef SLUICE_DIR_H
#define SLUICE_DIR_H
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "core/util.h"

typedef struct sl_dir sl_dir;

/* A user or group entry, as AUTH and policy need it (owned by whoever got it). */
typedef struct {
    char *mail;     /* primary address */
    char *status;   /* mailUserStatus / inetUserStatus, NULL = active */
    char *password; /* userPassword as stored, NULL if none */
    bool is_group;
} dir_user;

/* dir_domain_cb - OK: a domain of ours; PERM: not ours; TEMP: cannot tell now. */
typedef void (*dir_domain_cb)(void *arg, sl_result res);
/* dir_expand_cb - OK: targets (the caller frees them with sv_free); PERM: why says why (no such
 * user, mailbox disabled, ...); TEMP: cannot tell now. */
typedef void (*dir_expand_cb)(void *arg, sl_result res, strvec targets, const char *why);
/* dir_user_cb - OK: *u filled (the caller frees it with dir_user_free); PERM: no such entry; TEMP. */
typedef void (*dir_user_cb)(void *arg, sl_result res, dir_user *u);

/* The operations of a backend; be is its state. */
typedef struct {
    const char *name;
    void (*domain)(void *be, const char *domain, dir_domain_cb cb, void *arg);
    void (*expand)(void *be, const char *addr, dir_expand_cb cb, void *arg);
    void (*user)(void *be, const char *addr, dir_user_cb cb, void *arg);
    void (*stats)(void *be, size_t *domains, size_t *users);
    void (*free)(void *be);
} dir_backend;

/* dir_new - a directory over backend ops with state be (one reference, the caller's). */
sl_dir *dir_new(const dir_backend *ops, void *be);
/* dir_open_embedded - the embedded backend from the LDIF file at path (absent: an empty
 * directory); NULL when the file has errors (added to errs as "file:line: message"). */
sl_dir *dir_open_embedded(const char *path, conf_errors *errs);
/* dir_ref - take a reference; returns d. */
sl_dir *dir_ref(sl_dir *d);
/* dir_unref - drop a reference; the last one frees the directory (NULL allowed). */
void dir_unref(sl_dir *d);
/* dir_domain - whether domain is one of ours. */
void dir_domain(sl_dir *d, const char *domain, dir_domain_cb cb, void *arg);
/* dir_expand - the final delivery addresses of addr (a user's mailbox or forwarding addresses,
 * a group's members expanded recursively, duplicates removed). */
void dir_expand(sl_dir *d, const char *addr, dir_expand_cb cb, void *arg);
/* dir_user_lookup - the user or group whose address is addr. */
void dir_user_lookup(sl_dir *d, const char *addr, dir_user_cb cb, void *arg);
/* dir_user_free - release what a dir_user holds. */
void dir_user_free(dir_user *u);
/* dir_backend_name - "embedded", "ldap". */
const char *dir_backend_name(const sl_dir *d);
/* dir_stats - numbers of domains and users, for logs and `sluice check`. */
void dir_stats(const sl_dir *d, size_t *domains, size_t *users);

#endif

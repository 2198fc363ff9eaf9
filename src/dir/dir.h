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
#include <stdint.h>

#include "conf/conf.h"
#include "core/util.h"

typedef struct sl_dir sl_dir;

/* Content scanners a recipient or domain may opt in to (option.dat ldap_optinN, N = 1..8). */
#define DIR_OPTINS 8

/* A domain as the directory describes it (values as stored: the policy interprets statuses). */
typedef struct {
    char *name;
    char *status[2];         /* inetDomainStatus, mailDomainStatus; NULL when absent */
    uint64_t msg_max_blocks; /* mailDomainMsgMaxBlocks, 0 = no limit */
    unsigned rcpt_limit;     /* recipients per message for its senders, 0 = no limit */
    unsigned rcpt_cutoff;    /* over this many the whole transaction is refused, 0 = none */
    char *optin[DIR_OPTINS]; /* ldap_domain_attr_optinN: the values joined by ",", NULL when absent */
} dir_domain_info;

/* A user or group entry (owned by whoever got it: dir_entry_free). */
typedef struct {
    char *dn;
    bool is_group;
    char *mail;              /* primary address */
    char *status[2];         /* user: inetUserStatus, mailUserStatus; group: inetGroupStatus,
                                inetMailGroupStatus; NULL when absent */
    char *password;          /* userPassword as stored, NULL if none */
    uint64_t msg_max_blocks; /* mailMsgMaxBlocks, 0 = no limit */
    uint64_t msg_max_bytes;  /* mgrpMsgMaxSize (groups), 0 = no limit */
    unsigned rcpt_limit, rcpt_cutoff; /* as a sender, 0 = none */
    char *reject_text;       /* mailRejectText */
    char *submit_channel;    /* mailSMTPSubmitChannel */
    /* groups: who may submit, and what happens to refused mail */
    strvec allowed_broadcasters, disallowed_broadcasters; /* mgrpAllowedBroadcaster, ... (address, DN or URL) */
    strvec allowed_domains, disallowed_domains;           /* mgrpAllowedDomain, ... (globs) */
    char *broadcaster_policy;  /* mgrpBroadcasterPolicy, e.g. SMTP_AUTH_REQUIRED */
    strvec moderators;         /* mgrpModerator */
    char *reject_action;       /* mgrpMsgRejectAction, e.g. TOMODERATOR */
    /* content scanning (doc/scanning.md) */
    char *optin[DIR_OPTINS];   /* ldap_optinN (e.g. mailAntiUBEService): the values joined by ",", NULL when absent */
    char *sieve;               /* mailSieveRuleSource: the user's own Sieve filter, NULL when none */
} dir_entry;

/* dir_domain_cb - OK: a domain of ours, *info filled (the caller frees it with
 * dir_domain_info_free; NULL info allowed for backends that know only the name); PERM: not
 * ours; TEMP: cannot tell now. */
typedef void (*dir_domain_cb)(void *arg, sl_result res, dir_domain_info *info);
/* dir_expand_cb - OK: targets (the caller frees them with sv_free); PERM: why says why (no such
 * user, mailbox disabled, ...); TEMP: cannot tell now. */
typedef void (*dir_expand_cb)(void *arg, sl_result res, strvec targets, const char *why);
/* dir_entry_cb - OK: *e filled (the caller frees it with dir_entry_free); PERM: no such entry; TEMP. */
typedef void (*dir_entry_cb)(void *arg, sl_result res, dir_entry *e);
/* dir_match_cb - OK: an entry the LDAP URL selects is the sender's; PERM: none is; TEMP: cannot
 * tell now (why says why, for the log). */
typedef void (*dir_match_cb)(void *arg, sl_result res, const char *why);

struct ld_url;
/* Who a dir_url_match asks about: addresses compared with mail / mailAlternateAddress /
 * mailEquivalentAddress, and the sender's own entry (NULL: unknown). */
typedef struct {
    const strvec *addrs;
    const char *dn;
} dir_who;

/* The operations of a backend; be is its state. */
typedef struct {
    const char *name;
    void (*domain)(void *be, const char *domain, dir_domain_cb cb, void *arg);
    void (*expand)(void *be, const char *addr, dir_expand_cb cb, void *arg);
    void (*lookup)(void *be, const char *addr, dir_entry_cb cb, void *arg);
    void (*stats)(void *be, size_t *domains, size_t *users);
    void (*free)(void *be);
} dir_backend;

/* Operations only some backends have (any may be NULL): kept apart from dir_backend so that a
 * backend that needs none of them fills nothing more. */
struct event_base;
typedef struct {
    /* attach: the daemon's loop is running; a backend that talks to servers starts now */
    void (*attach)(void *be, struct event_base *base);
    /* counters: the backend's figures, as lines appended to out */
    void (*counters)(void *be, strbuf *out);
    /* notes: warnings about the data or settings (not errors), one per string, appended to out */
    void (*notes)(void *be, strvec *out);
    /* url_match: dir_url_match with the URL parsed (answer through cb, possibly before returning) */
    void (*url_match)(void *be, const struct ld_url *u, const dir_who *who, dir_match_cb cb, void *arg);
} dir_backend_extra;

/* dir_new - a directory over backend ops with state be (one reference, the caller's). */
sl_dir *dir_new(const dir_backend *ops, void *be);
/* dir_new_extra - dir_new with the optional operations of extra (which must outlive the directory). */
sl_dir *dir_new_extra(const dir_backend *ops, const dir_backend_extra *extra, void *be);
/* dir_open_embedded - the embedded backend from the LDIF file at path (absent: an empty
 * directory); NULL when the file has errors (added to errs as "file:line: message"). */
sl_dir *dir_open_embedded(const char *path, conf_errors *errs);
/* dir_open_embedded_opts - dir_open_embedded reading the attribute names of opt (the ldap_*
 * remapping options), so that both backends read the same attributes. */
sl_dir *dir_open_embedded_opts(const char *path, const sl_options *opt, conf_errors *errs);
/* dir_open_ldap - the LDAP backend the ldap_* options of opt describe (opt->ldap_uris not empty).
 * Nothing is contacted until dir_attach; until then every lookup answers TEMP. NULL with errs
 * filled when the options cannot work. */
sl_dir *dir_open_ldap(const sl_options *opt, conf_errors *errs);
/* dir_attach - the daemon's loop runs: backends that talk to servers start connecting (a no-op
 * for the embedded one). Called once per directory, on the loop thread. */
void dir_attach(sl_dir *d, struct event_base *base);
/* dir_counters - the backend's figures (searches, cache hits and misses, errors, reconnects) as
 * text lines appended to out, for `sluice queue stats`; nothing for a backend without any. */
void dir_counters(const sl_dir *d, strbuf *out);
/* dir_notes - warnings about the directory's data or settings, for `sluice check` and the log. */
void dir_notes(const sl_dir *d, strvec *out);
/* dir_ref - take a reference; returns d. */
sl_dir *dir_ref(sl_dir *d);
/* dir_unref - drop a reference; the last one frees the directory (NULL allowed). */
void dir_unref(sl_dir *d);
/* dir_domain - whether domain is one of ours, and what the directory says of it. */
void dir_domain(sl_dir *d, const char *domain, dir_domain_cb cb, void *arg);
/* dir_domain_info_free - release what a dir_domain_info holds (NULL allowed). */
void dir_domain_info_free(dir_domain_info *i);
/* dir_expand - the final delivery addresses of addr (a user's mailbox or forwarding addresses,
 * a group's members expanded recursively, duplicates removed). */
void dir_expand(sl_dir *d, const char *addr, dir_expand_cb cb, void *arg);
/* dir_lookup - the user or group whose address (mail, mailAlternateAddress or
 * mailEquivalentAddress) is addr. */
void dir_lookup(sl_dir *d, const char *addr, dir_entry_cb cb, void *arg);
/* dir_url_match - whether an entry that the LDAP URL url (RFC 4516: base DN, scope, filter; the
 * host is ignored, the directory's own servers are asked; an empty base DN is the directory's
 * base) selects has one of who->addrs as mail or mailAlternateAddress, or is the entry who->dn:
 * Messaging Server's dynamic broadcaster lists. A malformed URL, or a filter a backend cannot
 * evaluate, is TEMP (logged by the caller with why), never a guess. */
void dir_url_match(sl_dir *d, const char *url, const dir_who *who, dir_match_cb cb, void *arg);
/* dir_entry_free - release what a dir_entry holds (NULL allowed). */
void dir_entry_free(dir_entry *e);
/* dir_backend_name - "embedded", "ldap". */
const char *dir_backend_name(const sl_dir *d);
/* dir_stats - numbers of domains and users, for logs and `sluice check`. */
void dir_stats(const sl_dir *d, size_t *domains, size_t *users);

#endif

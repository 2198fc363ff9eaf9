/*
 * dir.h - the directory: local domains, users, aliases/groups (DESIGN.md §2). The embedded
 * backend is loaded from directory.ldif into in-memory hash tables at configuration load and
 * is immutable afterwards, so any thread may query it. A later LDAP backend answers the same
 * questions (possibly asynchronously); a lookup that cannot be answered is SL_TEMP, never
 * "no such user" (DESIGN.md §1 problem 3).
 *
 * Entry kinds (by objectClass): mailDomain (domain name from associatedDomain, else the dc=
 * components of the DN), mailUser / inetOrgPerson with mail (a user), mailGroup (an alias: mail
 * plus members from mgrpRFC822MailMember addresses and member DNs). Users may have
 * mailAlternateAddress (more addresses), mailForwardingAddress (deliver there instead),
 * mailDeliveryOption (forward + "mailbox" keeps a local copy), mailUserStatus
 * (active default; "inactive"/"deleted" reject at RCPT), uid, userPassword.
 */
#ifndef SLUICE_DIR_H
#define SLUICE_DIR_H
#include <stdbool.h>

#include "conf/conf.h"
#include "core/util.h"

enum dir_kind { DIR_DOMAIN, DIR_USER, DIR_GROUP };

typedef struct dir_entry {
    char *dn;
    enum dir_kind kind;
    char *mail;        /* primary address (lower-case domain) */
    strvec alt;        /* mailAlternateAddress */
    strvec forward;    /* mailForwardingAddress */
    bool keep_mailbox; /* mailDeliveryOption: mailbox together with forwarding */
    char *status;      /* mailUserStatus / mailDomainStatus, NULL = active */
    char *uid;
    char *password;    /* userPassword as stored */
    strvec members;    /* groups: member addresses (member DNs resolved at load) */
    char *domain;      /* DIR_DOMAIN: the domain name */
    int line;          /* line of the entry in the LDIF */
} dir_entry;

typedef struct sl_directory sl_directory;

/* dir_load_ldif - parse LDIF text; NULL if errors were added to errs. */
sl_directory *dir_load_ldif(const char *file, const char *text, conf_errors *errs);
/* dir_free - release a directory. */
void dir_free(sl_directory *d);
/* dir_domain_is_local - whether domain is a domain of the directory (case-insensitive). */
bool dir_domain_is_local(const sl_directory *d, const char *domain);
/* dir_lookup - the user or group whose mail or alternate address is addr (domain and local part case-insensitive), or NULL. */
const dir_entry *dir_lookup(const sl_directory *d, const char *addr);
/*
 * dir_expand - final delivery addresses for addr: a user's primary address (and/or forwarding
 * addresses), a group's members expanded recursively (depth-bounded, duplicates removed).
 * SL_OK with out filled; SL_PERM when addr is not in the directory (err says why).
 */
sl_result dir_expand(const sl_directory *d, const char *addr, strvec *out, char *err, size_t errlen);
/* dir_domain_count / dir_user_count - sizes, for logs. */
size_t dir_domain_count(const sl_directory *d);
size_t dir_user_count(const sl_directory *d);
/* dir_first_domain - the first domain in file order (for the default setup's banner), or NULL. */
const char *dir_first_domain(const sl_directory *d);

#endif

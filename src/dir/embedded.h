/*
 * embedded.h - the embedded directory backend: directory.ldif loaded into in-memory hash tables,
 * immutable afterwards, so any thread may query it synchronously. The rest of Sluice reaches it
 * through the directory interface (dir/dir.h, dir_open_embedded); these functions are for that
 * adapter and for unit tests.
 *
 * Entry kinds (by objectClass): mailDomain (domain name from associatedDomain, else the dc=
 * components of the DN), mailUser / inetOrgPerson with mail (a user), mailGroup (an alias: mail
 * plus members from mgrpRFC822MailMember addresses and member DNs). Users may have
 * mailAlternateAddress and mailEquivalentAddress (more addresses), mailForwardingAddress (deliver there instead),
 * mailDeliveryOption (forward + "mailbox" keeps a local copy), mailUserStatus
 * (active default; "inactive"/"deleted" reject at RCPT), uid, userPassword.
 */
#ifndef SLUICE_DIR_EMBEDDED_H
#define SLUICE_DIR_EMBEDDED_H
#include <stdbool.h>

#include "conf/conf.h"
#include "core/util.h"
#include "dir/schema.h"

enum emb_kind { EMB_DOMAIN, EMB_USER, EMB_GROUP };

typedef struct emb_entry {
    char *dn;
    enum emb_kind kind;
    char *mail;        /* primary address (lower-case domain) */
    strvec alt;        /* mailAlternateAddress */
    strvec forward;    /* mailForwardingAddress */
    bool keep_mailbox; /* mailDeliveryOption: mailbox together with forwarding */
    char *status;      /* mailUserStatus / mailDomainStatus, NULL = active */
    char *uid;
    char *password;    /* userPassword as stored */
    strvec members;    /* groups: member addresses (member DNs resolved at load) */
    char *domain;      /* EMB_DOMAIN: the domain name */
    int line;          /* line of the entry in the LDIF */
    int rec;           /* index of its LDIF record (embedded_values) */
} emb_entry;

typedef struct embedded_dir embedded_dir;

/* embedded_load_ldif - parse LDIF text; NULL if errors were added to errs. */
embedded_dir *embedded_load_ldif(const char *file, const char *text, conf_errors *errs);
/* embedded_free - release a directory. */
void embedded_free(embedded_dir *d);
/* embedded_domain_is_local - whether domain is a domain of the directory (case-insensitive). */
bool embedded_domain_is_local(const embedded_dir *d, const char *domain);
/* embedded_domain - the domain entry of domain (case-insensitive), or NULL. */
const emb_entry *embedded_domain(const embedded_dir *d, const char *domain);
/* embedded_values - the values of attribute name (any case) of entry e, appended to out. */
void embedded_values(const embedded_dir *d, const emb_entry *e, const char *name, strvec *out);
/* embedded_lookup - the user or group whose mail or alternate address is addr (domain and local part case-insensitive), or NULL. */
const emb_entry *embedded_lookup(const embedded_dir *d, const char *addr);
/*
 * embedded_expand - final delivery addresses for addr: a user's primary address (and/or forwarding
 * addresses), a group's members expanded recursively (depth-bounded, duplicates removed).
 * SL_OK with out filled; SL_PERM when addr is not in the directory (err says why).
 */
sl_result embedded_expand(const embedded_dir *d, const char *addr, strvec *out, char *err, size_t errlen);
/* embedded_expand_schema - embedded_expand with the disabled rule reading schema's attribute names. */
sl_result embedded_expand_schema(const embedded_dir *d, const dir_schema *schema, const char *addr,
                                 strvec *out, char *err, size_t errlen);
struct ld_url;
/* embedded_url_match - whether a user or group in the scope of u (base DN and scope; an empty
 * base is the whole directory) matching its filter has one of addrs (mail or alternate address)
 * or is the entry dn (NULL: none): SL_OK, SL_PERM, or SL_TEMP with why set when the filter holds
 * an assertion that cannot be evaluated without a server. */
sl_result embedded_url_match(const embedded_dir *d, const struct ld_url *u, const strvec *addrs, const char *dn,
                             char *why, size_t whylen);
/* embedded_notes - the loader's warnings ("file:line: warning: ..."), appended to out. */
void embedded_notes(const embedded_dir *d, strvec *out);
/* embedded_domain_count / embedded_user_count - sizes, for logs. */
size_t embedded_domain_count(const embedded_dir *d);
size_t embedded_user_count(const embedded_dir *d);
/* embedded_first_domain - the first domain in file order (for the default setup's banner), or NULL. */
const char *embedded_first_domain(const embedded_dir *d);

#endif

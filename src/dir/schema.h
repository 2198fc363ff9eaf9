/*
 * schema.h - the attribute names the directory reads, and the one place that turns an entry's
 * attributes into a dir_entry or dir_domain_info, for every backend (the embedded LDIF one and
 * LDAP). The names are those of the Sun/Oracle Messaging Server schema (etc/sluice.schema);
 * each can be remapped (option.dat ldap_* options, as Messaging Server names them). Pure; any
 * thread.
 */
#ifndef SLUICE_DIR_SCHEMA_H
#define SLUICE_DIR_SCHEMA_H
#include "dir/dir.h"

/* What each field of dir_entry / dir_domain_info is read from (attribute names, any case). */
typedef struct {
    /* domains */
    char *domain_status, *domain_mail_status;  /* inetDomainStatus, mailDomainStatus */
    char *domain_blocklimit;                   /* mailDomainMsgMaxBlocks */
    char *domain_rcptlimit, *domain_rcptcutoff;/* mailDomainRecipientLimit, mailDomainRecipientCutoff */
    /* users and groups */
    char *user_status, *user_mail_status;      /* inetUserStatus, mailUserStatus */
    char *group_status, *group_mail_status;    /* inetGroupStatus, inetMailGroupStatus */
    char *blocklimit;                          /* mailMsgMaxBlocks */
    char *group_maxsize;                       /* mgrpMsgMaxSize */
    char *rcptlimit, *rcptcutoff;              /* mailRecipientLimit, mailRecipientCutoff */
    char *reject_text;                         /* mailRejectText */
    char *submit_channel;                      /* mailSMTPSubmitChannel */
    char *allowed_broadcaster, *disallowed_broadcaster; /* mgrpAllowedBroadcaster, mgrpDisallowedBroadcaster */
    char *allowed_domain, *disallowed_domain;  /* mgrpAllowedDomain, mgrpDisallowedDomain */
    char *broadcaster_policy;                  /* mgrpBroadcasterPolicy */
    char *moderator;                           /* mgrpModerator */
    char *reject_action;                       /* mgrpMsgRejectAction */
    /* content scanning: "" = not read */
    char *optin[DIR_OPTINS];                   /* ldap_optin1..8 (none by default) */
    char *domain_optin[DIR_OPTINS];            /* ldap_domain_attr_optin1..8 (none by default) */
    char *sieve;                               /* mailSieveRuleSource (option ldap_filter) */
} dir_schema;

/* dir_values_fn - the values of attribute name (compared case-insensitively) of the entry src,
 * appended to out. */
typedef void (*dir_values_fn)(const void *src, const char *name, strvec *out);

/* dir_schema_defaults - the Messaging Server names (every field set; free with dir_schema_free). */
void dir_schema_defaults(dir_schema *s);
/* dir_schema_free - release the names. */
void dir_schema_free(dir_schema *s);
/* dir_schema_set - remap the field named key ("user_status", "domain_blocklimit", ...) to attr;
 * -1 if no field has that name. */
int dir_schema_set(dir_schema *s, const char *key, const char *attr);
/* dir_schema_from_options - the defaults, then the ldap_* remapping of opt (opt->dir_attrs) in
 * order; -1 if a field named there does not exist (an option table out of step with this file). */
int dir_schema_from_options(dir_schema *s, const sl_options *opt);
/* dir_schema_attrs - every attribute name of s, appended to out (what a search must ask for). */
void dir_schema_attrs(const dir_schema *s, strvec *out);
/* dir_user_disabled - whether a user's values say its mailbox takes no mail (user_mail_status
 * inactive, deleted or disabled): the rule by which group expansion skips a member and expansion
 * of the user itself fails "mailbox disabled", the same in every backend. */
bool dir_user_disabled(const dir_schema *s, dir_values_fn values, const void *src);
/* dir_domain_valid - a DNS name: labels of letters, digits, '-' and '_', none empty. */
bool dir_domain_valid(const char *s);
/* dir_addr_normalize - "local@domain" with the domain lower-cased (the local part as written), or
 * NULL when addr is not such an address (caller frees). */
char *dir_addr_normalize(const char *addr);
/* dir_domain_fill - *out (zeroed first) from the attributes of a domain entry named name. */
void dir_domain_fill(const dir_schema *s, dir_values_fn values, const void *src, const char *name,
                     dir_domain_info *out);
/* dir_entry_fill - the policy fields of *out from the attributes of a user or group entry (dn,
 * mail, password and is_group are the backend's to set). */
void dir_entry_fill(const dir_schema *s, dir_values_fn values, const void *src, bool is_group, dir_entry *out);

#endif

/*
 * schema.c - attribute names and the entry mapping shared by the backends (see schema.h).
 */
#include "dir/schema.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* One remappable field: its option key, its default attribute, where it lives in dir_schema. */
typedef struct {
    const char *key;
    const char *attr;
    size_t off;
} schema_field;

#define F(k, a) {#k, a, offsetof(dir_schema, k)}
#define FK(key, k, a) {key, a, offsetof(dir_schema, k)}
static const schema_field fields[] = {
    F(domain_status, "inetDomainStatus"),       F(domain_mail_status, "mailDomainStatus"),
    F(domain_blocklimit, "mailDomainMsgMaxBlocks"), F(domain_rcptlimit, "mailDomainRecipientLimit"),
    F(domain_rcptcutoff, "mailDomainRecipientCutoff"), F(user_status, "inetUserStatus"),
    F(user_mail_status, "mailUserStatus"),      F(group_status, "inetGroupStatus"),
    F(group_mail_status, "inetMailGroupStatus"), F(blocklimit, "mailMsgMaxBlocks"),
    F(group_maxsize, "mgrpMsgMaxSize"),         F(rcptlimit, "mailRecipientLimit"),
    F(rcptcutoff, "mailRecipientCutoff"),       F(reject_text, "mailRejectText"),
    F(submit_channel, "mailSMTPSubmitChannel"), F(allowed_broadcaster, "mgrpAllowedBroadcaster"),
    F(disallowed_broadcaster, "mgrpDisallowedBroadcaster"), F(allowed_domain, "mgrpAllowedDomain"),
    F(disallowed_domain, "mgrpDisallowedDomain"), F(broadcaster_policy, "mgrpBroadcasterPolicy"),
    F(moderator, "mgrpModerator"),              F(reject_action, "mgrpMsgRejectAction"),
    FK("optin1", optin[0], ""), FK("optin2", optin[1], ""), FK("optin3", optin[2], ""), FK("optin4", optin[3], ""),
    FK("optin5", optin[4], ""), FK("optin6", optin[5], ""), FK("optin7", optin[6], ""), FK("optin8", optin[7], ""),
    FK("domain_optin1", domain_optin[0], ""), FK("domain_optin2", domain_optin[1], ""), FK("domain_optin3", domain_optin[2], ""), FK("domain_optin4", domain_optin[3], ""),
    FK("domain_optin5", domain_optin[4], ""), FK("domain_optin6", domain_optin[5], ""), FK("domain_optin7", domain_optin[6], ""), FK("domain_optin8", domain_optin[7], ""),
    F(sieve, "mailSieveRuleSource"),
};
#undef F
#undef FK

static char **field_at(dir_schema *s, const schema_field *f)
{
    return (char **)((char *)s + f->off);
}

void dir_schema_defaults(dir_schema *s)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < SL_ARRAY_LEN(fields); i++) *field_at(s, &fields[i]) = xstrdup(fields[i].attr);
}

void dir_schema_free(dir_schema *s)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(fields); i++) free(*field_at(s, &fields[i]));
    memset(s, 0, sizeof *s);
}

int dir_schema_set(dir_schema *s, const char *key, const char *attr)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(fields); i++) {
        if (strcmp(fields[i].key, key) != 0) continue;
        free(*field_at(s, &fields[i]));
        *field_at(s, &fields[i]) = xstrdup(attr);
        return 0;
    }
    return -1;
}

int dir_schema_from_options(dir_schema *s, const sl_options *opt)
{
    dir_schema_defaults(s);
    for (size_t i = 0; i + 1 < opt->dir_attrs.n; i += 2)
        if (dir_schema_set(s, opt->dir_attrs.v[i], opt->dir_attrs.v[i + 1]) < 0) return -1;
    return 0;
}

void dir_schema_attrs(const dir_schema *s, strvec *out)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(fields); i++) {
        const char *name = *field_at((dir_schema *)s, &fields[i]);
        if (*name) sv_push(out, name); /* "" = an attribute not read */
    }
}

/* first_value - the first value of name, or NULL (caller frees). */
static char *first_value(dir_values_fn values, const void *src, const char *name)
{
    strvec v = {0};
    values(src, name, &v);
    char *out = v.n ? xstrdup(v.v[0]) : NULL;
    sv_free(&v);
    return out;
}

/* joined_values - every value of name joined by ",", or NULL when none ("" names: none). */
static char *joined_values(dir_values_fn values, const void *src, const char *name)
{
    if (!*name) return NULL;
    strvec v = {0};
    values(src, name, &v);
    char *out = v.n ? sv_join(&v, ",") : NULL;
    sv_free(&v);
    return out;
}

/* number_value - the first value of name as a number; 0 when absent or not a number. */
static uint64_t number_value(dir_values_fn values, const void *src, const char *name)
{
    char *v = first_value(values, src, name);
    uint64_t n = 0;
    if (v && parse_uint(v, 0, UINT64_MAX, &n) < 0) n = 0;
    free(v);
    return n;
}

/* count_value - number_value bounded to unsigned. */
static unsigned count_value(dir_values_fn values, const void *src, const char *name)
{
    uint64_t n = number_value(values, src, name);
    return n > 0xffffffffu ? 0xffffffffu : (unsigned)n;
}

bool dir_user_disabled(const dir_schema *s, dir_values_fn values, const void *src)
{
    char *v = first_value(values, src, s->user_mail_status);
    bool off = str_ieq(v, "inactive") || str_ieq(v, "deleted") || str_ieq(v, "disabled");
    free(v);
    return off;
}

void dir_domain_fill(const dir_schema *s, dir_values_fn values, const void *src, const char *name,
                     dir_domain_info *out)
{
    memset(out, 0, sizeof *out);
    out->name = xstrdup(name);
    out->status[0] = first_value(values, src, s->domain_status);
    out->status[1] = first_value(values, src, s->domain_mail_status);
    out->msg_max_blocks = number_value(values, src, s->domain_blocklimit);
    out->rcpt_limit = count_value(values, src, s->domain_rcptlimit);
    out->rcpt_cutoff = count_value(values, src, s->domain_rcptcutoff);
    for (size_t i = 0; i < DIR_OPTINS; i++) out->optin[i] = joined_values(values, src, s->domain_optin[i]);
}

void dir_entry_fill(const dir_schema *s, dir_values_fn values, const void *src, bool is_group, dir_entry *out)
{
    out->is_group = is_group;
    out->status[0] = first_value(values, src, is_group ? s->group_status : s->user_status);
    out->status[1] = first_value(values, src, is_group ? s->group_mail_status : s->user_mail_status);
    out->msg_max_blocks = number_value(values, src, s->blocklimit);
    out->msg_max_bytes = is_group ? number_value(values, src, s->group_maxsize) : 0;
    out->rcpt_limit = count_value(values, src, s->rcptlimit);
    out->rcpt_cutoff = count_value(values, src, s->rcptcutoff);
    out->reject_text = first_value(values, src, s->reject_text);
    out->submit_channel = first_value(values, src, s->submit_channel);
    for (size_t i = 0; i < DIR_OPTINS; i++) out->optin[i] = joined_values(values, src, s->optin[i]);
    if (*s->sieve) {
        strvec v = {0};
        values(src, s->sieve, &v);
        if (v.n) out->sieve = sv_join(&v, "\n"); /* several values: one script, in order */
        sv_free(&v);
    }
    if (!is_group) return;
    values(src, s->allowed_broadcaster, &out->allowed_broadcasters);
    values(src, s->disallowed_broadcaster, &out->disallowed_broadcasters);
    values(src, s->allowed_domain, &out->allowed_domains);
    values(src, s->disallowed_domain, &out->disallowed_domains);
    out->broadcaster_policy = first_value(values, src, s->broadcaster_policy);
    values(src, s->moderator, &out->moderators);
    out->reject_action = first_value(values, src, s->reject_action);
}

bool dir_domain_valid(const char *s)
{
    size_t label = 0;
    if (!*s || strlen(s) > 253) return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63) return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

char *dir_addr_normalize(const char *addr)
{
    const char *at = strrchr(addr, '@');
    if (!at || at == addr || strlen(addr) > 320) return NULL;
    for (const char *p = addr; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f) return NULL;
        if (c == '@' && addr[0] != '"') return NULL;
    }
    if (!dir_domain_valid(at + 1)) return NULL;
    char *out = xstrdup(addr);
    str_lower(out + (at - addr) + 1);
    return out;
}

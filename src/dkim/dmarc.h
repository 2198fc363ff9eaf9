/*
 * dmarc.h - the pure parts of DMARC (RFC 7489): the public suffix list (Debian's publicsuffix
 * package) and the organizational domain (§3.2), identifier alignment (§3.1), the _dmarc TXT
 * record (§6.3) and the evaluation of one message from its SPF and DKIM results (§6.6.2).
 * No DNS: the caller fetches the record.
 *
 * Threads: the list is loaded at configuration load and read-only afterwards; any thread.
 */
#ifndef SLUICE_DMARC_H
#define SLUICE_DMARC_H
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

typedef struct dmarc_psl dmarc_psl;

/* dmarc_psl_load - the public suffix list in file (rules, "*." wildcards, "!" exceptions); NULL + errs. */
dmarc_psl *dmarc_psl_load(const char *file, conf_errors *errs);
/* dmarc_psl_parse - the list from text (for tests). */
dmarc_psl *dmarc_psl_parse(const char *text);
/* dmarc_psl_free - release l (NULL allowed). */
void dmarc_psl_free(dmarc_psl *l);
/* dmarc_org_domain - the organizational domain of domain (lower case): its public suffix plus
 * one label; domain itself when it is a public suffix. Caller frees. */
char *dmarc_org_domain(const dmarc_psl *l, const char *domain);
/* dmarc_aligned - a and b are aligned: equal (strict), or of the same organizational domain (relaxed). */
bool dmarc_aligned(const dmarc_psl *l, const char *a, const char *b, bool strict);

typedef enum { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT } dmarc_policy;

/* A DMARC record (§6.3). */
typedef struct {
    dmarc_policy p, sp;
    bool sp_given;
    bool adkim_strict, aspf_strict;
    unsigned pct;
} dmarc_record;

/* dmarc_record_parse - a TXT string; 0, or -1 when it is not a valid DMARC record (no v=DMARC1 first, no valid p=). */
int dmarc_record_parse(const char *txt, dmarc_record *r);
/* dmarc_policy_name - "none", "quarantine", "reject". */
const char *dmarc_policy_name(dmarc_policy p);

#endif

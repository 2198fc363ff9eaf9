/*
 * rewrite.h - the rewrite-rule engine: routes an address to a channel (DESIGN.md §2, PMDF/
 * Messaging Server semantics, doc/configuration.md "Rewrite rules"). Pure: reads a loaded
 * sl_conf, no I/O. Any thread.
 *
 * Search: for local@a.b.c the rules whose pattern is "a.b.c" are tried, then the channel whose
 * official host name is a.b.c (channels with "rules"), then "*.b.c", ".b.c", "*.*.c", ".c",
 * "*.*.*" and ".". Domain literals shorten inside the brackets ("[1.2.3.4]", "[1.2.3.]", ...
 * "[]", "[*.*.*.*]", "."). Several rules with one pattern are tried in file order; a rule whose
 * conditions do not hold is skipped, and the first one whose conditions hold fires.
 * Templates: "A%B@C" (address A@B, routing host C), "A@B" (address A@B, routing host B),
 * "A%B" (rewrite A@B again), "$?text" alone (fail with text). Substitutions: $U $0U $1U $H $nH
 * $D $nD $L $$ $% $@. Conditions: $Mchan $Nchan (source channel), $Qchan $Cchan (destination
 * channel), $E $B (envelope / header), $F $R (forward To / backward From), $?text (error text),
 * $x00y00z?text (error text with status x.y.z). "$," ends the host part of "A%B..." (the text
 * after it up to the '@' is ignored). The routing host selects the channel whose official or
 * alias host name it is; if none has it, the routing host itself is rewritten again (bounded).
 */
#ifndef SLUICE_REWRITE_H
#define SLUICE_REWRITE_H
#include "conf/conf.h"
#include "core/util.h"

typedef struct {
    char *addr;                /* rewritten address "local@host" */
    char *host;                /* routing host */
    const sl_channel *channel; /* destination channel */
    char *error;               /* why rewriting failed (when the result is not SL_OK) */
    char status[12];           /* on failure: the DSN status, "5.1.2" unless a $x00y00z? rule said otherwise */
} rw_result;

/* Which address is rewritten: the $E/$B and $F/$R conditions test it. */
enum rw_kind {
    RW_ENV_TO = 0, /* envelope recipient (RCPT TO); the default */
    RW_ENV_FROM,   /* envelope sender (MAIL FROM) */
    RW_HDR_TO,     /* forward-pointing header address (To:, Cc:, ...) */
    RW_HDR_FROM    /* backward-pointing header address (From:, Sender:, ...) */
};

/* The context conditions are tested against. Strings are borrowed for the call. */
typedef struct {
    const char *src_channel; /* channel doing the rewriting ($M/$N); NULL: none, so $M fails and $N holds */
    const char *dst_channel; /* destination channel when known ($Q/$C); NULL: unknown, $Q/$C are ignored */
    enum rw_kind kind;       /* RW_ENV_TO unless said; $Q/$C are also ignored for RW_ENV_TO */
    const char *from;        /* envelope sender of the message, informational (NULL allowed) */
} rw_ctx;

/*
 * rewrite_address_ctx - route addr ("local@domain"; local part as written) in context ctx
 * (NULL: envelope To, no source channel). SL_OK fills out; SL_PERM (or SL_TEMP for a $4...?
 * error text) means no rule routes it: out->error says why, out->status gives the DSN status.
 * When trace is not NULL, one line per rule tried is appended to it.
 */
sl_result rewrite_address_ctx(const sl_conf *c, const char *addr, const rw_ctx *ctx, rw_result *out, strbuf *trace);
/*
 * rewrite_address - route the envelope recipient addr arriving from src_channel (see
 * rewrite_address_ctx). SL_OK fills out; otherwise out->error says why.
 */
sl_result rewrite_address(const sl_conf *c, const char *addr, const char *src_channel, rw_result *out, strbuf *trace);
/* rw_result_free - release the strings of a result. */
void rw_result_free(rw_result *r);
/* rewrite_split - split "local@domain" at the last '@' outside quotes; -1 if none. */
int rewrite_split(const char *addr, char **local, char **domain);

/* rewrite_template_check - 0 if tmpl is a valid template (see the top of this file); -1 with the
 * reason in err otherwise. conf uses it to reject bad rules at load. */
int rewrite_template_check(const char *tmpl, char *err, size_t errlen);
/* rewrite_rules_check - every rule template of c; each bad one is "file:line: bad template 'T':
 * reason" in errs. Returns the number of bad templates. */
int rewrite_rules_check(const sl_conf *c, const char *file, conf_errors *errs);
/* rewrite_template_lint - rewrite_template_check, and when tmpl is valid append to notes (if not
 * NULL) one line per construct that is accepted but worth telling the operator about, such as
 * how "$," is read. Notes carry no "file:line:" prefix. */
int rewrite_template_lint(const char *tmpl, char *err, size_t errlen, strvec *notes);
/* rewrite_conf_notes - for every rule of a loaded conf, append "file:line: note: ..." lines to
 * notes: the template notes of rewrite_template_lint and channel names in $M/$N/$Q/$C that no
 * channel has; and "file:line: warning: ..." for a template that copies a piece of its input
 * ($U, $H, $D or $L) more than once into the address or the routing host, so that each rewrite
 * can make it longer. Nothing is appended for a configuration without such constructs. */
void rewrite_conf_notes(const sl_conf *c, const char *file, strvec *notes);

#endif

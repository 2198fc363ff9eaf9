/*
 * rewrite.h - the rewrite-rule engine: routes an address to a channel (DESIGN.md §2, PMDF/
 * Messaging Server semantics). Pure: reads a loaded sl_conf, no I/O. Any thread.
 *
 * Search: for address local@host, try the rules whose pattern is the full host, then ".rest"
 * for each outward suffix (a.b.c -> .b.c -> .c), down to "."; the first rule found fires.
 * Templates: "A%B@C" (address A@B, routing host C), "A@B" (address A@B, routing host B),
 * "A%B" (rewrite A@B again). Substitutions: $U local part, $H unmatched host part (left of the
 * matched pattern, without the joining dot), $D matched part of the host ("" for "."), $$ $% $@
 * literal characters. The routing host selects the channel whose official or alias host name
 * it is; if no channel has it, the routing host itself is rewritten again (bounded loop).
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
} rw_result;

/*
 * rewrite_address - route addr ("local@domain"; local part as written) arriving from
 * src_channel. SL_OK fills out; SL_PERM means no rule routes it (out->error says why). When
 * trace is not NULL, one line per rule tried is appended to it.
 */
sl_result rewrite_address(const sl_conf *c, const char *addr, const char *src_channel, rw_result *out, strbuf *trace);
/* rw_result_free - release the strings of a result. */
void rw_result_free(rw_result *r);
/* rewrite_split - split "local@domain" at the last '@' outside quotes; -1 if none. */
int rewrite_split(const char *addr, char **local, char **domain);

/* rewrite_template_check - 0 if tmpl is a valid template ("A%B@C", "A@B", "A%B" with $U $H $D $$ $% $@);
 * -1 with the reason in err otherwise. conf uses it to reject bad rules at load. */
int rewrite_template_check(const char *tmpl, char *err, size_t errlen);

#endif

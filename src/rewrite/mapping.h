/*
 * mapping.h - Messaging Server mapping tables (the `mappings` file; doc/mappings.md): the parser
 * of the file and the matching engine that access control (PORT_ACCESS, FROM_ACCESS,
 * ORIG_SEND_ACCESS, SEND_ACCESS, ORIG_MAIL_ACCESS, MAIL_ACCESS) and `sluice test mapping` probe.
 *
 * File: a table name in column 1, indented "pattern template" entries, '!' comment lines, blank
 * lines ignored, '\' at the end of a line continues it, "<file" includes another file (relative
 * to the configuration directory, at most MAPPING_MAX_INCLUDE deep).
 * Patterns: case-insensitive; '*' any string, '%' one character, $A* $A% $B* $B% $D* $D% $H* $H%
 * $O* $O% character classes, $(10.0.0.0/8) and $(2001:db8::/32) one IP address in that network,
 * '$' quotes the next character. Each wildcard and IP pattern saves what it matched, numbered
 * from $0 left to right.
 * Templates: $0..$9 substitution, $Y allow, $N/$F reject, $W temporary reject, $D delay and $X
 * status code (arguments read from the front of the output), $C $E $L $R flow control, $:x $;x
 * input-flag tests, $|TABLE;arg| nested probe. An entry whose template fails (a flag test that
 * does not hold, a nested probe that does not set $Y) ends the mapping unless a $C, $L or $R
 * stands to the left of the failing part, as in Messaging Server.
 *
 * Ownership: mappings_parse returns a tree the caller frees with mappings_free; it is immutable
 * afterwards, so any thread may probe it concurrently. mapping_result strings are owned by the
 * result and released by mapping_result_free. Pure: no I/O except reading include files while
 * parsing.
 */
#ifndef SLUICE_MAPPING_H
#define SLUICE_MAPPING_H
#include <stdbool.h>

#include "conf/conf.h"
#include "core/util.h"

#define MAPPING_MAX_INCLUDE 8  /* nesting of "<file" includes */
#define MAPPING_MAX_PASSES 64  /* table passes per probe ($R restarts and $L extra passes) */
#define MAPPING_MAX_DEPTH 8    /* nesting of $|TABLE;arg| probes */
#define MAPPING_MAX_OUTPUT 8192 /* octets of one entry's output ("*  $0$0$R" doubles every pass) */

typedef struct sl_mappings sl_mappings;

/* The outcome of one probe. Zero-initialise before mapping_probe or not: it is overwritten. */
typedef struct {
    bool matched;          /* an entry succeeded; its output and flags below are the result */
    bool failed;           /* the mapping was ended by an entry whose template failed */
    bool ok_flag;          /* $Y */
    bool no_flag;          /* $N or $F: reject, output is the text */
    bool temp;             /* $W, or a $X status code of class 4: temporary (4xx) rejection */
    char *output;          /* final output string (never NULL), $D/$X arguments removed */
    char *status_code;     /* $X argument ("5.7.1", "4.7.0"), or NULL */
    unsigned delay_ms;     /* $D argument (hundredths of a second in the file) in milliseconds */
    unsigned delay_secs;   /* delay_ms rounded up to whole seconds */
    bool delay_addr_only;  /* the $D argument was negative: delay only MAIL/RCPT */
    char *entry_file;      /* file of the entry that decided (NULL when none) */
    int entry_line;        /* its line (0 when none) */
    char *entry_pattern;   /* its pattern as written (NULL when none) */
    strvec trace;          /* one line per entry tried, nested probes indented */
} mapping_result;

/*
 * mappings_parse - parse the mappings file text (file names it in errors; includes are read
 * relative to confdir). Every error is added to errs as "file:line: message"; returns NULL
 * if there was any, else a tree freed by mappings_free.
 */
sl_mappings *mappings_parse(const char *file, const char *text, const char *confdir, conf_errors *errs);
/* mappings_free - release a tree from mappings_parse (NULL is fine). */
void mappings_free(sl_mappings *m);
/* mappings_has_table - whether the file defines table name (case-insensitive). */
bool mappings_has_table(const sl_mappings *m, const char *name);
/* mappings_table_count - how many tables the file defines. */
size_t mappings_table_count(const sl_mappings *m);

/*
 * mapping_probe - run input through table (a missing table is no match). flags holds the input
 * flags set for $:x/$;x tests, letters such as "TAE" (T TLS, A authenticated, E ESMTP); NULL
 * or "" for none. Fills out (free with mapping_result_free) and returns SL_OK; SL_TEMP when the
 * pass, nesting or output limit was hit (a looping table: out->matched is false); SL_ERR for
 * NULL arguments.
 */
sl_result mapping_probe(const sl_mappings *m, const char *table, const char *input, const char *flags,
                        mapping_result *out);
/* mappings_relay_warnings - "file:line: warning: ..." for access-table entries that let anyone relay. */
void mappings_relay_warnings(const sl_mappings *m, strvec *out);
/* mapping_result_free - release what mapping_probe put in r and zero it. */
void mapping_result_free(mapping_result *r);

#endif

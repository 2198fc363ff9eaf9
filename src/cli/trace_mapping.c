/*
 * trace_mapping.c - "sluice test mapping TABLE STRING [--flags LETTERS] [-C DIR]" (see
 * trace_mapping.h). Loads CONFDIR/mappings with mappings_parse, so it works on the mappings
 * file alone, probes the table once and prints the trace and the result as "key = value" lines.
 */
#include "cli/cli.h"
#include "cli/trace_mapping.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "rewrite/mapping.h"

/* The parsed command line. */
typedef struct {
    const char *table;
    const char *input;
    const char *flags;
    const char *confdir;
} map_args;

static void map_usage(FILE *f)
{
    fputs("usage: sluice test mapping TABLE STRING [--flags LETTERS] [-C DIR]\n"
          "       LETTERS: input flags for $:x/$;x tests, e.g. TAE (T TLS, A authenticated, E ESMTP)\n",
          f);
}

/* flags_valid - letters only. */
static bool flags_valid(const char *s)
{
    for (; *s; s++)
        if (!isalpha((unsigned char)*s)) return false;
    return true;
}

/* map_parse_args - fill a from argv; -1 (after printing why) on a usage error. */
static int map_parse_args(int argc, char **argv, map_args *a)
{
    for (int i = 0; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = cli_option_value(argc, argv, &i, "--flags", &missing))) a->flags = v;
        else if ((v = cli_option_value(argc, argv, &i, "-C", &missing))) a->confdir = v;
        else if (missing) {
            fprintf(stderr, "sluice: option '%s' needs a value\n", argv[i]);
            return -1;
        } else if ((argv[i][0] == '-' && argv[i][1] == '-') || (a->table && a->input)) {
            fprintf(stderr, "sluice: unexpected argument '%s'\n", argv[i]);
            return -1;
        } else if (!a->table) {
            a->table = argv[i];
        } else {
            a->input = argv[i];
        }
    }
    if (!a->table || !a->input) {
        fputs("sluice: test mapping needs a TABLE and a STRING\n", stderr);
        return -1;
    }
    if (!flags_valid(a->flags)) {
        fprintf(stderr, "sluice: --flags takes letters only, not '%s'\n", a->flags);
        return -1;
    }
    return 0;
}

/* map_load - parse CONFDIR/mappings, printing every error; NULL when it does not load. */
static sl_mappings *map_load(const char *confdir)
{
    size_t n = strlen(confdir);
    char *path = xasprintf("%s%smappings", confdir, n && confdir[n - 1] == '/' ? "" : "/");
    conf_errors errs = {0};
    sl_mappings *m = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
        goto done;
    }
    strbuf text;
    char buf[8192];
    size_t got;
    sb_init(&text);
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) sb_append(&text, buf, got);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) fprintf(stderr, "%s: cannot read: I/O error\n", path);
    else m = mappings_parse(path, text.data ? text.data : "", confdir, &errs);
    sb_free(&text);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
done:
    free(path);
    return m;
}

/* result_word - what the access-control caller would do with r. */
static const char *result_word(const mapping_result *r)
{
    if (!r->matched) return "no match";
    if (r->temp) return "temporary reject";
    if (r->no_flag) return "reject";
    if (r->ok_flag) return "allow";
    return "matched";
}

/* map_print - the trace and the result lines. */
static void map_print(const map_args *a, const mapping_result *r, sl_result rc)
{
    printf("probing %s with '%s' (input flags: %s)\n", a->table, a->input, *a->flags ? a->flags : "none");
    for (size_t i = 0; i < r->trace.n; i++) printf("  %s\n", r->trace.v[i]);
    if (rc != SL_OK) {
        printf("result       = temporary failure (pass or nesting limit reached)\n");
        return;
    }
    printf("result       = %s%s\n", result_word(r), !r->matched && r->failed ? " (an entry failed and ended the mapping)" : "");
    printf("output       = %s\n", r->output);
    strbuf fl;
    sb_init(&fl);
    if (r->ok_flag) sb_puts(&fl, " allow($Y)");
    if (r->no_flag) sb_puts(&fl, " reject($N/$F)");
    if (r->temp) sb_puts(&fl, " temporary($W/$X4.x.x)");
    if (r->delay_ms) sb_puts(&fl, " delay($D)");
    if (r->status_code) sb_puts(&fl, " status-code($X)");
    printf("flags        = %s\n", fl.len ? fl.data + 1 : "(none)");
    sb_free(&fl);
    if (r->delay_ms) printf("delay        = %u ms%s\n", r->delay_ms, r->delay_addr_only ? " (MAIL/RCPT only)" : "");
    if (r->status_code) printf("status code  = %s\n", r->status_code);
    if (r->matched) printf("entry        = %s:%d '%s'\n", r->entry_file, r->entry_line, r->entry_pattern);
    else printf("entry        = (none)\n");
}

int cli_test_mapping(int argc, char **argv, const char *confdir)
{
    map_args a = {NULL, NULL, "", confdir ? confdir : "/etc/sluice"};
    if (map_parse_args(argc, argv, &a) != 0) {
        map_usage(stderr);
        return 2;
    }
    sl_mappings *m = map_load(a.confdir);
    if (!m) return 2;
    mapping_result r;
    sl_result rc = mapping_probe(m, a.table, a.input, a.flags, &r);
    if (!mappings_has_table(m, a.table)) fprintf(stderr, "sluice: note: no table %s in %s/mappings\n", a.table, a.confdir);
    map_print(&a, &r, rc);
    int status = rc == SL_OK && r.matched ? 0 : 1;
    mapping_result_free(&r);
    mappings_free(m);
    return status;
}

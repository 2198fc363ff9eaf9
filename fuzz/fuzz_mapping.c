/*
 * fuzz_mapping.c - the mappings file parser and the mapping engine (rewrite/mapping.h).
 *
 * Input: line 1 = "TABLE probe-input" (one probe of our own), line 2 = input flags ("TAE"...),
 * the rest = the mappings file. Every table the file names is also probed with a few inputs of
 * the forms the access checks build (PORT_ACCESS "TCP|ip|port|ip|port", *_ACCESS
 * "chan|from|to"), so patterns, wildcards, IP networks, substitutions and nested $|...| probes
 * all meet realistic text.
 *
 * Includes: "<name" reads name from a private directory made at start-up (an include file, a
 * file that includes itself); a name holding '/' would read anything on this machine, so such
 * inputs are skipped.
 *
 * Properties: a result always has an output; a failed probe (SL_TEMP: pass or nesting limit)
 * has no match; flags come only with a match ($Y together with $N is allowed: a reject wins, as
 * doc/mappings.md says); the parse fails exactly when it recorded errors, and the tables found
 * are no more than it counts.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "rewrite/mapping.h"

static char confdir[64];

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", confdir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) abort();
}

/* remove_confdir - at exit: the directory and its two files (a crash leaves them, with the input). */
static void remove_confdir(void)
{
    char path[128];
    static const char *const names[] = {"inc", "self"};
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++) {
        snprintf(path, sizeof path, "%s/%s", confdir, names[i]);
        unlink(path);
    }
    rmdir(confdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(confdir, sizeof confdir, "/tmp/sluice-fuzz-mapping-XXXXXX");
    if (!mkdtemp(confdir)) abort();
    write_file("inc", "INC_ACCESS\n  *|*|*@example.test  $Y\n  *  $NRelaying$ denied\n");
    write_file("self", "<self\n");
    atexit(remove_confdir);
    return 0;
}

/* includes_safe - whether every include of text names a file in confdir (no '/'). Logical lines
 * are joined as mapping.c joins them: a physical line (CR stripped) ending in '\' but not "$\"
 * continues on the next one. */
static bool includes_safe(const char *text)
{
    bool safe = true;
    strbuf logical;
    sb_init(&logical);
    for (const char *p = text; p && *p && safe;) {
        sb_reset(&logical);
        bool more = true;
        while (more && p && *p) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            if (n && p[n - 1] == '\r') n--;
            sb_append(&logical, p, n);
            p = nl ? nl + 1 : NULL;
            more = logical.len && logical.data[logical.len - 1] == '\\' &&
                   !(logical.len >= 2 && logical.data[logical.len - 2] == '$');
            if (more) logical.data[--logical.len] = '\0';
        }
        const char *l = logical.data ? logical.data : "";
        l += strspn(l, " \t");
        if (*l == '<' && strchr(l, '/')) safe = false;
    }
    sb_free(&logical);
    return safe;
}

static void check_result(const mapping_result *r, sl_result rc, const char *table, const char *input)
{
    FZ_CHECK(rc == SL_OK || rc == SL_TEMP, "probe of %s with '%s' returned %d", table, input, (int)rc);
    FZ_CHECK(r->output != NULL, "no output");
    if (rc == SL_TEMP) FZ_CHECK(!r->matched, "a failed probe matched");
    if (!r->matched) FZ_CHECK(!r->ok_flag && !r->no_flag, "flags without a match");
}

static void probe(const sl_mappings *m, const char *table, const char *input, const char *flags)
{
    mapping_result r;
    sl_result rc = mapping_probe(m, table, input, flags, &r);
    check_result(&r, rc, table, input);
    mapping_result_free(&r);
}

static const char *const inputs[] = {
    "TCP|192.0.2.1|25|198.51.100.7|40000",
    "TCP|2001:db8::1|587|2001:db8::7|40000",
    "tcp_local|alice@example.test|bob@other.test",
    "tcp_local|<>|postmaster@example.test",
    "tcp_intranet|a@b|c@d",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    size_t len;
    char *first = fz_line(&in, &len), *flags = fz_line(&in, &len);
    char *text = fz_text(in.p, in.n);
    if (!includes_safe(text)) goto out;

    conf_errors errs = {0};
    sl_mappings *m = mappings_parse("mappings", text, confdir, &errs);
    FZ_CHECK((m == NULL) == (errs.msgs.n > 0), "parse result and errors disagree");
    if (m) {
        strvec warn = {0};
        mappings_relay_warnings(m, &warn);
        sv_free(&warn);
        char *sp = strchr(first, ' ');
        if (sp) *sp = '\0';
        probe(m, first, sp ? sp + 1 : "", flags);
        /* the table names of the file: lines in column 1 (a continued line may look like one too,
         * so each name is probed once and the distinct names are compared with the count) */
        strvec names = {0};
        for (const char *p = text; p && *p && names.n < 8;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            if (n && p[0] != ' ' && p[0] != '\t' && p[0] != '!' && p[0] != '<') {
                char *name = xstrndup(p, n);
                name[strcspn(name, "\r \t")] = '\0';
                if (mappings_has_table(m, name) && !sv_contains_ci(&names, name)) {
                    sv_push(&names, name);
                    for (size_t i = 0; i < SL_ARRAY_LEN(inputs); i++) probe(m, name, inputs[i], i & 1 ? "TAE" : "");
                }
                free(name);
            }
            p = nl ? nl + 1 : NULL;
        }
        FZ_CHECK(names.n <= mappings_table_count(m), "%zu tables found, %zu counted", names.n, mappings_table_count(m));
        sv_free(&names);
        mappings_free(m);
    }
    sv_free(&errs.msgs);
out:
    free(text);
    free(flags);
    free(first);
    return 0;
}

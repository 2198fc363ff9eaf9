/*
 * trace_rewrite.c - "sluice test rewrite ADDRESS [--source-channel CH] [--from ADDR]" (see
 * trace_rewrite.h). The recipient is rewritten as an envelope To address from the source
 * channel; with --from the sender is then rewritten as an envelope From address with the
 * recipient's channel as the destination, so that $Q/$C rules show their effect too.
 */
#include "cli/cli.h"
#include "cli/trace_rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/load.h"
#include "conf/conf.h"
#include "rewrite/rewrite.h"

/* The parsed command line. */
typedef struct {
    const char *addr;
    const char *src; /* NULL: "tcp_local" when the configuration has it, else none */
    const char *from;
} test_args;

static void test_usage(FILE *f)
{
    fputs("usage: sluice test rewrite ADDRESS [--source-channel CH] [--from ADDR] [-C DIR]\n", f);
}

/* test_parse_args - fill a from argv; -1 (after printing why) on a usage error. */
static int test_parse_args(int argc, char **argv, test_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = cli_option_value(argc, argv, &i, "--source-channel", &missing))) a->src = v;
        else if ((v = cli_option_value(argc, argv, &i, "--from", &missing))) a->from = v;
        else if (missing) {
            fprintf(stderr, "sluice: option '%s' needs a value\n", argv[i]);
            return -1;
        } else if (argv[i][0] == '-' || a->addr) {
            fprintf(stderr, "sluice: unexpected argument '%s'\n", argv[i]);
            return -1;
        } else {
            a->addr = argv[i];
        }
    }
    if (!a->addr) {
        fputs("sluice: test rewrite needs an ADDRESS\n", stderr);
        return -1;
    }
    return 0;
}

static const char *kind_name(enum rw_kind k)
{
    return k == RW_ENV_TO     ? "envelope To"
           : k == RW_ENV_FROM ? "envelope From"
           : k == RW_HDR_TO   ? "header To"
                              : "header From";
}

/* print_trace - the engine's trace, indented under its heading. */
static void print_trace(const strbuf *trace)
{
    const char *p = trace->data ? trace->data : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        printf("  %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

/* test_one - rewrite and print one address; prefix is "" for the recipient, "from " for the sender. */
static sl_result test_one(const sl_conf *c, const char *addr, const rw_ctx *ctx, const char *prefix, char **channel)
{
    rw_result r;
    strbuf trace;
    sb_init(&trace);
    printf("rewriting <%s> (%s) from channel %s", addr, kind_name(ctx->kind),
           ctx->src_channel ? ctx->src_channel : "(none)");
    if (ctx->dst_channel) printf(" to channel %s", ctx->dst_channel);
    printf("\n");
    sl_result rc = rewrite_address_ctx(c, addr, ctx, &r, &trace);
    print_trace(&trace);
    if (rc == SL_OK) {
        printf("%schannel      = %s\n", prefix, r.channel->name);
        printf("%saddress      = %s\n", prefix, r.addr);
        printf("%srouting host = %s\n", prefix, r.host);
        if (channel) *channel = xstrdup(r.channel->name);
    } else {
        printf("%serror        = %s\n", prefix, r.error ? r.error : "not routed");
        printf("%sstatus       = %s %s\n", prefix, rc == SL_TEMP ? "temporary" : "permanent", r.status);
    }
    rw_result_free(&r);
    sb_free(&trace);
    return rc;
}

/* test_load - the configuration with its errors and notes printed; NULL when it does not load. */
static sl_conf *test_load(const char *confdir)
{
    conf_errors errs = {0};
    sl_conf *c = load_conf(confdir, &errs);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
    if (!c) return NULL;
    strvec notes = {0};
    char *file = xasprintf("%s/sluice.cnf", confdir);
    rewrite_conf_notes(c, file, &notes);
    for (size_t i = 0; i < notes.n; i++) fprintf(stderr, "%s\n", notes.v[i]);
    sv_free(&notes);
    free(file);
    return c;
}

int cli_test_rewrite(int argc, char **argv, const char *confdir)
{
    test_args a;
    if (test_parse_args(argc, argv, &a) != 0) {
        test_usage(stderr);
        return 2;
    }
    sl_conf *c = test_load(confdir);
    if (!c) return 2;
    int rc = 2;
    char *dst = NULL;
    if (a.src && !conf_channel_by_name(c, a.src)) {
        fprintf(stderr, "sluice: no channel '%s' in %s/sluice.cnf\n", a.src, confdir);
        goto done;
    }
    if (!a.src && conf_channel_by_name(c, "tcp_local")) a.src = "tcp_local";
    rw_ctx to = {a.src, NULL, RW_ENV_TO, a.from};
    rc = test_one(c, a.addr, &to, "", &dst) == SL_OK ? 0 : 1;
    if (a.from) {
        rw_ctx from = {a.src, dst, RW_ENV_FROM, a.from};
        printf("\n");
        test_one(c, a.from, &from, "from ", NULL);
    }
done:
    free(dst);
    conf_free(c);
    return rc;
}

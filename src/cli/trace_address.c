/*
 * trace_address.c - "sluice test address ADDRESS [--from ADDR] [--client IP] [--source-channel
 * CH]" (see trace_address.h): the real engine and policy, driven like a client would, on a
 * private event loop that runs only while a decision waits (bounded).
 */
#include "cli/trace_address.h"
#include "cli/load.h"
#include "core/log.h"
#include "core/workq.h"
#include "dns/dns.h"
#include "policy/policy.h"
#include "smtp/server.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *rcpt, *from, *client, *channel;
} addr_args;

static int addr_parse(int argc, char **argv, addr_args *a)
{
    *a = (addr_args){NULL, "test@example.invalid", "192.0.2.1", NULL};
    for (int i = 0; i < argc; i++) {
        const char **opt = !strcmp(argv[i], "--from") ? &a->from : !strcmp(argv[i], "--client") ? &a->client
                         : !strcmp(argv[i], "--source-channel") ? &a->channel : NULL;
        if (opt && i + 1 < argc) *opt = argv[++i];
        else if (!opt && !a->rcpt && argv[i][0] != '-') a->rcpt = argv[i];
        else return -1;
    }
    return a->rcpt ? 0 : -1;
}

/* client_internal - whether ip lies in internal_networks. */
static bool client_internal(const sl_conf *c, const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (void *)&ss;
    struct sockaddr_in6 *s6 = (void *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) s6->sin6_family = AF_INET6;
    else return false;
    return conf_cidr_match(c->opt.internal_networks, c->opt.n_internal_networks, (struct sockaddr *)&ss);
}

/* say - one command; the loop runs while its decision waits (at most 30 s); prints the replies
 * when verbose, keeps the last reply line (no CRLF) in last. */
static int say(smtp_sess *s, struct event_base *base, const char *cmd, bool verbose, strbuf *last)
{
    char line[1100];
    snprintf(line, sizeof line, "%s\r\n", cmd);
    if (verbose) printf("> %s\n", cmd);
    fflush(stdout);
    smtp_sess_feed(s, line, strlen(line));
    for (int i = 0; i < 300 && smtp_sess_waiting(s); i++) {
        struct timeval tv = {0, 100000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    size_t n;
    const char *out = smtp_sess_output(s, &n);
    int code = out && n >= 3 ? atoi(out) : 0;
    if (out && verbose) printf("< %.*s", (int)n, out);
    if (smtp_sess_waiting(s) && verbose) printf("< (no answer within 30 s)\n");
    sb_reset(last);
    if (out) {
        const char *end = out + n;
        while (end > out && (end[-1] == '\n' || end[-1] == '\r')) end--;
        const char *start = end;
        while (start > out && start[-1] != '\n') start--;
        sb_append(last, start, (size_t)(end - start));
    }
    smtp_sess_output_clear(s);
    fflush(stdout);
    return code;
}

/* session_rcpt - a session with info: greeting, EHLO, MAIL FROM:<from>, RCPT TO:<rcpt>; returns the
 * RCPT reply code (0 if none) and the last reply line in last. */
static int session_rcpt(sl_ctx *ctx, policy *pol, const smtp_sess_info *info, const char *from, const char *rcpt,
                        bool verbose, strbuf *last)
{
    smtp_sess *s = smtp_sess_new(ctx->conf, policy_smtp_ops(), pol, info);
    smtp_sess_connect(s);
    smtp_sess_greet(s);
    size_t n;
    const char *greet = smtp_sess_output(s, &n);
    if (greet && verbose) printf("< %.*s", (int)n, greet);
    if (greet) sb_append(last, greet, n > 2 ? n - 2 : n);
    smtp_sess_output_clear(s);
    int code = 0;
    char cmd[1100];
    if (!smtp_sess_closing(s) && say(s, ctx->base, "EHLO sluice-test", verbose, last) / 100 == 2) {
        snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>", from);
        if (say(s, ctx->base, cmd, verbose, last) / 100 == 2) {
            snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", rcpt);
            code = say(s, ctx->base, cmd, verbose, last);
        }
    }
    smtp_sess_free(s);
    return code;
}

/* run - the session of `test address`: returns the RCPT reply code (0 if none). */
static int run(sl_ctx *ctx, policy *pol, const addr_args *a)
{
    const sl_conf *c = ctx->conf;
    const char *svc = c->n_services ? c->services[0].name : "SMTP";
    const char *chan = a->channel ? a->channel : c->n_services && c->services[0].channel ? c->services[0].channel
                                                                                          : "tcp_local";
    smtp_sess_info info = {.id = "T1", .service = svc, .src_channel = chan, .client_ip = a->client,
                           .server_ip = "127.0.0.1", .client_port = 40000, .server_port = 25,
                           .client_internal = client_internal(c, a->client), .auth_offered = false};
    printf("client [%s] (%s), source channel %s, reject_mode %s\n", a->client,
           info.client_internal ? "internal" : "outside", chan,
           c->opt.reject_mode == REJECT_SOFT ? "soft" : c->opt.reject_mode == REJECT_AUTO ? "auto" : "hard");
    strbuf last = {0};
    int code = session_rcpt(ctx, pol, &info, a->from, a->rcpt, true, &last);
    sb_free(&last);
    return code;
}

/* trace_ctx - the loop, worker, resolver and policy of a dry run on a loaded ctx. */
static policy *trace_ctx(sl_ctx *ctx)
{
    ctx->base = event_base_new();
    ctx->wq = workq_new(ctx->base, 1);
    char err[256];
    ctx->dns = dns_new(ctx->base, &ctx->conf->opt.dns_servers, err, sizeof err);
    return policy_new(ctx);
}

/* trace_ctx_free - release what load_all and trace_ctx made. */
static void trace_ctx_free(sl_ctx *ctx, policy *pol)
{
    workq_free(ctx->wq);
    dns_free(ctx->dns);
    policy_free(pol);
    dir_unref(ctx->dir);
    conf_free(ctx->conf);
    event_base_free(ctx->base);
}

int trace_address_verify(const char *confdir, const strvec *rcpts, const char *from, int *codes, strvec *replies)
{
    conf_errors errs = {0};
    sl_ctx ctx = {0};
    bool ok = load_all(confdir, &errs, &ctx.conf, &ctx.dir);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
    if (!ok) return -1;
    log_set_level(LOG_LVL_ERROR);
    policy *pol = trace_ctx(&ctx);
    smtp_sess_info info = {.id = "V1", .service = "local", .src_channel = ctx.conf->opt.submit_channel,
                           .client_ip = "127.0.0.1", .server_ip = "127.0.0.1", .client_internal = true,
                           .local = true, .local_uid = (unsigned)getuid()};
    for (size_t i = 0; i < rcpts->n; i++) {
        strbuf last = {0};
        codes[i] = session_rcpt(&ctx, pol, &info, from, rcpts->v[i], false, &last);
        sv_push(replies, last.data ? last.data : "");
        sb_free(&last);
    }
    trace_ctx_free(&ctx, pol);
    return 0;
}

int cli_test_address(int argc, char **argv, const char *confdir)
{
    addr_args a;
    if (addr_parse(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: sluice test address ADDRESS [--from ADDR] [--client IP] [--source-channel CH] [-C DIR]\n");
        return 2;
    }
    conf_errors errs = {0};
    sl_ctx ctx = {0};
    bool ok = load_all(confdir, &errs, &ctx.conf, &ctx.dir);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
    if (!ok) return 2;
    dup2(STDOUT_FILENO, STDERR_FILENO); /* the decisions (log lines) and the replies, in order, on stdout */
    log_set_level(LOG_LVL_DEBUG);
    policy *pol = trace_ctx(&ctx);
    int code = run(&ctx, pol, &a);
    trace_ctx_free(&ctx, pol);
    return code / 100 == 2 ? 0 : 1;
}

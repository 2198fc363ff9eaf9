/*
 * trace_spf.c - "sluice test spf" (see trace_spf.h): spf_check on a private loop with the
 * configuration's resolver, bounded to 60 s.
 */
#include "cli/trace_spf.h"
#include "cli/load.h"
#include "conf/conf.h"
#include "dns/dns.h"
#include "spf/spf.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bool done;
    const spf_query *q;
    const char *host;
} spf_trace;

/* print_result - the answer of the check, on stdout. */
static void print_result(void *arg, const spf_result *r)
{
    spf_trace *t = arg;
    t->done = true;
    printf("identity = %s\n", r->identity);
    printf("domain = %s\n", r->domain ? r->domain : "");
    printf("result = %s\n", spf_res_name(r->result));
    if (r->mechanism) printf("mechanism = %s\n", r->mechanism);
    if (r->explanation) printf("explanation = %s\n", r->explanation);
    if (r->problem) printf("problem = %s\n", r->problem);
    printf("lookups = %u, void lookups = %u\n", r->lookups, r->void_lookups);
    strbuf sb;
    sb_init(&sb);
    spf_received_header(r, t->q, &sb);
    sb_printf(&sb, "Authentication-Results: %s; ", t->host);
    spf_auth_results(r, t->q, &sb);
    /* one header per line as a message would hold them, shown with LF line ends */
    for (char *p = sb.data; *p; p++)
        if (*p != '\r') putchar(*p);
    putchar('\n');
    sb_free(&sb);
}

/* ip_parse - a v4 or v6 address into ss. */
static bool ip_parse(const char *s, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return true;
    }
    return false;
}

int cli_test_spf(int argc, char **argv, const char *confdir)
{
    const char *ip = NULL, *from = NULL, *helo = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--helo") && i + 1 < argc) helo = argv[++i];
        else if (!ip && argv[i][0] != '-') ip = argv[i];
        else if (ip && !from) from = argv[i];
        else ip = NULL, i = argc;
    }
    spf_query q = {0};
    if (!ip || !from || !ip_parse(ip, &q.ip)) {
        fprintf(stderr, "usage: sluice test spf IP MAILFROM [--helo NAME] [-C DIR]   (MAILFROM \"<>\" checks the HELO name)\n");
        return 2;
    }
    conf_errors errs = {0};
    sl_conf *c = load_conf(confdir, &errs);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
    if (!c) return 2;
    char *mf = xstrdup(from);
    size_t ml = strlen(mf);
    if (ml >= 2 && mf[0] == '<' && mf[ml - 1] == '>') {
        memmove(mf, mf + 1, ml - 2);
        mf[ml - 2] = '\0';
    }
    q.mail_from = mf;
    q.helo = helo ? helo : "";
    q.receiver = c->opt.hostname;
    q.now = now_unix();
    struct event_base *base = event_base_new();
    char err[256];
    dns_ctx *d = dns_new(base, &c->opt.dns_servers, err, sizeof err);
    int rc = 0;
    if (!d) {
        fprintf(stderr, "sluice: %s\n", err);
        rc = 2;
    } else {
        spf_trace t = {.q = &q, .host = c->opt.hostname ? c->opt.hostname : "localhost"};
        spf_req *req = spf_check(d, &q, print_result, &t);
        for (int i = 0; i < 600 && !t.done; i++) {
            struct timeval tv = {0, 100000};
            event_base_loopexit(base, &tv);
            event_base_dispatch(base);
        }
        if (!t.done) {
            printf("result = (no answer within 60 s)\n");
            spf_cancel(req);
            rc = 1;
        }
        dns_free(d);
    }
    event_base_free(base);
    free(mf);
    conf_free(c);
    return rc;
}

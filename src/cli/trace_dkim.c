/*
 * trace_dkim.c - "sluice test dkim sign|verify" (see trace_dkim.h).
 */
#include "cli/trace_dkim.h"
#include "cli/load.h"
#include "conf/conf.h"
#include "dkim/dkim.h"
#include "dns/dns.h"

#include <event2/event.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* read_message - standard input with every line ending in CRLF. */
static void read_message(strbuf *out)
{
    int c, prev = 0;
    while ((c = getchar()) != EOF) {
        if (c == '\n' && prev != '\r') sb_putc(out, '\r');
        sb_putc(out, (char)c);
        prev = c;
    }
    if (!out->data) sb_puts(out, "");
}

/* usage - the command's synopsis on stderr; returns 2. */
static int usage(void)
{
    fprintf(stderr, "usage: sluice test dkim sign --key PEMFILE --domain D --selector S [--canon H/B] "
                    "[--headers a:b:c] [--oversign] [--time T] < MESSAGE\n"
                    "       sluice test dkim verify --key-record TEXT [--index N] < MESSAGE\n"
                    "       sluice test dkim verify --dns [-C DIR] < MESSAGE\n");
    return 2;
}

/* cmd_sign - "sign": the signature field, then the message. */
static int cmd_sign(int argc, char **argv)
{
    const char *keyfile = NULL, *canon = "relaxed/relaxed", *headers = NULL;
    dkim_sign_opts o = {0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--oversign")) o.oversign = true;
        else if (!v) return usage();
        else if (!strcmp(a, "--key")) keyfile = v, i++;
        else if (!strcmp(a, "--domain")) o.domain = v, i++;
        else if (!strcmp(a, "--selector")) o.selector = v, i++;
        else if (!strcmp(a, "--canon")) canon = v, i++;
        else if (!strcmp(a, "--headers")) headers = v, i++;
        else if (!strcmp(a, "--time")) o.now = strtoll(v, NULL, 10), i++;
        else return usage();
    }
    if (!keyfile || !o.domain || !o.selector || dkim_canon_parse(canon, &o.header_canon, &o.body_canon) < 0)
        return usage();
    char *pem = file_read_text(keyfile);
    char err[256];
    if (!pem) {
        fprintf(stderr, "sluice: cannot read %s\n", keyfile);
        return 1;
    }
    EVP_PKEY *key = dkim_key_pem(pem, err, sizeof err);
    free(pem);
    if (!key) {
        fprintf(stderr, "sluice: %s: %s\n", keyfile, err);
        return 1;
    }
    o.key = key;
    strvec names = {0};
    if (headers) {
        for (const char *p = headers; *p;) {
            size_t n = strcspn(p, ":");
            if (n) sv_push_owned(&names, xstrndup(p, n));
            p += n + (p[n] == ':');
        }
        o.headers = (const char *const *)names.v;
        o.n_headers = names.n;
    }
    strbuf msg = {0}, sig = {0};
    read_message(&msg);
    int rc = dkim_sign(msg.data, msg.len, &o, &sig, err, sizeof err);
    if (rc == 0) {
        fwrite(sig.data, 1, sig.len, stdout);
        fwrite(msg.data, 1, msg.len, stdout);
    } else {
        fprintf(stderr, "sluice: %s\n", err);
    }
    EVP_PKEY_free(key);
    sv_free(&names);
    sb_free(&msg);
    sb_free(&sig);
    return rc == 0 ? 0 : 1;
}

typedef struct {
    bool done;
    int rc;
} dns_trace;

/* print_all - the results of every signature, from dkim_check. */
static void print_all(void *arg, const dkim_sig_info *sigs, size_t n)
{
    dns_trace *t = arg;
    t->done = true;
    t->rc = n ? 0 : 1;
    printf("signatures = %zu\n", n);
    for (size_t i = 0; i < n; i++) {
        printf("%zu: result = %s; d = %s; s = %s; a = %s%s%s\n", i, dkim_res_name(sigs[i].res),
               sigs[i].domain ? sigs[i].domain : "", sigs[i].selector ? sigs[i].selector : "",
               sigs[i].algorithm ? sigs[i].algorithm : "", sigs[i].reason[0] ? "; reason = " : "", sigs[i].reason);
        if (sigs[i].res != DKIM_PASS) t->rc = 1;
    }
}

/* cmd_verify_dns - "verify --dns": every signature, key records from the configured DNS servers (60 s at most). */
static int cmd_verify_dns(const char *confdir)
{
    conf_errors errs = {0};
    sl_conf *c = load_conf(confdir, &errs);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
    if (!c) return 2;
    strbuf msg = {0};
    read_message(&msg);
    struct event_base *base = event_base_new();
    char err[256];
    dns_ctx *d = dns_new(base, &c->opt.dns_servers, err, sizeof err);
    dns_trace t = {false, 1};
    if (!d) {
        fprintf(stderr, "sluice: %s\n", err);
        t.rc = 2;
    } else {
        dkim_req *req = dkim_check(d, msg.data, msg.len, now_unix(), print_all, &t);
        for (int i = 0; i < 600 && !t.done; i++) {
            struct timeval tv = {0, 100000};
            event_base_loopexit(base, &tv);
            event_base_dispatch(base);
        }
        if (!t.done) {
            printf("result = (no answer within 60 s)\n");
            dkim_check_cancel(req);
        }
        dns_free(d);
    }
    event_base_free(base);
    sb_free(&msg);
    conf_free(c);
    return t.rc;
}

/* cmd_verify - "verify": the result of one signature. */
static int cmd_verify(int argc, char **argv)
{
    const char *record = NULL;
    size_t index = 0;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--key-record")) record = argv[i + 1];
        else if (!strcmp(argv[i], "--index")) index = (size_t)strtoul(argv[i + 1], NULL, 10);
        else return usage();
    }
    if (!record || argc % 2) return usage();
    strbuf msg = {0};
    read_message(&msg);
    printf("signatures = %zu\n", dkim_sig_count(msg.data, msg.len));
    char *name = dkim_sig_key_name(msg.data, msg.len, index);
    if (name) printf("key = %s\n", name);
    free(name);
    dkim_sig_info info;
    dkim_verify(msg.data, msg.len, index, record, now_unix(), &info);
    printf("result = %s\n", dkim_res_name(info.res));
    if (info.reason[0]) printf("reason = %s\n", info.reason);
    if (info.domain) printf("d = %s\n", info.domain);
    if (info.selector) printf("s = %s\n", info.selector);
    if (info.algorithm) printf("a = %s\n", info.algorithm);
    int rc = info.res == DKIM_PASS ? 0 : 1;
    dkim_sig_info_free(&info);
    sb_free(&msg);
    return rc;
}

int cli_test_dkim(int argc, char **argv, const char *confdir)
{
    if (argc == 2 && !strcmp(argv[0], "verify") && !strcmp(argv[1], "--dns")) return cmd_verify_dns(confdir);
    if (argc >= 1 && !strcmp(argv[0], "sign")) return cmd_sign(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "verify")) return cmd_verify(argc - 1, argv + 1);
    return usage();
}

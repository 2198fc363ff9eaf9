/* cli.c - command-line front end (see cli.h). */
#include "cli/cli.h"
#include "cli/control.h"
#include "core/tls.h"

#include <openssl/ssl.h>
#include "cli/trace_address.h"
#include "cli/trace_mapping.h"
#include "cli/trace_rewrite.h"
#include "cli/trace_dkim.h"
#include "cli/trace_spf.h"
#include "queue/qadmin.h"
#include "rewrite/mapping.h"

#include <arpa/inet.h>
#include "rewrite/rewrite.h"
#include "conf/conf.h"
#include "core/util.h"
#include "cli/load.h"
#include "cli/sendmail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: sluice serve [-C DIR]     run the daemon in the foreground\n"
          "       sluice check [-C DIR]     validate a configuration\n"
          "       sluice test rewrite ADDRESS [--source-channel CH] [--from ADDR] [-C DIR]\n"
          "                                 show how the rewrite rules route ADDRESS\n"
          "       sluice test mapping TABLE STRING [--flags TAE] [-C DIR]\n"
          "       sluice test address ADDRESS [--from ADDR] [--client IP] [--source-channel CH] [-C DIR]\n"
          "       sluice test spf IP MAILFROM [--helo NAME] [-C DIR]   evaluate SPF with the configured DNS servers\n"
          "       sluice test dkim sign --key PEM --domain D --selector S [--canon H/B] [--oversign] < MESSAGE\n"
          "       sluice test dkim verify --key-record TEXT [--index N] | --dns [-C DIR] < MESSAGE\n"
          "       sluice queue list [CHANNEL] | show ID | summary | hold|release|delete|return ID | retry ID|CHANNEL |\n"
          "                    stats | shaping  [--json] [--from T --to T --domain D --channel CH --older-than DUR --reply T | --all]\n"
          "                    [-C DIR]   (live daemon, or the files when stopped; actions on an ID or a selection)\n"
          "       sluice tlsrpt send [--day YYYY-MM-DD] [-C DIR]   send the TLS-RPT reports now (running daemon)\n"
          "       sluice sendmail [-t] [-i] [-f SENDER] [-F NAME] [-N NOTIFY] [-R RET] [-V ENVID] [RECIPIENT ...]\n"
          "                    | -bs | -bv ADDRESS ... | -bp | -q   (also as sendmail, mailq, newaliases)\n"
          "       sluice version\n"
          "DIR defaults to $SLUICE_CONFIG_DIR, else /etc/sluice.\n",
          f);
}

/* check_relay_warnings - configurations that would let strangers relay are accepted with a warning. */
static void check_relay_warnings(const sl_conf *c, const char *dir, strvec *out)
{
    for (size_t i = 0; i < c->opt.n_internal_networks; i++) {
        const sl_cidr *n = &c->opt.internal_networks[i];
        bool wide = n->family == AF_INET ? n->prefix < 8 : n->prefix < 16;
        if (!wide) continue;
        char buf[64];
        inet_ntop(n->family, n->addr, buf, sizeof buf);
        sv_push_owned(out, xasprintf("%s/option.dat: warning: internal_networks includes %s/%u: every client in it "
                                     "may relay (open relay?)",
                                     dir, buf, n->prefix));
    }
    mappings_relay_warnings(c->mappings, out);
}

const char *cli_option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

int cli_check(const char *dir)
{
    conf_errors errs = {0};
    sl_conf *c;
    sl_dir *d;
    load_all(dir, &errs, &c, &d);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    int rc = c ? 0 : 1;
    if (c && c->opt.tls_certificate) {
        char err[512];
        SSL_CTX *t = tls_server_ctx(c->opt.tls_certificate, c->opt.tls_key, c->opt.tls_ciphers,
                                    (int)c->opt.tls_min_version, err, sizeof err);
        if (!t) {
            fprintf(stderr, "%s/option.dat: tls_certificate: %s\n", dir, err);
            rc = 1;
        } else {
            if (!tls_server_sni(t, c->tls_sni, c->opt.tls_ciphers, (int)c->opt.tls_min_version, err, sizeof err)) {
                fprintf(stderr, "%s:%s\n", c->opt.tls_sni_file, err); /* err: "N: name: file: why" */
                rc = 1;
            }
            SSL_CTX_free(t);
        }
    }
    if (c && c->opt.tls_ca_file) { /* the SMTP client's extra trust anchors must load */
        char err[512];
        SSL_CTX *t = tls_client_ctx(c->opt.tls_ca_file, err, sizeof err);
        if (!t) {
            fprintf(stderr, "%s/option.dat: %s\n", dir, err);
            rc = 1;
        }
        SSL_CTX_free(t);
    }
    if (c && rc == 0) {
        strvec notes = {0};
        char *file = xasprintf("%s/sluice.cnf", dir);
        rewrite_conf_notes(c, file, &notes);
        check_relay_warnings(c, dir, &notes);
        for (size_t i = 0; i < notes.n; i++) printf("%s\n", notes.v[i]);
        sv_free(&notes);
        free(file);
        dir_notes(d, &notes);
        for (size_t i = 0; i < notes.n; i++) printf("%s\n", notes.v[i]);
        sv_free(&notes);
        size_t nd, nu;
        dir_stats(d, &nd, &nu);
        if (c->opt.ldap_uris.n) { /* checked, never contacted: a check must not depend on a server */
            strbuf uris;
            sb_init(&uris);
            for (size_t i = 0; i < c->opt.ldap_uris.n; i++) sb_printf(&uris, "%s%s", i ? " " : "", c->opt.ldap_uris.v[i]);
            printf("%s: configuration ok: %zu rewrite rules, %zu channels, %zu services, LDAP directory %s base %s "
                   "(not contacted)\n",
                   dir, c->n_rules, c->n_channels, c->n_services, uris.data, c->opt.ldap_base_dn);
            sb_free(&uris);
        } else
            printf("%s: configuration ok: %zu rewrite rules, %zu channels, %zu services, %zu domains, %zu users\n", dir,
                   c->n_rules, c->n_channels, c->n_services, nd, nu);
    }
    conf_free(c);
    dir_unref(d);
    sv_free(&errs.msgs);
    return rc;
}

int cli_queue_capture(const sl_conf *c, int argc, char **argv, strbuf *out)
{
    int rc = control_client_capture(c->opt.queue_dir, argc, argv, out);
    if (rc < 0) rc = qadmin_offline(c, argc, argv, out);
    return rc;
}

int cli_queue(const char *dir, int argc, char **argv)
{
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    conf_errors errs = {0};
    sl_conf *c = load_conf(dir, &errs);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
    if (!c) return 1;
    strbuf out = {0};
    int rc = cli_queue_capture(c, argc, argv, &out);
    if (rc == 2 && !out.len) usage(stderr);
    if (out.len) fputs(out.data, rc ? stderr : stdout);
    sb_free(&out);
    conf_free(c);
    return rc;
}

/* cli_tlsrpt - `sluice tlsrpt send [--day YYYY-MM-DD]`: the running daemon sends the TLS-RPT reports. */
static int cli_tlsrpt(const char *dir, int argc, char **argv)
{
    conf_errors errs = {0};
    sl_conf *c = load_conf(dir, &errs);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
    if (!c) return 1;
    char **words = xcalloc((size_t)argc + 1, sizeof *words);
    words[0] = "tlsrpt";
    for (int i = 0; i < argc; i++) words[i + 1] = argv[i];
    int rc = control_client(c->opt.queue_dir, argc + 1, words);
    if (rc < 0) {
        fprintf(stderr, "sluice: no daemon answers on %s/control.sock (reports are sent by the running daemon)\n",
                c->opt.queue_dir);
        rc = 1;
    }
    free(words);
    conf_free(c);
    return rc;
}

/* config_dir_default - $SLUICE_CONFIG_DIR, else /etc/sluice (the sendmail links cannot be given -C by mail(1)). */
static const char *config_dir_default(void)
{
    const char *env = getenv("SLUICE_CONFIG_DIR");
    return env && *env ? env : "/etc/sluice";
}

/* cli_by_name - the binary called as sendmail, mailq or newaliases; -1 when called otherwise. */
static int cli_by_name(int argc, char **argv)
{
    const char *slash = strrchr(argv[0], '/');
    const char *name = slash ? slash + 1 : argv[0];
    if (!strcmp(name, "sendmail")) return cli_sendmail(argc, argv, config_dir_default());
    if (!strcmp(name, "mailq")) return cli_mailq(argc, argv, config_dir_default());
    if (!strcmp(name, "newaliases")) return cli_newaliases();
    return -1;
}

int cli_main(int argc, char **argv)
{
    int by_name = argc > 0 ? cli_by_name(argc, argv) : -1;
    if (by_name >= 0) return by_name;
    if (argc >= 2 && !strcmp(argv[1], "sendmail")) return cli_sendmail(argc - 1, argv + 1, config_dir_default());
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    const char *dir = config_dir_default();
    /* -C DIR may appear anywhere; only "test" takes other arguments */
    char **rest = xcalloc((size_t)argc, sizeof *rest);
    int nrest = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "-C") && i + 1 < argc) dir = argv[++i];
        else rest[nrest++] = argv[i];
    }
    if (!strcmp(cmd, "test")) {
        int rc = 2;
        if (nrest > 0 && !strcmp(rest[0], "rewrite")) rc = cli_test_rewrite(nrest - 1, rest + 1, dir);
        else if (nrest > 0 && !strcmp(rest[0], "mapping")) rc = cli_test_mapping(nrest - 1, rest + 1, dir);
        else if (nrest > 0 && !strcmp(rest[0], "address")) rc = cli_test_address(nrest - 1, rest + 1, dir);
        else if (nrest > 0 && !strcmp(rest[0], "spf")) rc = cli_test_spf(nrest - 1, rest + 1, dir);
        else if (nrest > 0 && !strcmp(rest[0], "dkim")) rc = cli_test_dkim(nrest - 1, rest + 1, dir);
        else fprintf(stderr, "sluice: unknown test '%s' (expected: sluice test rewrite|mapping|address|spf|dkim ...)\n",
                     nrest ? rest[0] : "");
        free(rest);
        return rc;
    }
    if (!strcmp(cmd, "queue")) {
        int rc = cli_queue(dir, nrest, rest);
        free(rest);
        return rc;
    }
    if (!strcmp(cmd, "tlsrpt")) {
        int rc = cli_tlsrpt(dir, nrest, rest);
        free(rest);
        return rc;
    }
    const char *extra = nrest > 0 ? rest[0] : NULL;
    free(rest);
    if (extra) {
        fprintf(stderr, "sluice: unexpected argument '%s'\n", extra);
        usage(stderr);
        return 2;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("sluice %s\n", SLUICE_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "check")) return cli_check(dir);
    if (!strcmp(cmd, "serve")) return daemon_serve(dir);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sluice: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}

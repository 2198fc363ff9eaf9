/*
 * fuzz_rewrite.c - the rewrite engine (rewrite/rewrite.h) routing addresses that clients send,
 * with a fixed rule set that covers every template form and condition; and the template parser
 * (rewrite_template_lint) on the same bytes.
 *
 * Input: byte 0 = context (kind of address, source and destination channel, or none at all),
 * then the address ("local@domain", ends at a NUL).
 *
 * The rules never put $U twice into one template, so an address cannot grow faster than the
 * rules add text (the engine itself does not bound growth: that is being fixed elsewhere).
 *
 * Properties: SL_OK gives an address, a routing host and a channel of the configuration, and
 * no error; a failure gives an error text and a status "4.x.y" (SL_TEMP) or "5.x.y" (SL_PERM);
 * for an address the SMTP parser accepts, the result splits again into local part and domain.
 */
#include "conf/conf.h"
#include "fuzz.h"
#include "rewrite/rewrite.h"
#include "smtp/parse.h"

static const char rules[] =
    "example.test        $U%$D@local-daemon\n"
    "alias.test          $U%example.test\n"
    "*.example.test      $U@example.test\n"
    ".sub.test           $0U$1U%$H@tcp_local-daemon\n"
    "[192.0.2.1]         $U%[192.0.2.1]@local-daemon\n"
    "[192.0.2.]          $U%$H@tcp_intranet-daemon\n"
    "[]                  $U@$L\n"
    "[*.*.*.*]           $U%$L@tcp_local-daemon\n"
    "relay.test          $U%$H@mx.relay.test\n"
    "mx.relay.test       $U%$H@tcp_local-daemon\n"
    "deny.test           $?No such domain here\n"
    "temp.test           $4004002?Try-again-later\n"
    "status.test         $5001002?Bad-destination-mailbox\n"
    "src.test            $Mtcp_local$U%$H@tcp_local-daemon\n"
    "src.test            $Ntcp_local$U%$H@local-daemon\n"
    "dst.test            $Qtcp_local$U%$H@tcp_local-daemon\n"
    "dst.test            $Ctcp_local$U%$H@local-daemon\n"
    "hdr.test            $B$R$U%$H@tcp_local-daemon\n"
    "hdr.test            $B$F$U%$H@tcp_intranet-daemon\n"
    "hdr.test            $E$U%$H@local-daemon\n"
    "ignore.test         $U%$H$,junk@tcp_local-daemon\n"
    "errtext.test        $U%mx.relay.test$?Sticky error\n"
    "loop.test           $U%loop2.test\n"
    "loop2.test          $U%loop.test\n"
    "grow.test           $U%x.grow.test\n"
    ".grow.test          $U%x$H\n"
    "*.*.test            $U%$1H@tcp_local-daemon\n"
    ".                   $U%$H@tcp_local-daemon\n"
    "\n"
    "defaults notices 1 3\n"
    "\n"
    "l\n"
    "local-daemon\n"
    "example.test\n"
    "\n"
    "tcp_local smtp mx\n"
    "tcp_local-daemon\n"
    "\n"
    "tcp_intranet smtp norules\n"
    "tcp_intranet-daemon\n";

static sl_conf conf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    conf_errors errs = {0};
    conf_options_defaults(&conf.opt);
    if (conf_parse_sluice_cnf("sluice.cnf", rules, &conf, &errs) != 0) {
        for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "%s\n", errs.msgs.v[i]);
        abort();
    }
    sv_free(&errs.msgs);
    return 0;
}

static const char *const channels[] = {NULL, "tcp_local", "l", "tcp_intranet", "nosuchchannel"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t opts = fz_u8(&in);
    char *addr = fz_text(in.p, in.n);
    rw_ctx ctx = {channels[((opts >> 2) & 7) % 5], channels[(opts >> 5) & 3], (enum rw_kind)(opts & 3), "a@b.test"};
    strbuf trace;
    sb_init(&trace);
    rw_result r;
    sl_result rc = rewrite_address_ctx(&conf, addr, (opts & 0x80) ? NULL : &ctx, &r, &trace);
    if (rc == SL_OK) {
        FZ_CHECK(r.addr && r.host && r.channel && !r.error, "incomplete result for '%s'", addr);
        FZ_CHECK(r.channel >= conf.channels && r.channel < conf.channels + conf.n_channels, "foreign channel");
        FZ_CHECK(conf_channel_by_host(&conf, r.host) == r.channel, "routing host '%s' is not channel %s's", r.host,
                 r.channel->name);
        /* An address the SMTP parser accepts (what the server rewrites) gives an address that
         * splits again; raw bytes need not: domain_ok lets '"' and '@' into a domain. */
        smtp_addr a;
        char err[128];
        if (smtp_addr_parse(addr, strlen(addr), true, &a, err, sizeof err) == 0) {
            char *local, *domain;
            FZ_CHECK(rewrite_split(r.addr, &local, &domain) == 0, "result '%s' for '%s' has no domain", r.addr, addr);
            free(local);
            free(domain);
            smtp_addr_free(&a);
        }
    } else {
        FZ_CHECK(rc == SL_PERM || rc == SL_TEMP, "result %d", (int)rc);
        FZ_CHECK(r.error != NULL, "failure without a reason for '%s'", addr);
        FZ_CHECK(r.status[0] == (rc == SL_TEMP ? '4' : '5') && r.status[1] == '.', "status '%s' for result %d",
                 r.status, (int)rc);
    }
    rw_result_free(&r);
    sb_free(&trace);

    char err[256];
    strvec notes = {0};
    if (rewrite_template_lint(addr, err, sizeof err, &notes) == 0)
        FZ_CHECK(rewrite_template_check(addr, err, sizeof err) == 0, "lint and check disagree on '%s'", addr);
    sv_free(&notes);
    free(addr);
    return 0;
}

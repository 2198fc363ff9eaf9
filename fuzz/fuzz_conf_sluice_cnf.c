/*
 * fuzz_conf_sluice_cnf.c - the sluice.cnf parser (conf/conf.h conf_parse_sluice_cnf): rewrite
 * rules (templates checked by the rewrite engine's own parser) and channel blocks; then the
 * notes `sluice check` prints about a loaded file (rewrite_conf_notes).
 *
 * Input: the file's text (it ends at a NUL, as a file read by conf_load does).
 * Properties: errors and the returned count agree; a file without errors has rules whose
 * templates pass rewrite_template_check, channels with a name and (but for "defaults") an
 * official host name that maps back to the channel, and at least one real channel. The rules are
 * not run: an arbitrary rule set may make the rewrite engine's output grow without bound, which
 * is being fixed elsewhere.
 */
#include "conf/conf.h"
#include "fuzz.h"
#include "rewrite/rewrite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    conf_errors errs = {0};
    sl_conf c;
    memset(&c, 0, sizeof c);
    conf_options_defaults(&c.opt);
    int n = conf_parse_sluice_cnf("/etc/sluice/sluice.cnf", text, &c, &errs);
    FZ_CHECK((n == 0) == (errs.msgs.n == 0), "%d errors counted, %zu recorded", n, errs.msgs.n);
    if (n == 0) {
        /* conf parses the syntax; the rewrite engine checks the templates (as cli/load.c does):
         * its count and the rules it finds bad must agree */
        char err[256];
        conf_errors terrs = {0};
        int bad = rewrite_rules_check(&c, "/etc/sluice/sluice.cnf", &terrs);
        FZ_CHECK(bad >= 0 && (size_t)bad == terrs.msgs.n, "%d bad templates counted, %zu recorded", bad, terrs.msgs.n);
        int seen = 0;
        for (size_t i = 0; i < c.n_rules; i++) seen += rewrite_template_check(c.rules[i].tmpl, err, sizeof err) != 0;
        FZ_CHECK(seen == bad, "%d rules fail the template check, %d reported", seen, bad);
        sv_free(&terrs.msgs);
        size_t real = 0;
        for (size_t i = 0; i < c.n_channels; i++) {
            const sl_channel *ch = &c.channels[i];
            FZ_CHECK(ch->name && *ch->name, "channel %zu without a name", i);
            if (str_ieq(ch->name, "defaults")) continue;
            real++;
            FZ_CHECK(ch->hosts.n > 0, "channel %s without a host name", ch->name);
            FZ_CHECK(conf_channel_by_host(&c, ch->hosts.v[0]) == ch, "host %s of %s maps elsewhere", ch->hosts.v[0],
                     ch->name);
            FZ_CHECK(conf_channel_by_name(&c, ch->name) == ch, "channel name %s maps elsewhere", ch->name);
        }
        FZ_CHECK(real > 0, "a file without channels loaded");
        strvec notes = {0};
        rewrite_conf_notes(&c, "sluice.cnf", &notes);
        sv_free(&notes);
    }
    conf_sluice_cnf_free(&c);
    conf_options_free(&c.opt);
    sv_free(&errs.msgs);
    free(text);
    return 0;
}

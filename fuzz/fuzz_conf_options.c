/*
 * fuzz_conf_options.c - the option.dat parser (conf/conf.h conf_parse_options).
 *
 * Input: the file's text (it ends at a NUL, as a file read by conf_load does).
 * Properties: a file without errors gives options within their documented ranges (a host name,
 * a queue directory, at least one internal network unless the list was emptied); whatever the
 * text, everything parsed is freed (the leak checker runs after each input).
 */
#include "conf/conf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    conf_errors errs = {0};
    sl_options opt;
    int n = conf_parse_options("/etc/sluice/option.dat", text, &opt, &errs);
    FZ_CHECK((n == 0) == (errs.msgs.n == 0), "%d errors counted, %zu recorded", n, errs.msgs.n);
    if (n == 0) {
        FZ_CHECK(opt.hostname && *opt.hostname && opt.queue_dir && opt.maildir_root, "options incomplete");
        FZ_CHECK(opt.bare_eol == BARE_EOL_REJECT || opt.bare_eol == BARE_EOL_NORMALISE, "bare_lf %d", (int)opt.bare_eol);
        FZ_CHECK(opt.log_level >= 0 && opt.log_level <= 3, "log level %d", opt.log_level);
        for (size_t i = 0; i < opt.n_internal_networks; i++) {
            const sl_cidr *c = &opt.internal_networks[i];
            FZ_CHECK((c->family == AF_INET && c->prefix <= 32) || (c->family == AF_INET6 && c->prefix <= 128),
                     "network %zu: family %d prefix %u", i, c->family, c->prefix);
        }
    }
    conf_options_free(&opt);
    sv_free(&errs.msgs);
    free(text);
    return 0;
}

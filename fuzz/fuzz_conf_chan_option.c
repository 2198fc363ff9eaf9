/*
 * fuzz_conf_chan_option.c - the <channel>_option parser (conf/conf.h conf_parse_chan_option).
 *
 * Input: the file's text (it ends at a NUL, as a file read by conf_load does).
 * Properties: errors and the returned count agree; after a file without errors every value is
 * within the range its key documents (timeouts 1 s .. 1 d, connect at most 1 h, counts
 * 1 .. 100000).
 */
#include "conf/conf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    conf_errors errs = {0};
    sl_options opt;
    conf_options_defaults(&opt);
    sl_chan_opts o;
    conf_chan_opts_defaults(&opt, &o);
    int n = conf_parse_chan_option("/etc/sluice/tcp_local_option", text, &o, &errs);
    FZ_CHECK((n == 0) == (errs.msgs.n == 0), "%d errors counted, %zu recorded", n, errs.msgs.n);
    if (n == 0) {
        FZ_CHECK(o.connect_timeout >= 1 && o.connect_timeout <= 3600, "CONNECT_TIMEOUT %u", o.connect_timeout);
        FZ_CHECK(o.greeting_timeout >= 1 && o.greeting_timeout <= 86400, "GREETING_TIMEOUT %u", o.greeting_timeout);
        FZ_CHECK(o.command_timeout >= 1 && o.command_timeout <= 86400, "COMMAND_TIMEOUT %u", o.command_timeout);
        FZ_CHECK(o.data_timeout >= 1 && o.data_timeout <= 86400, "DATA_TIMEOUT %u", o.data_timeout);
        FZ_CHECK(o.max_rcpts >= 1 && o.max_rcpts <= 100000, "MAX_RCPTS_PER_TRANSACTION %u", o.max_rcpts);
        FZ_CHECK(o.max_messages >= 1 && o.max_messages <= 100000, "MAX_MESSAGES_PER_CONNECTION %u", o.max_messages);
    }
    conf_options_free(&opt);
    sv_free(&errs.msgs);
    free(text);
    return 0;
}

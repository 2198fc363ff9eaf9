/*
 * fuzz_conf_dispatcher.c - the dispatcher.cnf parser (conf/conf.h conf_parse_dispatcher).
 *
 * Input: the file's text (it ends at a NUL, as a file read by conf_load does).
 * Properties: a file without errors gives services with a name, at least one port and address
 * and a channel; the error count returned is the number of errors recorded; everything parsed is
 * freed.
 */
#include "conf/conf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    conf_errors errs = {0};
    sl_conf c;
    memset(&c, 0, sizeof c);
    int n = conf_parse_dispatcher("/etc/sluice/dispatcher.cnf", text, &c, &errs);
    FZ_CHECK((n == 0) == (errs.msgs.n == 0), "%d errors counted, %zu recorded", n, errs.msgs.n);
    if (n == 0)
        for (size_t i = 0; i < c.n_services; i++) {
            const sl_service *s = &c.services[i];
            FZ_CHECK(s->name && *s->name && s->channel && *s->channel, "service %zu incomplete", i);
            FZ_CHECK(s->ports.n > 0 && s->addresses.n > 0, "service %s without port or address", s->name);
            FZ_CHECK(s->tls <= SVC_TLS_NONE, "service %s TLS mode %d", s->name, (int)s->tls);
        }
    conf_dispatcher_free(&c);
    sv_free(&errs.msgs);
    free(text);
    return 0;
}

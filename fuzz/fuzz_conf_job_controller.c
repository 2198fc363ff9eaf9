/*
 * fuzz_conf_job_controller.c - the job_controller.cnf parser (conf/conf.h
 * conf_parse_job_controller).
 *
 * Input: the file's text (it ends at a NUL, as a file read by conf_load does).
 * Properties: errors and the returned count agree; there is always at least one pool (DEFAULT
 * when the file declares none), every pool has a name that finds it and a job limit of at least 1.
 */
#include "conf/conf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    conf_errors errs = {0};
    sl_conf c;
    memset(&c, 0, sizeof c);
    int n = conf_parse_job_controller("/etc/sluice/job_controller.cnf", text, &c, &errs);
    FZ_CHECK((n == 0) == (errs.msgs.n == 0), "%d errors counted, %zu recorded", n, errs.msgs.n);
    if (n == 0) {
        FZ_CHECK(c.n_pools > 0, "no pool");
        for (size_t i = 0; i < c.n_pools; i++) {
            FZ_CHECK(c.pools[i].name && *c.pools[i].name, "pool %zu without a name", i);
            FZ_CHECK(conf_pool_by_name(&c, c.pools[i].name) == &c.pools[i], "pool %s maps elsewhere", c.pools[i].name);
            FZ_CHECK(c.pools[i].job_limit >= 1, "pool %s job_limit %u", c.pools[i].name, c.pools[i].job_limit);
        }
    }
    conf_job_controller_free(&c);
    sv_free(&errs.msgs);
    free(text);
    return 0;
}

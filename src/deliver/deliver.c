/* deliver.c - delivery result helpers (see deliver.h). */
#include "deliver/deliver.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

void deliv_result_set(deliv_result *r, sl_result res, const char *status, const char *diag, const char *remote_mta)
{
    deliv_result_clear(r);
    r->result = res;
    snprintf(r->status, sizeof r->status, "%s", status ? status : "");
    r->diag = xstrdup(diag);
    r->remote_mta = xstrdup(remote_mta);
}

void deliv_result_clear(deliv_result *r)
{
    free(r->diag);
    free(r->remote_mta);
    memset(r, 0, sizeof *r);
}

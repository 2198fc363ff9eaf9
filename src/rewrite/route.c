/* route.c - delivery destination of a rewritten address (see route.h). */
#include "rewrite/route.h"

#include <string.h>

char *route_dest_host(const rw_result *rw)
{
    if (rw->channel && rw->host && !sv_contains_ci(&rw->channel->hosts, rw->host)) return xstrdup(rw->host);
    const char *at = rw->addr ? strrchr(rw->addr, '@') : NULL;
    return xstrdup(at ? at + 1 : (rw->host ? rw->host : ""));
}

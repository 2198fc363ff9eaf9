/*
 * route.h - the delivery destination of a rewritten address. With a template A%B@C, C selects
 * the channel; when C is the channel's own host name (e.g. tcp_local-daemon) the message goes to
 * the address's domain B (its MX hosts), otherwise C is a relay host reached through that channel
 * (e.g. a mail hub named in a rule). Pure; any thread.
 */
#ifndef SLUICE_ROUTE_H
#define SLUICE_ROUTE_H
#include "rewrite/rewrite.h"

/* route_dest_host - the host to deliver rw's address to (caller frees). */
char *route_dest_host(const rw_result *rw);

#endif

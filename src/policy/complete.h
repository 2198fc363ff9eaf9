/*
 * complete.h - header address completion at the end of data (complete.c): the source channel's
 * `remotehost` / `noremotehost` (default) and `inner` keywords, as Messaging Server defines them
 * (doc/configuration.md). For the files of the policy module only. Loop thread only.
 */
#ifndef SLUICE_POLICY_COMPLETE_H
#define SLUICE_POLICY_COMPLETE_H
#include "smtp/session.h"

/* complete_domain - the domain a domainless address of s's message gets: the client's HELO/EHLO
 * name on a `remotehost` source channel (when it is a valid domain or address literal), else
 * option.dat's host_name. Points into s or its configuration. */
const char *complete_domain(const smtp_sess *s);
/* complete_headers - add that domain to every domainless address in the address fields of s's
 * message header (and, on an `inner` channel, of its message/rfc822 parts); logs
 * "headers_completed" when anything changed. Cheap when nothing needs it. */
void complete_headers(smtp_sess *s);

#endif

/*
 * metrics_http.h - the metrics endpoint: `GET /metrics` answers the registry's exposition text
 * (core/metrics.h) over HTTP/1.1 (libevent's evhttp), on option.dat's metrics_listen (off by
 * default; a bare port means 127.0.0.1). Only GET and HEAD (other methods: 501); other paths get 404. There is no
 * authentication: bind it to loopback or a management network (doc/operations.md).
 * Loop thread only; the scrape runs the gauge callbacks on the loop.
 */
#ifndef SLUICE_CLI_METRICS_HTTP_H
#define SLUICE_CLI_METRICS_HTTP_H
#include <stddef.h>

struct event_base;
typedef struct metrics_http metrics_http;

/* metrics_http_open - listen on addr ("IP:PORT" / "[IPv6]:PORT"); NULL with err when it cannot. */
metrics_http *metrics_http_open(struct event_base *base, const char *addr, char *err, size_t errlen);
/* metrics_http_free - stop listening (NULL allowed). */
void metrics_http_free(metrics_http *m);

#endif

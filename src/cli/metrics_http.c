/*
 * metrics_http.c - the metrics endpoint (see metrics_http.h).
 */
#include "cli/metrics_http.h"
#include "core/log.h"
#include "core/metrics.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_http {
    struct evhttp *http;
};

/* on_metrics - GET /metrics: the exposition text. */
static void on_metrics(struct evhttp_request *req, void *arg)
{
    (void)arg;
    strbuf text = {0};
    metrics_render(&text);
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, text.data ? text.data : "", text.len);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", METRICS_CONTENT_TYPE);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body);
    sb_free(&text);
}

/* on_other - any other path: 404, with a pointer to the right one. */
static void on_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *body = evbuffer_new();
    evbuffer_add_printf(body, "Sluice: the metrics are at /metrics\n");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
    evhttp_send_reply(req, HTTP_NOTFOUND, "Not Found", body);
    evbuffer_free(body);
}

metrics_http *metrics_http_open(struct event_base *base, const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(err, errlen, "metrics_listen %s: not an address and port", addr);
        return NULL;
    }
    struct evconnlistener *evl = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 16,
        (struct sockaddr *)&ss, len);
    if (!evl) {
        snprintf(err, errlen, "metrics_listen %s: %s", addr, strerror(errno));
        return NULL;
    }
    metrics_http *m = xcalloc(1, sizeof *m);
    m->http = evhttp_new(base);
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(m->http, 10);
    evhttp_set_max_headers_size(m->http, 8192);
    evhttp_set_max_body_size(m->http, 0);
    evhttp_set_cb(m->http, "/metrics", on_metrics, m);
    evhttp_set_gencb(m->http, on_other, m);
    evhttp_bind_listener(m->http, evl); /* the http server owns the listener from now */
    log_info(NULL, "listen", "service=metrics address=%s", addr);
    return m;
}

void metrics_http_free(metrics_http *m)
{
    if (!m) return;
    evhttp_free(m->http);
    free(m);
}

/*
 * scan_io.c - connections to spamd and clamd on the loop (see scan_io.h).
 */
#include "scan/scan_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "core/log.h"
#include "scan/clamd.h"
#include "scan/spamd.h"

#define MAX_ANSWER_BYTES (8u << 20)

struct scan_job {
    enum scan_kind kind;
    struct bufferevent *bev;
    struct event *later;   /* a result known before any I/O, delivered on the next loop turn */
    strbuf answer;
    scan_result res;
    unsigned timeout;
    scan_cb cb;
    void *arg;
};

void scan_target_from_conf(scan_target *t, const sl_scanner *sc)
{
    memset(t, 0, sizeof *t);
    t->kind = sc->kind == SL_SCANNER_SPAMD ? SCAN_SPAMD : sc->kind == SL_SCANNER_CLAMD ? SCAN_CLAMD
              : sc->kind == SL_SCANNER_MILTER                                     ? SCAN_MILTER
                                                                                  : SCAN_NONE;
    t->host = sc->host;
    t->port = sc->port;
    t->unix_path = sc->unix_path;
    t->timeout = sc->timeout;
    t->max_size = sc->max_size;
}

/* job_finish - deliver the result and free the job. */
static void job_finish(scan_job *j)
{
    if (j->bev) bufferevent_free(j->bev);
    if (j->later) event_free(j->later);
    j->cb(j->arg, &j->res);
    scan_result_free(&j->res);
    sb_free(&j->answer);
    free(j);
}

/* job_fail - end with SCAN_FAILED and why. */
static void job_fail(scan_job *j, const char *why)
{
    j->res.status = SCAN_FAILED;
    free(j->res.detail);
    j->res.detail = xstrdup(why);
    job_finish(j);
}

/* job_parse - feed the answer so far to the engine; true when the job ended. */
static bool job_parse(scan_job *j, bool eof)
{
    int rc = j->kind == SCAN_SPAMD ? spamd_parse(SPAMD_SYMBOLS, j->answer.data, j->answer.len, eof, &j->res)
                                   : clamd_parse(j->answer.data, j->answer.len, eof, &j->res);
    if (rc == 0 && !eof) return false;
    if (rc == 0) j->res.status = SCAN_FAILED;
    if (rc < 0) j->res.status = SCAN_FAILED;
    job_finish(j);
    return true;
}

/* take_input - move what arrived into j->answer; false (the job failed and is gone) when too long. */
static bool take_input(scan_job *j, struct bufferevent *bev)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (j->answer.len + n > MAX_ANSWER_BYTES) {
        job_fail(j, "answer too long");
        return false;
    }
    sb_reserve(&j->answer, n + 1);
    evbuffer_remove(in, j->answer.data + j->answer.len, n);
    j->answer.len += n;
    j->answer.data[j->answer.len] = '\0';
    return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    scan_job *j = arg;
    if (take_input(j, bev)) job_parse(j, false);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    scan_job *j = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) return;
    if (what & BEV_EVENT_TIMEOUT) {
        char why[64];
        snprintf(why, sizeof why, "no answer within %us", j->timeout);
        return job_fail(j, why);
    }
    char why[160];
    int err = EVUTIL_SOCKET_ERROR();
    snprintf(why, sizeof why, "connection failed: %s", err ? strerror(err) : "error");
    job_fail(j, why);
}

/* on_event_eof - a closed connection: what arrived with the close, then the engine decides
 * whether the answer was complete; anything else goes to on_event. */
static void on_event_eof(struct bufferevent *bev, short what, void *arg)
{
    scan_job *j = arg;
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        if (take_input(j, bev)) job_parse(j, true);
        return;
    }
    on_event(bev, what, arg);
}

/* on_later - a result decided before any I/O (bad address, message not scanned). */
static void on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    job_finish(arg);
}

/* target_addr - the socket address of t; 0 or -1. */
static int target_addr(const scan_target *t, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (t->unix_path) {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        if (strlen(t->unix_path) >= sizeof un->sun_path) return -1;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, t->unix_path);
        *len = sizeof *un;
        return 0;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (t->host && inet_pton(AF_INET, t->host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)t->port);
        *len = sizeof *in4;
        return 0;
    }
    if (t->host && inet_pton(AF_INET6, t->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)t->port);
        *len = sizeof *in6;
        return 0;
    }
    return -1;
}

/* request_spamd - the SYMBOLS request and the message, referenced, not copied. */
static void request_spamd(struct evbuffer *out, const scan_req *q)
{
    strbuf head;
    sb_init(&head);
    spamd_request_head(&head, SPAMD_SYMBOLS, q->optin, q->len);
    evbuffer_add(out, head.data, head.len);
    sb_free(&head);
    evbuffer_add_reference(out, q->data, q->len, NULL, NULL);
}

/* request_clamd - INSTREAM with at most max bytes of the message (0: all), in chunks. */
static void request_clamd(struct evbuffer *out, const scan_req *q, uint64_t max)
{
    unsigned char hdr[4];
    evbuffer_add(out, CLAMD_COMMAND, sizeof CLAMD_COMMAND); /* with its NUL */
    size_t len = max && q->len > max ? (size_t)max : q->len;
    for (size_t off = 0; off < len; off += CLAMD_CHUNK) {
        size_t n = len - off < CLAMD_CHUNK ? len - off : CLAMD_CHUNK;
        clamd_chunk_header((uint32_t)n, hdr);
        evbuffer_add(out, hdr, 4);
        evbuffer_add_reference(out, q->data + off, n, NULL, NULL);
    }
    clamd_chunk_header(0, hdr);
    evbuffer_add(out, hdr, 4);
}

/* job_later - deliver j's result on the next loop turn. */
static scan_job *job_later(struct event_base *base, scan_job *j)
{
    j->later = evtimer_new(base, on_later, j);
    struct timeval now = {0, 0};
    evtimer_add(j->later, &now);
    return j;
}

scan_job *scan_start(struct event_base *base, const scan_target *t, const scan_req *q, scan_cb cb, void *arg)
{
    scan_job *j = xcalloc(1, sizeof *j);
    j->kind = t->kind;
    j->cb = cb;
    j->arg = arg;
    j->timeout = t->timeout ? t->timeout : 30;
    sb_init(&j->answer);
    struct sockaddr_storage ss;
    socklen_t sl;
    if ((t->kind != SCAN_SPAMD && t->kind != SCAN_CLAMD) || target_addr(t, &ss, &sl) != 0) {
        j->res.status = SCAN_FAILED;
        j->res.detail = xstrdup("no usable scanner address");
        return job_later(base, j);
    }
    if (t->kind == SCAN_SPAMD && t->max_size && q->len > t->max_size) { /* as spamc: too big to be spam */
        j->res.status = SCAN_DONE;
        j->res.detail = xasprintf("not scanned: %zu bytes, over the scanner's max_size", q->len);
        return job_later(base, j);
    }
    j->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(j->bev, on_read, NULL, on_event_eof, j);
    struct timeval tv = {(time_t)j->timeout, 0};
    bufferevent_set_timeouts(j->bev, &tv, &tv);
    struct evbuffer *out = bufferevent_get_output(j->bev);
    if (t->kind == SCAN_SPAMD) request_spamd(out, q);
    else request_clamd(out, q, t->max_size);
    bufferevent_enable(j->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(j->bev, (struct sockaddr *)&ss, (int)sl) != 0) {
        bufferevent_free(j->bev);
        j->bev = NULL;
        j->res.status = SCAN_FAILED;
        j->res.detail = xstrdup("cannot connect");
        return job_later(base, j);
    }
    return j;
}

void scan_cancel(scan_job *j)
{
    if (!j) return;
    if (j->bev) bufferevent_free(j->bev);
    if (j->later) event_free(j->later);
    scan_result_free(&j->res);
    sb_free(&j->answer);
    free(j);
}

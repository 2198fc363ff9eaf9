/*
 * bev.c - immediate writes to bufferevents (see bev.h).
 */
#include "core/bev.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <sys/socket.h>

/* direct_fd - the socket to write to directly, or -1 (TLS, not connected, or data already queued). */
static int direct_fd(struct bufferevent *bev)
{
    if (bufferevent_get_underlying(bev) || bufferevent_openssl_get_ssl(bev)) return -1;
    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0) return -1;
    return (int)bufferevent_getfd(bev);
}

bool bev_send(struct bufferevent *bev, const void *data, size_t len)
{
    const char *p = data;
    int fd = direct_fd(bev);
    if (fd >= 0) {
        while (len) {
            ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break; /* EAGAIN, or an error the bufferevent reports on its own write */
            p += n;
            len -= (size_t)n;
        }
    }
    if (len) bufferevent_write(bev, p, len);
    return len == 0;
}

bool bev_send_buffer(struct bufferevent *bev, struct evbuffer *buf)
{
    int fd = direct_fd(bev);
    if (fd >= 0) {
        while (evbuffer_get_length(buf)) {
            int n = evbuffer_write(buf, fd);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
        }
    }
    bool done = evbuffer_get_length(buf) == 0;
    if (!done) bufferevent_write_buffer(bev, buf);
    return done;
}

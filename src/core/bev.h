/*
 * bev.h - writing to a libevent bufferevent without a round trip through the event loop.
 *
 * bufferevent_write only queues: the write event is enabled (one epoll_ctl), the loop writes
 * on its next turn, and the event is disabled again (another epoll_ctl). An SMTP reply or
 * command is a few dozen bytes that the socket almost always takes at once, so these functions
 * send straight away when nothing is queued ahead of the data on a plain (non-TLS) socket, and
 * queue only what the kernel did not take. Loop thread only, like every bufferevent call.
 */
#ifndef SLUICE_BEV_H
#define SLUICE_BEV_H
#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct evbuffer;

/* bev_send - write len bytes now if possible, queue the rest; true when nothing is left queued. */
bool bev_send(struct bufferevent *bev, const void *data, size_t len);
/* bev_send_buffer - the same for the contents of buf (drained: sent or moved into bev's output). */
bool bev_send_buffer(struct bufferevent *bev, struct evbuffer *buf);

#endif

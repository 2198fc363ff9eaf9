/*
 * ctx.h - the daemon's shared context: the loop, the current configuration and the services
 * every component uses. Owned by main; only the loop thread touches it. The scheduler is not
 * in it: lower layers reach it only through callbacks the daemon registers (the enqueue sink).
 * Configuration reload: components that hold a conf across callbacks take a reference with
 * ctx_conf_get and drop it with ctx_conf_put (conf/conf.h); a replaced conf is freed when its
 * last user lets go. core declares the context only and depends on no other folder.
 */
#ifndef SLUICE_CTX_H
#define SLUICE_CTX_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct sl_conf;
struct store;
struct workq;
struct dns_ctx;
struct sl_dir;
struct qmsg;
struct hostmem;
struct sts_ctx;

typedef struct sl_ctx {
    struct event_base *base;
    struct sl_conf *conf; /* current configuration */
    struct sl_dir *dir;   /* current directory (dir/dir.h; reference-counted, swapped on reload) */
    struct store *store;
    struct workq *wq;
    struct dns_ctx *dns;
    /* where enqueue hands committed queue files (enqueue_set_sink; the daemon wires the scheduler) */
    void (*enqueue_sink)(void *arg, struct qmsg *msg, char *path);
    void *enqueue_sink_arg;
    /* ETRN (RFC 1985): make the queued messages for node ("domain", "@domain", "#channel") due now;
     * the number of messages started, or -1 when the queue cannot run (the daemon wires the scheduler) */
    int (*queue_run)(void *arg, const char *node);
    void *queue_run_arg;
    bool stopping;
    char loop_token[40];  /* installation-unique XLOOP token (QUEUE/loop-token) */
    struct sockaddr_storage *listen_addrs; /* our listening sockets, for self-MX detection */
    size_t n_listen;
    struct ssl_ctx_st *tls_server; /* STARTTLS server context (NULL: no certificate configured) */
    struct ssl_ctx_st *tls_client; /* opportunistic client context */
    struct hostmem *hostmem; /* MX hosts that failed lately, per destination (deliver/hostmem.h) */
    struct sts_ctx *sts;  /* MTA-STS policies: discovery and the durable cache (sts/sts.h) */
    void *conf_refs;      /* private: reference counts (conf/conf_ref.c) */
} sl_ctx;

#endif

/*
 * fleet.c - reject_mode: soft and hard refusals for fleets of MX hosts (see fleet.h).
 * The answer "is this host a last MX of domain D" is cached per domain (a direct-mapped table
 * of FLEET_SLOTS entries, FLEET_TTL seconds), so a storm of unknown recipients in one domain
 * costs one MX lookup.
 */
#include "policy/fleet.h"
#include "conf/conf.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define FLEET_SLOTS 1024
#define FLEET_TTL 300

typedef struct {
    char *domain;
    bool last;        /* this host is a last MX of domain */
    int64_t expires;  /* unix seconds */
} fleet_slot;

struct fleet {
    sl_ctx *ctx;
    fleet_slot slots[FLEET_SLOTS];
};

/* One MX lookup in progress for a verdict. */
typedef struct {
    fleet *f;
    verdict *v;
    char *domain;
    char *host;
    fleet_done done;
    void *arg;
} fleet_req;

fleet *fleet_new(sl_ctx *ctx)
{
    fleet *f = xcalloc(1, sizeof *f);
    f->ctx = ctx;
    return f;
}

void fleet_free(fleet *f)
{
    if (!f) return;
    for (size_t i = 0; i < FLEET_SLOTS; i++) free(f->slots[i].domain);
    free(f);
}

void fleet_soften(verdict *v)
{
    v->temp = true;
    if (v->code >= 500) v->code = v->code == 554 ? 421 : v->code == 552 ? 452 : 450;
    if (v->status[0] == '5') v->status[0] = '4';
}

bool fleet_is_last_mx(const char *host, const dns_mx *mx, size_t n)
{
    unsigned worst = 0;
    for (size_t i = 0; i < n; i++)
        if (mx[i].pref > worst) worst = mx[i].pref;
    for (size_t i = 0; i < n; i++)
        if (mx[i].pref == worst && str_ieq(mx[i].host, host)) return true;
    return false;
}

/* slot_of - the cache slot of domain. */
static fleet_slot *slot_of(fleet *f, const char *domain)
{
    uint32_t h = 2166136261u;
    for (const char *p = domain; *p; p++) h = (h ^ (uint8_t)(*p | 0x20)) * 16777619u;
    return &f->slots[h % FLEET_SLOTS];
}

/* cache_get - 1 last, 0 not last, -1 unknown. */
static int cache_get(fleet *f, const char *domain)
{
    fleet_slot *s = slot_of(f, domain);
    if (!s->domain || !str_ieq(s->domain, domain) || s->expires < now_unix()) return -1;
    return s->last;
}

static void cache_put(fleet *f, const char *domain, bool last)
{
    fleet_slot *s = slot_of(f, domain);
    free(s->domain);
    s->domain = xstrdup(domain);
    s->last = last;
    s->expires = now_unix() + FLEET_TTL;
}

/* mx_known - the domain's MX hosts (or none: the domain itself is its implicit MX). */
static void mx_known(void *arg, sl_result res, const dns_mx *mx, size_t n, const char *errmsg)
{
    fleet_req *r = arg;
    int last = -1;
    if (res == SL_OK && n) last = fleet_is_last_mx(r->host, mx, n);
    else if (res == SL_PERM || (res == SL_OK && !n)) last = str_ieq(r->host, r->domain); /* RFC 5321 5.1 implicit MX */
    if (last >= 0) cache_put(r->f, r->domain, last);
    else log_info(NULL, "reject_mode", "domain=%s mx=unknown error=\"%s\" mode=soft", r->domain, errmsg ? errmsg : "");
    log_debug(NULL, "fleet_mx", "domain=%s host=%s last=%s", r->domain, r->host, last < 0 ? "unknown" : last ? "yes" : "no");
    if (last != 1) fleet_soften(r->v);
    r->done(r->arg, r->v);
    free(r->domain);
    free(r->host);
    free(r);
}

/* fleet_applies - whether the reject mode can change v. */
static bool fleet_applies(const sl_conf *conf, const verdict *v)
{
    return conf->opt.reject_mode != REJECT_HARD && v->cls != VERDICT_OK && !v->temp && verdict_local_data(v->cls);
}

void fleet_apply_now(const sl_conf *conf, verdict *v)
{
    if (fleet_applies(conf, v)) fleet_soften(v);
}

void fleet_apply(fleet *f, const sl_conf *conf, verdict *v, const char *domain, fleet_done done, void *arg)
{
    if (!fleet_applies(conf, v)) return done(arg, v);
    if (conf->opt.reject_mode == REJECT_SOFT || !domain || !f->ctx->dns) {
        fleet_soften(v);
        return done(arg, v);
    }
    int last = cache_get(f, domain);
    if (last >= 0) {
        if (!last) fleet_soften(v);
        return done(arg, v);
    }
    fleet_req *r = xcalloc(1, sizeof *r);
    *r = (fleet_req){f, v, xstrdup(domain), xstrdup(conf->opt.hostname), done, arg};
    dns_lookup_mx(f->ctx->dns, domain, mx_known, r);
}

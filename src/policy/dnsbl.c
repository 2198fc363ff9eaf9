/*
 * dnsbl.c - DNS block and allow lists at connect (see dnsbl.h).
 */
#include "policy/dnsbl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "dns/dns.h"

#define CACHE_SLOTS 4096
#define CACHE_TTL 300

/* One remembered answer: key "ip|zone", the A record ("" = not listed). */
typedef struct {
    char *key;
    char *answer;
    int64_t expires;
} dnsbl_slot;

typedef struct dnsbl_cache {
    dnsbl_slot slot[CACHE_SLOTS];
} dnsbl_cache;

/* One session's lookups. */
typedef struct dnsbl_job {
    policy_sess *ps;      /* NULL once the session is gone */
    const sl_service *svc;
    dnsbl_done_fn done;
    size_t n, pending;
    char **zone;          /* allow lists first, then block lists */
    char **answer;        /* per zone: the A record, "" not listed, NULL failed */
    size_t n_allow;
} dnsbl_job;

/* slot_of - the cache slot of key (one slot per hash: a collision replaces). */
static dnsbl_slot *slot_of(struct policy *p, const char *key)
{
    if (!p->dnsbl_cache) p->dnsbl_cache = xcalloc(1, sizeof(dnsbl_cache));
    uint64_t h = 1469598103934665603ULL;
    for (const char *c = key; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    return &((dnsbl_cache *)p->dnsbl_cache)->slot[h % CACHE_SLOTS];
}

void dnsbl_cache_free(struct policy *p)
{
    dnsbl_cache *c = p->dnsbl_cache;
    if (!c) return;
    for (size_t i = 0; i < CACHE_SLOTS; i++) free(c->slot[i].key), free(c->slot[i].answer);
    free(c);
    p->dnsbl_cache = NULL;
}

char *dnsbl_query_name(const char *ip, const char *zone)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, ip, a) == 1) return xasprintf("%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], zone);
    if (inet_pton(AF_INET6, ip, a) != 1) return NULL;
    strbuf b;
    sb_init(&b);
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) sb_printf(&b, "%c.%c.", hex[a[i] & 15], hex[a[i] >> 4]);
    sb_puts(&b, zone);
    return sb_steal(&b);
}

/* job_free - release j. */
static void job_free(dnsbl_job *j)
{
    for (size_t i = 0; i < j->n; i++) free(j->zone[i]), free(j->answer[i]);
    free(j->zone);
    free(j->answer);
    free(j);
}

/* expand_text - DNS_VERIFY_TEXT with $ip, $zone and $answer filled in. */
static char *expand_text(const char *t, const char *ip, const char *zone, const char *answer)
{
    strbuf b;
    sb_init(&b);
    for (const char *p = t; *p; p++) {
        if (strncmp(p, "$ip", 3) == 0) sb_puts(&b, ip), p += 2;
        else if (strncmp(p, "$zone", 5) == 0) sb_puts(&b, zone), p += 4;
        else if (strncmp(p, "$answer", 7) == 0) sb_puts(&b, answer), p += 6;
        else sb_putc(&b, *p);
    }
    return sb_steal(&b);
}

/* allowed - an allow list names the client. */
static bool allowed(const dnsbl_job *j, const smtp_sess *s)
{
    for (size_t i = 0; i < j->n_allow; i++)
        if (j->answer[i] && *j->answer[i]) {
            log_info(s->id, "dnswl", "client=[%s] zone=%s answer=%s", s->client_ip, j->zone[i], j->answer[i]);
            return true;
        }
    return false;
}

/* listed - the block lists' answers: a refusal, or (score) a note for the session's messages. */
static verdict listed(const dnsbl_job *j, policy_sess *ps)
{
    smtp_sess *s = ps->s;
    verdict v = verdict_ok();
    strbuf note;
    sb_init(&note);
    for (size_t i = j->n_allow; i < j->n && v.cls == VERDICT_OK; i++) {
        if (!j->answer[i]) log_info(s->id, "dnsbl_failed", "client=[%s] zone=%s", s->client_ip, j->zone[i]);
        if (!j->answer[i] || !*j->answer[i]) continue;
        log_info(s->id, "dnsbl", "client=[%s] zone=%s answer=%s action=%s", s->client_ip, j->zone[i], j->answer[i],
                 j->svc->dnsbl_score ? "score" : "reject");
        if (j->svc->dnsbl_score) {
            sb_printf(&note, "%s%s=%s", note.len ? ", " : "", j->zone[i], j->answer[i]);
            continue;
        }
        v = verdict_refuse(VERDICT_DNSBL, j->svc->dnsbl_code / 100 == 4, s->client_ip);
        v.code = (int)j->svc->dnsbl_code;
        char *t = j->svc->dnsbl_text ? expand_text(j->svc->dnsbl_text, s->client_ip, j->zone[i], j->answer[i])
                                     : xasprintf("Service unavailable; client [%s] blocked using %s", s->client_ip,
                                                 j->zone[i]);
        verdict_set_text(&v, t);
        free(t);
    }
    if (note.len) {
        free(ps->dnsbl_note);
        ps->dnsbl_note = xasprintf("X-Sluice-DNSBL: %s", note.data);
    }
    sb_free(&note);
    return v;
}

/* job_finish - every list answered: allow, note, or refuse. */
static void job_finish(dnsbl_job *j)
{
    policy_sess *ps = j->ps;
    if (!ps) return job_free(j);
    ps->dnsbl = NULL;
    dnsbl_done_fn done = j->done;
    verdict v = allowed(j, ps->s) ? verdict_ok() : listed(j, ps);
    job_free(j);
    done(ps, &v);
}

/* Per lookup: the job and which zone. */
typedef struct {
    dnsbl_job *j;
    size_t i;
    char *key;
} dnsbl_ask;

static void on_answer(void *arg, sl_result res, const struct sockaddr_storage *addrs, size_t n, const char *err)
{
    dnsbl_ask *a = arg;
    dnsbl_job *j = a->j;
    (void)err;
    char text[64] = "";
    if (res == SL_OK && n && addrs[0].ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&addrs[0])->sin_addr, text, sizeof text);
    else if (res == SL_OK && n) snprintf(text, sizeof text, "listed");
    j->answer[a->i] = res == SL_TEMP ? NULL : xstrdup(text);
    if (j->ps && res != SL_TEMP) { /* remember it */
        dnsbl_slot *sl = slot_of(j->ps->p, a->key);
        free(sl->key), free(sl->answer);
        sl->key = xstrdup(a->key);
        sl->answer = xstrdup(text);
        sl->expires = now_unix() + CACHE_TTL;
    }
    free(a->key);
    free(a);
    if (--j->pending == 0) job_finish(j);
}

void policy_dnsbl_check(policy_sess *ps, const sl_service *svc, dnsbl_done_fn done)
{
    smtp_sess *s = ps->s;
    verdict ok = verdict_ok();
    if (!svc || (!svc->dnsbl.n && !svc->dnswl.n) || s->local || !ps->p->ctx->dns) return done(ps, &ok);
    dnsbl_job *j = xcalloc(1, sizeof *j);
    j->ps = ps;
    j->svc = svc;
    j->done = done;
    j->n_allow = svc->dnswl.n;
    j->n = svc->dnswl.n + svc->dnsbl.n;
    j->zone = xcalloc(j->n, sizeof *j->zone);
    j->answer = xcalloc(j->n, sizeof *j->answer);
    for (size_t i = 0; i < j->n; i++)
        j->zone[i] = xstrdup(i < j->n_allow ? svc->dnswl.v[i] : svc->dnsbl.v[i - j->n_allow]);
    ps->dnsbl = j;
    j->pending = j->n + 1; /* held until every question is out */
    int64_t now = now_unix();
    for (size_t i = 0; i < j->n; i++) {
        char *name = dnsbl_query_name(s->client_ip, j->zone[i]);
        char *key = xasprintf("%s|%s", s->client_ip, j->zone[i]);
        dnsbl_slot *sl = slot_of(ps->p, key);
        if (!name) { /* not an IP address (a local socket): nothing to ask */
            j->answer[i] = xstrdup("");
            j->pending--;
        } else if (sl->key && strcmp(sl->key, key) == 0 && sl->expires > now) {
            j->answer[i] = xstrdup(sl->answer);
            j->pending--;
        } else {
            dnsbl_ask *a = xcalloc(1, sizeof *a);
            a->j = j;
            a->i = i;
            a->key = key;
            key = NULL;
            dns_lookup_addr(ps->p->ctx->dns, name, on_answer, a);
        }
        free(key);
        free(name);
    }
    if (--j->pending == 0) job_finish(j);
}

void policy_dnsbl_abandon(policy_sess *ps)
{
    if (!ps->dnsbl) return;
    ((dnsbl_job *)ps->dnsbl)->ps = NULL;
    ps->dnsbl = NULL;
}

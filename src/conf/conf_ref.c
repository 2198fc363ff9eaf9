/* conf_ref.c - reference counts of the configurations held in sl_ctx (declared in core/ctx.h):
 * a conf replaced by a reload is freed when its last user lets go. It lives in conf/ because
 * freeing a configuration is conf's business; core only declares the context. Loop thread only. */
#include "core/ctx.h"
#include "conf/conf.h"
#include "core/util.h"

#include <stdlib.h>

typedef struct cref {
    struct cref *next;
    sl_conf *conf;
    int refs;
} cref;

static cref **refs_head(sl_ctx *ctx)
{
    return (cref **)&ctx->conf_refs;
}

static cref *ref_find(sl_ctx *ctx, sl_conf *c)
{
    for (cref *r = *refs_head(ctx); r; r = r->next)
        if (r->conf == c) return r;
    cref *r = xcalloc(1, sizeof *r);
    r->conf = c;
    r->next = *refs_head(ctx);
    *refs_head(ctx) = r;
    return r;
}

static void ref_drop_if_unused(sl_ctx *ctx, cref *r)
{
    if (r->refs > 0 || r->conf == ctx->conf) return;
    for (cref **pp = refs_head(ctx); *pp; pp = &(*pp)->next) {
        if (*pp != r) continue;
        *pp = r->next;
        conf_free(r->conf);
        free(r);
        return;
    }
}

sl_conf *ctx_conf_get(sl_ctx *ctx)
{
    ref_find(ctx, ctx->conf)->refs++;
    return ctx->conf;
}

void ctx_conf_put(sl_ctx *ctx, sl_conf *c)
{
    if (!c) return;
    cref *r = ref_find(ctx, c);
    r->refs--;
    ref_drop_if_unused(ctx, r);
}

void ctx_conf_replace(sl_ctx *ctx, sl_conf *c)
{
    sl_conf *old = ctx->conf;
    ctx->conf = c;
    if (old) ref_drop_if_unused(ctx, ref_find(ctx, old));
}

void ctx_conf_release_all(sl_ctx *ctx)
{
    cref *r = *refs_head(ctx);
    bool cur_freed = false;
    while (r) {
        cref *next = r->next;
        if (r->conf == ctx->conf) cur_freed = true;
        conf_free(r->conf);
        free(r);
        r = next;
    }
    *refs_head(ctx) = NULL;
    if (!cur_freed && ctx->conf) conf_free(ctx->conf);
    ctx->conf = NULL;
}

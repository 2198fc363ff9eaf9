/*
 * complete.c - header address completion at the end of data (see complete.h). The rewriting
 * itself is the pure engine rewrite/hdraddr.c; this file chooses the domain and the scope from
 * the session's source channel and replaces the session's message when something changed.
 *
 * It runs after DKIM verification (a signature is checked on the message as it arrived) and
 * before the milters, the scanners, Sieve and DKIM signing (they see, and a signature covers,
 * the completed header). The envelope is not completed: a domainless MAIL FROM or RCPT TO stays
 * a 501 (doc/configuration.md says why).
 */
#include "conf/conf.h"
#include "core/log.h"
#include "policy/complete.h"
#include "rewrite/hdraddr.h"
#include "smtp/parse.h"

#include <string.h>

const char *complete_domain(const smtp_sess *s)
{
    const sl_channel *src = conf_channel_by_name(s->conf, s->src_channel);
    if (src && src->remotehost && s->helo && *s->helo) {
        char err[128];
        if (smtp_domain_check(s->helo, strlen(s->helo), false, err, sizeof err) == 0) return s->helo;
    }
    return s->conf->opt.hostname;
}

void complete_headers(smtp_sess *s)
{
    const sl_channel *src = conf_channel_by_name(s->conf, s->src_channel);
    bool inner = src && src->inner;
    if (!s->data.data || s->data.len < s->hdr_len) return;
    const char *msg = s->data.data + s->hdr_len; /* our trace lines and Received: hold no address fields */
    size_t len = s->data.len - s->hdr_len;
    if (!hdraddr_needed(msg, len, inner)) return;
    const char *domain = complete_domain(s);
    if (!domain || !*domain) return;
    strbuf b;
    sb_init(&b);
    sb_append(&b, s->data.data, s->hdr_len);
    size_t n = hdraddr_complete(msg, len, domain, inner, &b);
    if (!n) {
        sb_free(&b);
        return;
    }
    log_info(s->qid, "headers_completed", "addresses=%zu domain=%s channel=%s%s", n, domain, s->src_channel,
             inner ? " inner=yes" : "");
    smtp_sess_set_content(s, &b);
}

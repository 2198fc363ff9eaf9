/* access.c - access-table probes and verdicts (see access.h). */
#include "policy/access.h"
#include "core/log.h"
#include "rewrite/mapping.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

char *access_port_probe(const access_conn *c)
{
    return xasprintf("TCP|%s|%u|%s|%u", c->server_ip, c->server_port, c->client_ip, c->client_port);
}

char *access_app_info(const access_conn *c)
{
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "SMTP");
    if (c->helo && *c->helo) {
        sb_putc(&b, '/');
        for (const char *p = c->helo; *p && p - c->helo < 255; p++) /* no field separator from the client */
            sb_putc(&b, *p == '|' || (unsigned char)*p < ' ' ? '_' : *p);
    }
    return sb_steal(&b);
}

char *access_from_probe(const access_conn *c, const char *src_channel, const char *from, const char *auth_user)
{
    char *t = access_port_probe(c), *app = access_app_info(c);
    char *p = xasprintf("%s|%s|MAIL|%s|%s|%s", t, app, src_channel, from, auth_user ? auth_user : "");
    free(t);
    free(app);
    return p;
}

char *access_etrn_probe(const access_conn *c, const char *src_channel, const char *node)
{
    char *t = access_port_probe(c);
    char *p = xasprintf("%s|SMTP|ETRN|%s|%s", t, src_channel, node);
    free(t);
    return p;
}

char *access_send_probe(const char *src, const char *from, const char *dst, const char *to)
{
    return xasprintf("%s|%s|%s|%s", src, from, dst, to);
}

char *access_mail_probe(const access_conn *c, const char *src, const char *from, const char *dst, const char *to)
{
    char *t = access_port_probe(c), *app = access_app_info(c);
    char *p = xasprintf("%s|%s|MAIL|%s|%s|%s|%s", t, app, src, from, dst, to);
    free(t);
    free(app);
    return p;
}

access_verdict access_check(const struct sl_mappings *m, const char *table, const char *input, const char *flags,
                            int perm_code, const char *default_text, verdict *out)
{
    *out = verdict_ok();
    if (!m || !mappings_has_table(m, table)) return ACCESS_NONE;
    mapping_result r;
    memset(&r, 0, sizeof r);
    sl_result rc = mapping_probe(m, table, input, flags, &r);
    access_verdict v = ACCESS_NONE;
    if (rc != SL_OK) {
        *out = verdict_refuse(VERDICT_LOOKUP_FAILED, true, NULL);
        char text[160];
        snprintf(text, sizeof text, "Access check failed (%s), try again later", table);
        verdict_set_text(out, text);
        out->table = table;
        v = ACCESS_TEMP;
    } else if (r.matched && (r.no_flag || r.temp)) {
        bool temp = r.temp;
        *out = verdict_refuse(VERDICT_ACCESS, temp, NULL);
        out->code = temp ? (perm_code == 554 ? 421 : 450) : perm_code;
        verdict_set_status(out, r.status_code);
        verdict_set_text(out, r.output && *r.output ? r.output : default_text);
        out->table = table;
        v = temp ? ACCESS_TEMP : ACCESS_REJECT;
    } else if (r.matched && r.ok_flag) {
        v = ACCESS_ALLOW;
    }
    out->delay_ms = r.delay_ms;
    log_debug(NULL, "access", "table=%s input=\"%s\" verdict=%d line=%d", table, input, (int)v, r.entry_line);
    mapping_result_free(&r);
    return v;
}

/* access.c - access-table probes and verdicts (see access.h). */
#include "smtp/access.h"
#include "core/log.h"
#include "rewrite/mapping.h"

#include <stdlib.h>
#include <string.h>

char *access_port_probe(const access_conn *c)
{
    return xasprintf("TCP|%s|%u|%s|%u", c->server_ip, c->server_port, c->client_ip, c->client_port);
}

char *access_from_probe(const access_conn *c, const char *src_channel, const char *from, const char *auth_user)
{
    char *t = access_port_probe(c);
    char *p = xasprintf("%s|SMTP|MAIL|%s|%s|%s", t, src_channel, from, auth_user ? auth_user : "");
    free(t);
    return p;
}

char *access_send_probe(const char *src, const char *from, const char *dst, const char *to)
{
    return xasprintf("%s|%s|%s|%s", src, from, dst, to);
}

char *access_mail_probe(const access_conn *c, const char *src, const char *from, const char *dst, const char *to)
{
    char *t = access_port_probe(c);
    char *p = xasprintf("%s|%s|%s|%s|%s", t, src, from, dst, to);
    free(t);
    return p;
}

access_verdict access_check(const struct sl_mappings *m, const char *table, const char *input, const char *flags,
                            int perm_code, const char *default_text, strbuf *reply, unsigned *delay_ms)
{
    *delay_ms = 0;
    if (!m || !mappings_has_table(m, table)) return ACCESS_NONE;
    mapping_result r;
    memset(&r, 0, sizeof r);
    sl_result rc = mapping_probe(m, table, input, flags, &r);
    access_verdict v = ACCESS_NONE;
    if (rc != SL_OK) {
        sb_printf(reply, "451 4.3.0 Access check failed (%s), try again later", table);
        v = ACCESS_TEMP;
    } else if (r.matched && (r.no_flag || r.temp)) {
        bool temp = r.temp;
        const char *enh = r.status_code ? r.status_code : temp ? "4.7.1" : "5.7.1";
        int code = temp ? (perm_code == 554 ? 421 : 450) : perm_code;
        const char *text = r.output && *r.output ? r.output : default_text;
        sb_printf(reply, "%d %s %s", code, enh, text);
        v = temp ? ACCESS_TEMP : ACCESS_REJECT;
    } else if (r.matched && r.ok_flag) {
        v = ACCESS_ALLOW;
    }
    *delay_ms = r.delay_ms;
    log_debug(NULL, "access", "table=%s input=\"%s\" verdict=%d line=%d", table, input, (int)v, r.entry_line);
    mapping_result_free(&r);
    return v;
}

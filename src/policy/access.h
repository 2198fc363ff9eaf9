/*
 * access.h - the Messaging Server access tables probed by the SMTP server (doc/mappings.md):
 * the probe strings for PORT_ACCESS, FROM_ACCESS, ORIG_SEND_ACCESS/SEND_ACCESS and
 * ORIG_MAIL_ACCESS/MAIL_ACCESS, and turning a mapping result into a verdict. Pure; any thread.
 */
#ifndef SLUICE_ACCESS_H
#define SLUICE_ACCESS_H
#include "core/util.h"
#include "policy/verdict.h"

struct sl_mappings;

typedef struct {
    const char *server_ip;
    unsigned server_port;
    const char *client_ip;
    unsigned client_port;
    const char *helo;       /* the name the client claimed in HELO/EHLO, or NULL */
} access_conn;

typedef enum { ACCESS_NONE = 0, ACCESS_ALLOW, ACCESS_REJECT, ACCESS_TEMP } access_verdict;

/* access_port_probe - "TCP|server-ip|server-port|client-ip|client-port"; caller frees. */
char *access_port_probe(const access_conn *c);
/* access_app_info - Messaging Server's app-info field: "SMTP/helo-name" ("SMTP" before HELO); caller frees. */
char *access_app_info(const access_conn *c);
/* access_from_probe - "TCP|...|client-port|SMTP/helo|MAIL|src-channel|from|auth-user" for FROM_ACCESS; caller frees. */
char *access_from_probe(const access_conn *c, const char *src_channel, const char *from, const char *auth_user);
/* access_etrn_probe - "TCP|...|client-port|SMTP|ETRN|src-channel|node" for ETRN_ACCESS; caller frees. */
char *access_etrn_probe(const access_conn *c, const char *src_channel, const char *node);
/* access_send_probe - "src-channel|from|dst-channel|to" (ORIG_SEND_ACCESS, SEND_ACCESS); caller frees. */
char *access_send_probe(const char *src, const char *from, const char *dst, const char *to);
/* access_mail_probe - "TCP|...|client-port|SMTP/helo|MAIL|src-channel|from|dst-channel|to" (ORIG_MAIL_ACCESS,
 * MAIL_ACCESS), as Messaging Server writes them; caller frees. */
char *access_mail_probe(const access_conn *c, const char *src, const char *from, const char *dst, const char *to);
/*
 * access_check - probe table (absent file or table: ACCESS_NONE). On ACCESS_REJECT/ACCESS_TEMP *out
 * is a VERDICT_ACCESS refusal: code perm_code (e.g. 550), or 450 for $W (421 when perm_code is
 * 554, at connect), the $X enhanced code if any, and the table's text or default_text. A table
 * that loops is ACCESS_TEMP with a VERDICT_LOOKUP_FAILED. Otherwise *out accepts. In every case
 * out->delay_ms is the $D delay (0 if none); out->table is table, which must outlive *out.
 * The caller frees *out with verdict_free.
 */
access_verdict access_check(const struct sl_mappings *m, const char *table, const char *input, const char *flags,
                            int perm_code, const char *default_text, verdict *out);

#endif

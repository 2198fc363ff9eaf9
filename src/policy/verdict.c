/*
 * verdict.c - verdicts and the reply table (see verdict.h).
 *
 * Each class has one row: permanent and temporary codes and enhanced codes, and a text template
 * in which "{a}" is the subject address, "{h}" our host name and "{d}" the detail (the verdict's
 * text override, else the row's default detail). A text override replaces the whole text of a
 * row that has no "{d}".
 */
#include "policy/verdict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int perm_code, temp_code;
    const char *perm_status, *temp_status;
    const char *text;   /* template */
    const char *detail; /* default for {d} */
    bool local_data;    /* rests on the directory or routing data */
    bool never_perm;    /* a failure to look up is never permanent */
} verdict_row;

static const verdict_row rows[VERDICT__COUNT] = {
    [VERDICT_OK] = {"ok", 250, 250, "2.0.0", "2.0.0", "Ok", NULL, false, false},
    [VERDICT_UNKNOWN_USER] = {"unknown_user", 550, 450, "5.1.1", "4.1.1",
                              "<{a}>: Recipient address rejected: {d}", "User unknown in local recipient table", true,
                              false},
    [VERDICT_RELAY_DENIED] = {"relay_denied", 550, 450, "5.7.1", "4.7.1", "<{a}>: Relay access denied", NULL, true,
                              false},
    [VERDICT_ACCESS] = {"access", 550, 450, "5.7.1", "4.7.1", "{d}", "Access denied", true, false},
    [VERDICT_MAILBOX_STATUS] = {"mailbox_status", 550, 450, "5.2.1", "4.2.1",
                                "<{a}>: Recipient address rejected: {d}", "mailbox disabled", true, false},
    [VERDICT_DOMAIN_STATUS] = {"domain_status", 550, 450, "5.1.2", "4.1.2", "<{a}>: Recipient address rejected: {d}",
                               "domain disabled", true, false},
    [VERDICT_SIZE] = {"size", 552, 452, "5.3.4", "4.3.4", "{d}", "Message size exceeds fixed maximum message size",
                      false, false},
    [VERDICT_RCPT_SIZE] = {"recipient_size", 552, 452, "5.3.4", "4.3.4", "{d}", "Message size exceeds the recipient's limit",
                           true, false},
    [VERDICT_RCPT_LIMIT] = {"rcpt_limit", 452, 452, "4.5.3", "4.5.3", "Error: {d}", "too many recipients", false,
                            false},
    [VERDICT_RCPT_CUTOFF] = {"rcpt_cutoff", 550, 450, "5.5.3", "4.5.3", "Error: {d}",
                             "too many recipients, the transaction is refused", false, false},
    [VERDICT_GROUP_AUTH] = {"group_auth", 550, 450, "5.7.1", "4.7.1", "<{a}>: {d}",
                            "Not authorized to send to this group", true, false},
    [VERDICT_LOOKUP_FAILED] = {"lookup_failed", 451, 451, "4.3.0", "4.3.0", "{d}",
                               "Address lookup failed, try again later", false, true},
    [VERDICT_ROUTE] = {"route", 550, 451, "5.1.2", "4.4.3", "<{a}>: Recipient address rejected: {d}", "cannot route",
                       true, false},
    [VERDICT_TLS_REQUIRED] = {"tls_required", 530, 530, "5.7.0", "5.7.0", "Must issue a STARTTLS command first", NULL,
                              false, false},
    [VERDICT_AUTH_REQUIRED] = {"auth_required", 530, 530, "5.7.0", "5.7.0", "Authentication required", NULL, false,
                               false},
    [VERDICT_AUTH_FAILED] = {"auth_failed", 535, 454, "5.7.8", "4.7.0", "Authentication credentials invalid", NULL,
                             false, false},
    [VERDICT_AUTH_TEMP] = {"auth_temp", 454, 454, "4.7.0", "4.7.0", "Temporary authentication failure", NULL, false,
                           true},
    [VERDICT_AUTH_OK] = {"auth_ok", 235, 235, "2.7.0", "2.7.0", "Authentication successful", NULL, false, false},
    [VERDICT_CONN_LIMIT] = {"conn_limit", 421, 421, "4.7.0", "4.7.0", "{h} {d}, try again later",
                            "Too many connections", false, true},
    [VERDICT_CONTENT_REJECT] = {"content_reject", 550, 450, "5.7.1", "4.7.1", "{d}", "Message content rejected", false,
                                false},
    [VERDICT_SCAN_FAILED] = {"scan_failed", 451, 451, "4.7.1", "4.7.1", "{d}",
                             "Content scanner unavailable, try again later", false, true},
    [VERDICT_MILTER] = {"milter", 550, 451, "5.7.1", "4.7.1", "{d}", "Command rejected", false, false},
    [VERDICT_DNSBL] = {"dnsbl", 554, 421, "5.7.1", "4.7.1", "{d}", "Service unavailable; client blocked", false, false},
    /* RFC 7208 §8.4 and RFC 7372: the explanation of the sender's domain is the detail */
    [VERDICT_SPF_FAIL] = {"spf_fail", 550, 451, "5.7.23", "4.7.23", "<{a}>: SPF validation failed: {d}",
                          "the sender's domain does not permit this host", false, false},
    [VERDICT_SPF_TEMP] = {"spf_temperror", 451, 451, "4.7.24", "4.7.24", "<{a}>: {d}",
                          "SPF validation error, try again later", false, true},
    [VERDICT_SOLICIT] = {"solicit", 554, 554, "5.7.9", "5.7.9", "{d}",
                         "Message refused by the recipient's solicitation policy", false, false},
    [VERDICT_ETRN_STARTED] = {"etrn_started", 253, 253, "2.0.0", "2.0.0", "OK, {d} pending messages for node {a} started",
                              "0", false, false},
    [VERDICT_ETRN_NONE] = {"etrn_none", 251, 251, "2.0.0", "2.0.0", "OK, no messages waiting for node {a}", NULL, false,
                           false},
    [VERDICT_ETRN_DENIED] = {"etrn_denied", 459, 459, "4.5.0", "4.5.0", "Node {a} not allowed: {d}", "access denied",
                             false, false},
    [VERDICT_ETRN_FAILED] = {"etrn_failed", 458, 458, "4.3.0", "4.3.0", "Unable to queue messages for node {a}", NULL,
                             false, true},
    [VERDICT_DMARC_REJECT] = {"dmarc_reject", 550, 451, "5.7.1", "4.7.1", "{d}",
                              "Message rejected by the DMARC policy of the From: domain", false, false},
};

verdict verdict_ok(void)
{
    verdict v;
    memset(&v, 0, sizeof v);
    return v;
}

verdict verdict_refuse(verdict_class cls, bool temp, const char *subject)
{
    verdict v = verdict_ok();
    v.cls = cls;
    v.temp = temp || rows[cls].never_perm;
    v.subject = subject;
    return v;
}

void verdict_set_text(verdict *v, const char *text)
{
    free(v->text);
    v->text = text ? xstrdup(text) : NULL;
}

void verdict_set_status(verdict *v, const char *status)
{
    if (status && *status) snprintf(v->status, sizeof v->status, "%s", status);
}

void verdict_free(verdict *v)
{
    free(v->text);
    v->text = NULL;
}

bool verdict_accepts(const verdict *v)
{
    return v->cls == VERDICT_OK || v->cls == VERDICT_AUTH_OK;
}

int verdict_code(const verdict *v)
{
    if (v->code) return v->code;
    return v->temp ? rows[v->cls].temp_code : rows[v->cls].perm_code;
}

/* expand - the row's template with {a}, {h} and {d} filled in. */
static void expand(const verdict_row *row, const verdict *v, const char *host, strbuf *out)
{
    const char *t = row->text;
    if (v->text && !strstr(t, "{d}")) t = "{d}";
    const char *detail = v->text ? v->text : row->detail ? row->detail : "";
    for (const char *p = t; *p; p++) {
        if (p[0] == '{' && p[1] && p[2] == '}' && strchr("ahd", p[1])) {
            const char *val = p[1] == 'a' ? (v->subject ? v->subject : "") : p[1] == 'h' ? host : detail;
            sb_puts(out, val);
            p += 2;
        } else {
            sb_append(out, p, 1);
        }
    }
}

void verdict_reply(const verdict *v, const char *host, strbuf *out)
{
    const verdict_row *row = &rows[v->cls];
    const char *status = v->status[0] ? v->status : v->temp ? row->temp_status : row->perm_status;
    sb_printf(out, "%d %s ", verdict_code(v), status);
    expand(row, v, host ? host : "", out);
}

void verdict_why(const verdict *v, strbuf *out)
{
    sb_printf(out, "class=%s", verdict_class_name(v->cls));
    if (v->table) sb_printf(out, " table=%s", v->table);
}

const char *verdict_class_name(verdict_class cls)
{
    return cls < VERDICT__COUNT ? rows[cls].name : "?";
}

bool verdict_local_data(verdict_class cls)
{
    return cls < VERDICT__COUNT && rows[cls].local_data;
}

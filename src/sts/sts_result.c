/* sts_result.c - MTA-STS failures as RFC 8460 result types (see sts_result.h). */
#include "sts/sts_result.h"

#include <stdlib.h>

#include "core/log.h"

enum sts_result_type sts_result_type_of(const sts_fail_facts *f)
{
    switch (f->stage) {
    case STS_FAIL_FETCH: return f->webpki ? STS_RT_WEBPKI_INVALID : STS_RT_POLICY_FETCH_ERROR;
    case STS_FAIL_POLICY: return STS_RT_POLICY_INVALID;
    case STS_FAIL_MX: return STS_RT_VALIDATION_FAILURE; /* RFC 8460 has no type of its own for it */
    case STS_FAIL_STARTTLS: return STS_RT_STARTTLS_NOT_SUPPORTED;
    case STS_FAIL_HANDSHAKE: return STS_RT_VALIDATION_FAILURE;
    case STS_FAIL_CERT:
        if (!f->chain_ok) return f->expired ? STS_RT_CERT_EXPIRED : STS_RT_CERT_NOT_TRUSTED;
        return f->name_ok ? STS_RT_VALIDATION_FAILURE : STS_RT_CERT_HOST_MISMATCH;
    }
    return STS_RT_VALIDATION_FAILURE;
}

const char *sts_result_type_name(enum sts_result_type t)
{
    static const char *const names[] = {
        [STS_RT_NONE] = "none",
        [STS_RT_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
        [STS_RT_CERT_HOST_MISMATCH] = "certificate-host-mismatch",
        [STS_RT_CERT_EXPIRED] = "certificate-expired",
        [STS_RT_CERT_NOT_TRUSTED] = "certificate-not-trusted",
        [STS_RT_VALIDATION_FAILURE] = "validation-failure",
        [STS_RT_POLICY_FETCH_ERROR] = "sts-policy-fetch-error",
        [STS_RT_POLICY_INVALID] = "sts-policy-invalid",
        [STS_RT_WEBPKI_INVALID] = "sts-webpki-invalid",
    };
    return (size_t)t < SL_ARRAY_LEN(names) ? names[t] : "?";
}

/* clean - text safe inside a double-quoted log value; caller frees. */
static char *clean(const char *s)
{
    char *v = xstrdup(s ? s : "");
    for (char *p = v; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '\'';
    return v;
}

void sts_result_record(const char *msg_id, const char *domain, const char *mx, enum sts_mode mode,
                       enum sts_result_type type, const char *detail)
{
    char *d = clean(detail);
    log_info(msg_id, "sts_failure", "domain=%s mx=%s mode=%s result_type=%s detail=\"%s\"", domain, mx ? mx : "-",
             sts_mode_name(mode), sts_result_type_name(type), d);
    free(d);
}

static sts_fetch_hook_fn fetch_hook; /* set once at start, loop thread */

void sts_result_set_fetch_hook(sts_fetch_hook_fn fn)
{
    fetch_hook = fn;
}

void sts_result_fetch_failed(const char *domain, const sts_policy *kept, enum sts_result_type type,
                             const char *detail)
{
    sts_result_record(NULL, domain, NULL, kept ? kept->mode : STS_MODE_NONE, type, detail);
    if (fetch_hook) fetch_hook(domain, kept, type, detail);
}

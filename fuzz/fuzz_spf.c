/*
 * fuzz_spf.c - the SPF record parser, the macro expander and the header formatters (spf/spf.h)
 * on untrusted bytes: a TXT record and a macro-string come from any DNS zone, MAIL FROM and HELO
 * from any client.
 *
 * Input: the text up to the first NUL, used four ways: as a TXT record (spf_record_parse, after
 * "v=spf1 " is put in front when it lacks it), as a macro-string (spf_macro_expand, plain and
 * exp=), and as the MAIL FROM and HELO of a Received-SPF: header and an Authentication-Results:
 * clause.
 *
 * Properties: a parsed record's domain-specs are valid macro-strings that expand, and after
 * spf_domain_trim an expansion with a dot is at most 253 octets; CIDR lengths are in range;
 * spf_macro_expand succeeds exactly when spf_macro_check says the string is valid, and its output
 * holds no control byte; the header is CRLF lines whose continuation lines begin with a tab, with
 * no other CR, LF or control byte; the clause holds no control byte.
 */
#include "fuzz.h"
#include "spf/spf.h"

#include <arpa/inet.h>
#include <netinet/in.h>

/* no_ctl - whether s holds no byte below 0x20 (but tab when allowed) and no DEL. */
static bool no_ctl(const char *s, bool tab)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && !(tab && c == '\t')) || c == 0x7f) return false;
    }
    return true;
}

/* check_expand - expand s in both modes and check the properties. */
static void check_expand(const char *s, const spf_macro_vars *v)
{
    for (int exp = 0; exp < 2; exp++) {
        strbuf out;
        sb_init(&out);
        char err[160];
        int rc = spf_macro_expand(s, v, exp, &out, err, sizeof err);
        FZ_CHECK((rc == 0) == spf_macro_check(s, exp), "expand rc %d for '%s' (exp %d)", rc, s, exp);
        if (rc == 0) FZ_CHECK(no_ctl(out.data, false), "control byte in expansion of '%s'", s);
        sb_free(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    struct sockaddr_storage ip;
    memset(&ip, 0, sizeof ip);
    ip.ss_family = (size & 1) ? AF_INET6 : AF_INET;
    if (ip.ss_family == AF_INET) inet_pton(AF_INET, "192.0.2.3", &((struct sockaddr_in *)&ip)->sin_addr);
    else inet_pton(AF_INET6, "2001:db8::cb01", &((struct sockaddr_in6 *)&ip)->sin6_addr);
    spf_macro_vars v = {.sender = "strong-bad@email.example.com", .domain = "email.example.com", .ip = &ip,
                        .helo = "mx.example.org", .receiver = "receiver.example.net", .now = 1700000000};

    /* 1. a TXT record */
    char *rec = spf_is_record(text) ? xstrdup(text) : xasprintf("v=spf1 %s", text);
    spf_record r;
    char err[160];
    if (spf_record_parse(rec, &r, err, sizeof err) == 0) {
        for (size_t i = 0; i < r.n; i++) {
            const spf_mech *m = &r.mech[i];
            FZ_CHECK(m->cidr4 >= 0 && m->cidr4 <= 32 && m->cidr6 >= 0 && m->cidr6 <= 128, "cidr %d %d", m->cidr4,
                     m->cidr6);
            FZ_CHECK(strchr("+-~?", m->qual) != NULL && m->qual, "qualifier %c", m->qual);
            const char *specs[] = {m->domain};
            for (size_t k = 0; k < 1; k++) {
                if (!specs[k]) continue;
                FZ_CHECK(spf_macro_check(specs[k], false), "domain-spec '%s' accepted but invalid", specs[k]);
                strbuf out;
                sb_init(&out);
                FZ_CHECK(spf_macro_expand(specs[k], &v, false, &out, err, sizeof err) == 0, "'%s' does not expand",
                         specs[k]);
                spf_domain_trim(&out);
                FZ_CHECK(out.len <= 253 || !strchr(out.data, '.'), "trimmed to %zu octets", out.len);
                sb_free(&out);
            }
        }
        if (r.redirect) FZ_CHECK(spf_macro_check(r.redirect, false), "redirect '%s'", r.redirect);
        if (r.exp) FZ_CHECK(spf_macro_check(r.exp, false), "exp '%s'", r.exp);
        spf_record_free(&r);
    } else {
        FZ_CHECK(r.mech == NULL && r.n == 0 && !r.redirect && !r.exp, "a failed parse left data");
    }
    free(rec);

    /* 2. a macro-string */
    check_expand(text, &v);

    /* 3. MAIL FROM and HELO in the header fields */
    spf_query q = {.ip = ip, .mail_from = text, .helo = text, .receiver = "mx.example.net", .now = 0};
    spf_result res = {.result = (spf_res)(size % 7), .identity = size & 2 ? "helo" : "mailfrom",
                      .domain = text, .mechanism = size & 4 ? text : NULL, .problem = size & 8 ? text : NULL};
    strbuf h;
    sb_init(&h);
    spf_received_header(&res, &q, &h);
    FZ_CHECK(h.len >= 2 && h.data[h.len - 2] == '\r' && h.data[h.len - 1] == '\n', "header does not end in CRLF");
    for (size_t i = 0; i + 2 < h.len; i++) {
        if (h.data[i] == '\r')
            FZ_CHECK(h.data[i + 1] == '\n' && h.data[i + 2] == '\t', "bad fold at %zu", i);
        else if (h.data[i] == '\n')
            FZ_CHECK(i > 0 && h.data[i - 1] == '\r', "bare LF at %zu", i);
        else
            FZ_CHECK(h.data[i] == '\t' || ((unsigned char)h.data[i] >= 0x20 && (unsigned char)h.data[i] < 0x7f),
                     "control byte 0x%02x at %zu", (unsigned char)h.data[i], i);
    }
    sb_reset(&h);
    spf_auth_results(&res, &q, &h);
    FZ_CHECK(no_ctl(h.data, false), "control byte in Authentication-Results clause");
    sb_free(&h);
    free(text);
    return 0;
}

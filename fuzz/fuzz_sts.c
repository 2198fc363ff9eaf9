/*
 * fuzz_sts.c - the MTA-STS parsers (sts/sts_policy.h): the policy file served over HTTPS, the
 * _mta-sts TXT record, the cache file, and MX pattern matching.
 *
 * Input: the raw bytes are a policy body (sts_policy_parse), a cache file (sts_cache_decode) and,
 * up to the first NUL, a TXT record (sts_txt_parse, sts_txt_select); the first two lines of that
 * text are an mx pattern and a host for sts_mx_pattern_match.
 * Properties: a parsed policy has a known mode, max_age <= 31557600, mx patterns in lower case
 * (at least one unless mode none) that match a host of their own form; the same body with LF
 * instead of CRLF parses the same (when it has no other CR); a policy round-trips through the
 * cache file; a decoded cache file's policy parses; a parsed TXT id is 1..32 letters and digits;
 * a wildcard match has exactly one label in front of the suffix.
 */
#include "fuzz.h"
#include "sts/sts_policy.h"

#include <ctype.h>

/* check_policy - the properties of a parsed policy. */
static void check_policy(const sts_policy *p)
{
    FZ_CHECK(p->mode == STS_MODE_NONE || p->mode == STS_MODE_TESTING || p->mode == STS_MODE_ENFORCE, "mode %d",
             (int)p->mode);
    FZ_CHECK(p->max_age <= STS_MAX_AGE_MAX, "max_age %u", p->max_age);
    FZ_CHECK(p->mode == STS_MODE_NONE || p->mx.n > 0, "mode %s without mx", sts_mode_name(p->mode));
    for (size_t i = 0; i < p->mx.n; i++) {
        const char *m = p->mx.v[i];
        for (const char *q = m; *q; q++) FZ_CHECK(!isupper((unsigned char)*q), "upper case in %s", m);
        char *host = m[0] == '*' ? xasprintf("x%s", m + 1) : xstrdup(m);
        FZ_CHECK(sts_mx_pattern_match(m, host), "%s does not match %s", m, host);
        FZ_CHECK(sts_mx_match(p, host), "policy does not match %s", host);
        free(host);
    }
}

/* same_policy - whether two parsed policies are equal. */
static bool same_policy(const sts_policy *a, const sts_policy *b)
{
    if (a->mode != b->mode || a->max_age != b->max_age || a->mx.n != b->mx.n) return false;
    for (size_t i = 0; i < a->mx.n; i++)
        if (strcmp(a->mx.v[i], b->mx.v[i]) != 0) return false;
    return true;
}

/* crlf_to_lf - the body with every CRLF turned into LF; caller frees. */
static char *crlf_to_lf(const uint8_t *data, size_t size, size_t *len)
{
    char *out = xmalloc(size + 1);
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n') continue;
        out[n++] = (char)data[i];
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* policy_part - the body as a policy, its LF form, and its cache file round trip. */
static void policy_part(const uint8_t *data, size_t size)
{
    sts_policy p, q;
    char why[256];
    bool ok = sts_policy_parse((const char *)data, size, &p, why, sizeof why);
    size_t lf_len;
    char *lf = crlf_to_lf(data, size, &lf_len);
    bool ok2 = sts_policy_parse(lf, lf_len, &q, why, sizeof why);
    bool comparable = !memchr(lf, '\r', lf_len); /* "\r\r\n" would become a CRLF: not the same text */
    FZ_CHECK(!comparable || ok == ok2, "CRLF form %d, LF form %d", ok, ok2);
    if (ok) {
        check_policy(&p);
        FZ_CHECK(!comparable || same_policy(&p, &q), "the LF form parses differently");
        sts_cached c = {.domain = "fuzz.test", .fetched = 1700000000, .body = (char *)data, .body_len = size};
        snprintf(c.id, sizeof c.id, "id1");
        c.policy = p;
        strbuf sb;
        sb_init(&sb);
        sts_cache_encode(&c, &sb);
        sts_cached d;
        FZ_CHECK(sts_cache_decode(sb.data, sb.len, &d, why, sizeof why), "cache file refused: %s", why);
        FZ_CHECK(same_policy(&p, &d.policy) && d.body_len == size && !memcmp(d.body, data, size), "cache round trip");
        sts_cached_free(&d);
        sb_free(&sb);
    }
    sts_policy_free(&p);
    sts_policy_free(&q);
    free(lf);
}

/* text_part - the text as a TXT record and as "pattern\nhost". */
static void text_part(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    char id[STS_ID_MAX + 1], why[256];
    if (sts_txt_parse(text, id, why, sizeof why)) {
        size_t n = strlen(id);
        FZ_CHECK(n >= 1 && n <= STS_ID_MAX, "id of %zu characters", n);
        for (size_t i = 0; i < n; i++) FZ_CHECK(isalnum((unsigned char)id[i]), "id %s", id);
        char id2[STS_ID_MAX + 1];
        char *strs[1] = {text};
        if (!strncmp(text, "v=STSv1;", 8))
            FZ_CHECK(sts_txt_select(strs, 1, id2, why, sizeof why) && !strcmp(id, id2), "select differs");
    } else {
        FZ_CHECK(id[0] == '\0', "id %s left after a refusal", id);
    }
    char *nl = strchr(text, '\n');
    if (nl) {
        *nl = '\0';
        const char *pat = text, *host = nl + 1;
        if (sts_mx_pattern_match(pat, host) && pat[0] == '*' && pat[1] == '.' && pat[2]) {
            size_t hl = strlen(host), sl = strlen(pat + 1);
            if (hl && host[hl - 1] == '.') hl--;
            FZ_CHECK(hl > sl && memchr(host, '.', hl - sl) == NULL, "%s matched %s", pat, host);
        }
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    policy_part(data, size);
    sts_cached d;
    char why[256];
    if (sts_cache_decode((const char *)data, size, &d, why, sizeof why)) {
        FZ_CHECK(sts_domain_ok(d.domain), "domain %s", d.domain);
        check_policy(&d.policy);
    }
    sts_cached_free(&d);
    text_part(data, size);
    return 0;
}

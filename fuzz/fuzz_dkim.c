/*
 * fuzz_dkim.c - the DKIM tag-list parser, header and body canonicalisers and b= stripping
 * (dkim/dkim.h) on untrusted bytes: signatures and key records come from any sender and any
 * DNS zone, headers and bodies from any message.
 *
 * Input: byte 0 chooses the split point of the body feed (its value modulo the size) and, by its
 * low bit, the key record; the rest is used as a tag-list, as one header field (both
 * canonicalisations, and b= stripping), as a body (both canonicalisations) and as a whole
 * message whose first DKIM-Signature is verified against a fixed Ed25519 or RSA key record.
 *
 * Properties: a parsed tag-list has valid names, values without ";" or NUL that do not start or
 * end with whitespace, and parses again to the same tags when written back; a relaxed header is
 * one line ending in CRLF with a lower-case name, no tab and no double space; the body
 * canonicalisers give the same octets whether fed at once or in two pieces; a canonical body is
 * empty (relaxed only) or ends with CRLF, never with an empty line (except simple's lone CRLF),
 * and a relaxed one has no double space and no whitespace before an inner CRLF; b= stripping
 * never makes the field longer; verification of a message nobody signed with the key never
 * passes, and gives a known result with a reason.
 */
#include "fuzz.h"
#include "dkim/dkim.h"

#include <ctype.h>

/* sink - append to a strbuf. */
static void sink(void *arg, const char *p, size_t n)
{
    sb_append(arg, p, n);
}

/* body - c of p, fed at once (split 0) or in two pieces. */
static void body(dkim_canon c, const char *p, size_t n, size_t split, strbuf *out)
{
    dkim_body b;
    dkim_body_init(&b, c, -1, sink, out);
    if (split && split < n) {
        dkim_body_feed(&b, p, split);
        dkim_body_feed(&b, p + split, n - split);
    } else {
        dkim_body_feed(&b, p, n);
    }
    dkim_body_end(&b);
}

/* check_tags - the tag-list properties. */
static void check_tags(const char *p, size_t n)
{
    dkim_tags t;
    char err[128];
    if (dkim_tags_parse(p, n, &t, err, sizeof err) < 0) return;
    strbuf again;
    sb_init(&again);
    for (size_t i = 0; i < t.n; i++) {
        const char *name = t.tag[i].name, *v = t.tag[i].value;
        FZ_CHECK(isalpha((unsigned char)name[0]), "tag name '%s'", name);
        for (const char *q = name; *q; q++) FZ_CHECK(isalnum((unsigned char)*q) || *q == '_', "tag name '%s'", name);
        FZ_CHECK(!strchr(v, ';'), "';' in value '%s'", v);
        size_t vl = strlen(v);
        if (vl) FZ_CHECK(!isspace((unsigned char)v[0]) && !isspace((unsigned char)v[vl - 1]), "value '%s' not trimmed", v);
        sb_printf(&again, "%s=%s;", name, v);
    }
    dkim_tags u;
    FZ_CHECK(dkim_tags_parse(again.data ? again.data : "", again.len, &u, err, sizeof err) == 0 && u.n == t.n,
             "written back, the list does not parse the same: %s", err);
    for (size_t i = 0; i < t.n; i++)
        FZ_CHECK(!strcmp(u.tag[i].name, t.tag[i].name) && !strcmp(u.tag[i].value, t.tag[i].value), "tag %zu differs",
                 i);
    dkim_tags_free(&u);
    dkim_tags_free(&t);
    sb_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t split = data[0];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    split = n ? split % (n + 1) : 0;

    check_tags(p, n);

    /* one header field */
    strbuf h;
    sb_init(&h);
    dkim_canon_header(DKIM_CANON_RELAXED, p, n, &h);
    FZ_CHECK(h.len >= 3 && !memcmp(h.data + h.len - 2, "\r\n", 2), "relaxed header does not end in CRLF");
    const char *colon = memchr(h.data, ':', h.len);
    FZ_CHECK(colon != NULL, "relaxed header without colon");
    for (size_t i = 0; i + 2 < h.len; i++) {
        FZ_CHECK(h.data[i] != '\r' && h.data[i] != '\n', "line break inside a relaxed header at %zu", i);
        if (h.data + i > colon) {
            FZ_CHECK(h.data[i] != '\t', "tab in a relaxed value");
            FZ_CHECK(!(h.data[i] == ' ' && h.data[i + 1] == ' '), "double space in a relaxed value");
        } else if (h.data + i < colon) {
            FZ_CHECK(!isupper((unsigned char)h.data[i]), "upper case in a relaxed name");
        }
    }
    sb_reset(&h);
    dkim_canon_header(DKIM_CANON_SIMPLE, p, n, &h);
    FZ_CHECK(h.len == n + 2 && !memcmp(h.data, p, n), "simple header changed the field");
    sb_reset(&h);
    dkim_strip_b(p, n, &h);
    FZ_CHECK(h.len <= n, "b= stripping made %zu octets of %zu", h.len, n);
    sb_free(&h);

    /* the body, both ways, at once and in two pieces */
    for (int c = 0; c < 2; c++) {
        strbuf whole, parts;
        sb_init(&whole);
        sb_init(&parts);
        body((dkim_canon)c, p, n, 0, &whole);
        body((dkim_canon)c, p, n, split, &parts);
        FZ_CHECK(whole.len == parts.len && (!whole.len || !memcmp(whole.data, parts.data, whole.len)),
                 "canonical body depends on the split at %zu", split);
        if (c == DKIM_CANON_SIMPLE) FZ_CHECK(whole.len >= 2, "empty simple body");
        if (whole.len) {
            FZ_CHECK(whole.len >= 2 && !memcmp(whole.data + whole.len - 2, "\r\n", 2), "body does not end in CRLF");
            if (whole.len > 2) FZ_CHECK(whole.len < 4 || memcmp(whole.data + whole.len - 4, "\r\n\r\n", 4), "empty line at the end");
        }
        if (c == DKIM_CANON_RELAXED) {
            for (size_t i = 0; i + 1 < whole.len; i++) {
                FZ_CHECK(whole.data[i] != '\t', "tab in a relaxed body");
                FZ_CHECK(!(whole.data[i] == ' ' && whole.data[i + 1] == ' '), "double space in a relaxed body");
                if (i + 4 < whole.len)
                    FZ_CHECK(!(whole.data[i] == ' ' && whole.data[i + 1] == '\r' && whole.data[i + 2] == '\n'),
                             "space before an inner CRLF");
            }
        }
        sb_free(&whole);
        sb_free(&parts);
    }

    /* the whole input as a message with a signature */
    static const char *const records[] = {
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
    };
    size_t sigs = dkim_sig_count(p, n);
    char *name = dkim_sig_key_name(p, n, 0);
    if (name) FZ_CHECK(strstr(name, "._domainkey.") != NULL && sigs > 0, "key name '%s'", name);
    free(name);
    dkim_sig_info info;
    dkim_verify(p, n, 0, records[data[0] & 1], 1700000000, &info);
    FZ_CHECK(info.res != DKIM_PASS, "an unsigned message verified");
    FZ_CHECK(info.res <= DKIM_PERMERROR && info.reason[0], "result %d without a reason", (int)info.res);
    if (!sigs) FZ_CHECK(info.res == DKIM_PERMERROR, "no signature but result %d", (int)info.res);
    dkim_sig_info_free(&info);
    return 0;
}

/*
 * dkim_sig.c - DKIM signing and verification of one message in memory (see dkim.h), with
 * OpenSSL 3: rsa-sha256 (RFC 6376) and ed25519-sha256 (RFC 8463: Ed25519 over the SHA-256 of
 * the data). The message is the queue's content: header fields, an empty line, the body, CRLF
 * line ends. Header fields named in h= are taken from the bottom up, each instance once; a name
 * listed more often than it occurs contributes nothing (that is how oversigning works, §5.4.2).
 */
#include "dkim/dkim.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DKIM_MIN_RSA_BITS 1024

/* One header field: its text without the final CRLF, and the length of its name. */
typedef struct {
    const char *p;
    size_t len;
    size_t name_len;
} hfield;

/* A message's header fields, top to bottom, and where its body starts. */
typedef struct {
    hfield *f;
    size_t n;
    const char *body;
    size_t body_len;
} hsplit;

/* split_msg - the header fields and body of msg. */
static void split_msg(const char *msg, size_t len, hsplit *h)
{
    memset(h, 0, sizeof *h);
    size_t i = 0;
    while (i < len) {
        if (i + 1 < len && msg[i] == '\r' && msg[i + 1] == '\n') { /* the empty line */
            i += 2;
            break;
        }
        size_t start = i;
        for (;;) { /* to the CRLF not followed by WSP */
            const char *crlf = NULL;
            for (size_t k = i; k + 1 < len; k++)
                if (msg[k] == '\r' && msg[k + 1] == '\n') {
                    crlf = msg + k;
                    break;
                }
            if (!crlf) {
                i = len;
                break;
            }
            i = (size_t)(crlf - msg) + 2;
            if (i >= len || (msg[i] != ' ' && msg[i] != '\t')) break;
        }
        size_t end = i;
        if (end >= start + 2 && msg[end - 2] == '\r' && msg[end - 1] == '\n') end -= 2;
        const char *colon = memchr(msg + start, ':', end - start);
        size_t nl = colon ? (size_t)(colon - (msg + start)) : end - start;
        while (nl > 0 && (msg[start + nl - 1] == ' ' || msg[start + nl - 1] == '\t')) nl--;
        h->f = xrealloc(h->f, (h->n + 1) * sizeof *h->f);
        h->f[h->n++] = (hfield){msg + start, end - start, nl};
    }
    h->body = msg + i;
    h->body_len = len - i;
}

/* field_is - whether field f is named name (ASCII case-insensitive). */
static bool field_is(const hfield *f, const char *name, size_t nl)
{
    return f->name_len == nl && strncasecmp(f->p, name, nl) == 0;
}

/* sink_digest - a body sink feeding a digest. */
static void sink_digest(void *arg, const char *p, size_t n)
{
    EVP_DigestUpdate(arg, p, n);
}

/* body_hash - SHA-256 of the canonical body (at most limit octets, -1: all) into md; the whole canonical length into total. */
static void body_hash(const hsplit *h, dkim_canon c, int64_t limit, unsigned char md[32], uint64_t *total)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) abort();
    dkim_body b;
    dkim_body_init(&b, c, limit, sink_digest, ctx);
    dkim_body_feed(&b, h->body, h->body_len);
    dkim_body_end(&b);
    unsigned int n = 32;
    EVP_DigestFinal_ex(ctx, md, &n);
    EVP_MD_CTX_free(ctx);
    if (total) *total = b.total;
}

/* headers_canon - the fields named in the colon-separated list names, bottom-up per name, canonicalised into out. */
static void headers_canon(const hsplit *h, const char *names, dkim_canon c, strbuf *out)
{
    size_t *used = xcalloc(h->n ? h->n : 1, sizeof *used); /* fields already taken */
    for (const char *p = names; *p;) {
        while (*p == ':' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        size_t nl = strcspn(p, ":");
        size_t tl = nl;
        while (tl > 0 && isspace((unsigned char)p[tl - 1])) tl--;
        for (size_t k = h->n; k-- > 0;) {
            if (used[k] || !field_is(&h->f[k], p, tl)) continue;
            used[k] = 1;
            dkim_canon_header(c, h->f[k].p, h->f[k].len, out);
            break;
        }
        p += nl;
    }
    free(used);
}

/* sig_field_canon - the DKIM-Signature field with b= emptied, canonicalised, without the final CRLF. */
static void sig_field_canon(const char *field, size_t len, dkim_canon c, strbuf *out)
{
    strbuf stripped;
    sb_init(&stripped);
    dkim_strip_b(field, len, &stripped);
    size_t before = out->len;
    dkim_canon_header(c, stripped.data, stripped.len, out);
    if (out->len >= before + 2) out->len -= 2; /* the field's own CRLF is not hashed (§3.7) */
    out->data[out->len] = '\0';
    sb_free(&stripped);
}

/* ed25519 - whether key is an Ed25519 key. */
static bool ed25519(EVP_PKEY *key)
{
    return EVP_PKEY_get_id(key) == EVP_PKEY_ED25519;
}

/* ------------------------------------------------------------------ signing */

EVP_PKEY *dkim_key_pem(const char *pem, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!k) snprintf(err, errlen, "no private key in PEM text");
    else if (!ed25519(k) && EVP_PKEY_get_id(k) != EVP_PKEY_RSA) {
        snprintf(err, errlen, "the key is neither RSA nor Ed25519");
        EVP_PKEY_free(k);
        k = NULL;
    }
    ERR_clear_error();
    return k;
}

static const char *const default_headers[] = {"from",       "to",         "cc",           "subject",
                                              "date",       "message-id", "reply-to",     "in-reply-to",
                                              "references", "mime-version", "content-type", "content-transfer-encoding"};

/* fold_tag - append "tag;" to a field being built, folding before it past 76 octets on the line. */
static void fold_tag(strbuf *out, size_t *line_start, const char *tag)
{
    if (out->len - *line_start + 1 + strlen(tag) > 76) {
        sb_puts(out, "\r\n\t");
        *line_start = out->len - 1;
    } else {
        sb_putc(out, ' ');
    }
    sb_puts(out, tag);
}

/* sign_data - the signature of data with key: rsa-sha256, or Ed25519 over its SHA-256. */
static int sign_data(EVP_PKEY *key, const strbuf *data, strbuf *sig_b64, char *err, size_t errlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    const unsigned char *in = (const unsigned char *)data->data;
    size_t inlen = data->len;
    const EVP_MD *alg = EVP_sha256();
    if (ed25519(key)) {
        SHA256(in, inlen, md);
        in = md;
        inlen = sizeof md;
        alg = NULL;
    }
    size_t siglen = 0;
    unsigned char *sig = NULL;
    int rc = -1;
    if (ctx && EVP_DigestSignInit(ctx, NULL, alg, NULL, key) == 1 && EVP_DigestSign(ctx, NULL, &siglen, in, inlen) == 1) {
        sig = xmalloc(siglen);
        if (EVP_DigestSign(ctx, sig, &siglen, in, inlen) == 1) {
            b64_encode(sig, siglen, sig_b64);
            rc = 0;
        }
    }
    if (rc < 0) snprintf(err, errlen, "signing failed: %s", ERR_reason_error_string(ERR_get_error()));
    ERR_clear_error();
    free(sig);
    EVP_MD_CTX_free(ctx);
    return rc;
}

int dkim_sign(const char *msg, size_t len, const dkim_sign_opts *o, strbuf *out, char *err, size_t errlen)
{
    hsplit h;
    split_msg(msg, len, &h);
    const char *const *names = o->headers ? o->headers : default_headers;
    size_t n_names = o->headers ? o->n_headers : SL_ARRAY_LEN(default_headers);
    strbuf hl;
    sb_init(&hl);
    bool from = false;
    for (size_t i = 0; i < n_names; i++) {
        size_t nl = strlen(names[i]), count = 0;
        for (size_t k = 0; k < h.n; k++) count += field_is(&h.f[k], names[i], nl);
        if (o->oversign) count++;
        if (count && !strcasecmp(names[i], "from")) from = true;
        for (size_t c = 0; c < count; c++) sb_printf(&hl, "%s%s", hl.len ? ":" : "", names[i]);
    }
    if (!from) {
        snprintf(err, errlen, "From is not among the signed header fields");
        sb_free(&hl);
        free(h.f);
        return -1;
    }
    unsigned char bh[32];
    body_hash(&h, o->body_canon, -1, bh, NULL);
    strbuf f, t;
    sb_init(&f);
    sb_init(&t);
    sb_puts(&f, "DKIM-Signature: v=1;");
    size_t line_start = 0;
    sb_printf(&t, "a=%s;", ed25519(o->key) ? "ed25519-sha256" : "rsa-sha256");
    fold_tag(&f, &line_start, t.data);
    sb_reset(&t);
    sb_printf(&t, "c=%s/%s;", o->header_canon == DKIM_CANON_RELAXED ? "relaxed" : "simple",
              o->body_canon == DKIM_CANON_RELAXED ? "relaxed" : "simple");
    fold_tag(&f, &line_start, t.data);
    sb_reset(&t);
    sb_printf(&t, "d=%s;", o->domain);
    fold_tag(&f, &line_start, t.data);
    sb_reset(&t);
    sb_printf(&t, "s=%s;", o->selector);
    fold_tag(&f, &line_start, t.data);
    if (o->now > 0) {
        sb_reset(&t);
        sb_printf(&t, "t=%lld;", (long long)o->now);
        fold_tag(&f, &line_start, t.data);
    }
    /* h= may be long: fold it at its colons */
    sb_reset(&t);
    sb_puts(&t, "h=");
    for (const char *p = hl.data; *p;) {
        size_t n = strcspn(p, ":");
        if (f.len - line_start + t.len + n > 74) {
            fold_tag(&f, &line_start, t.data);
            sb_reset(&t);
        }
        sb_append(&t, p, n);
        p += n;
        if (*p) sb_putc(&t, *p++);
    }
    sb_putc(&t, ';');
    fold_tag(&f, &line_start, t.data);
    sb_reset(&t);
    sb_puts(&t, "bh=");
    b64_encode(bh, sizeof bh, &t);
    sb_putc(&t, ';');
    fold_tag(&f, &line_start, t.data);
    sb_puts(&f, "\r\n\tb="); /* b= on a line of its own: its value is folded at a fixed width below */
    /* what is signed: the fields of h=, then this field with an empty b= and no CRLF */
    strbuf data, sig;
    sb_init(&data);
    sb_init(&sig);
    headers_canon(&h, hl.data, o->header_canon, &data);
    sig_field_canon(f.data, f.len, o->header_canon, &data);
    int rc = sign_data(o->key, &data, &sig, err, errlen);
    if (rc == 0) {
        for (size_t i = 0; i < sig.len; i += 72) { /* the signature folded in pieces */
            if (i) sb_puts(&f, "\r\n\t");
            sb_append(&f, sig.data + i, sig.len - i < 72 ? sig.len - i : 72);
        }
        sb_puts(&f, "\r\n");
        sb_append(out, f.data, f.len);
    }
    sb_free(&data);
    sb_free(&sig);
    sb_free(&f);
    sb_free(&t);
    sb_free(&hl);
    free(h.f);
    return rc;
}

/* ------------------------------------------------------------------ verifying */

/* sig_field - the i-th DKIM-Signature field of h (0 = topmost), or NULL. */
static const hfield *sig_field(const hsplit *h, size_t i)
{
    for (size_t k = 0; k < h->n; k++)
        if (field_is(&h->f[k], "DKIM-Signature", 14) && i-- == 0) return &h->f[k];
    return NULL;
}

size_t dkim_sig_count(const char *msg, size_t len)
{
    hsplit h;
    split_msg(msg, len, &h);
    size_t n = 0;
    for (size_t k = 0; k < h.n; k++) n += field_is(&h.f[k], "DKIM-Signature", 14);
    free(h.f);
    return n;
}

/* sig_tags - the tags of field f's value. */
static int sig_tags(const hfield *f, dkim_tags *t, char *err, size_t errlen)
{
    const char *colon = memchr(f->p, ':', f->len);
    if (!colon) return -1;
    return dkim_tags_parse(colon + 1, f->len - (size_t)(colon + 1 - f->p), t, err, errlen);
}

char *dkim_sig_key_name(const char *msg, size_t len, size_t i)
{
    hsplit h;
    split_msg(msg, len, &h);
    const hfield *f = sig_field(&h, i);
    char *name = NULL;
    dkim_tags t;
    char err[128];
    if (f && sig_tags(f, &t, err, sizeof err) == 0) {
        const char *d = dkim_tags_get(&t, "d"), *s = dkim_tags_get(&t, "s");
        if (d && s && *d && *s) name = xasprintf("%s._domainkey.%s", s, d);
        dkim_tags_free(&t);
    }
    free(h.f);
    return name;
}

/* b64_loose - decode base64 that may hold folding whitespace; -1 when malformed. */
static int b64_loose(const char *s, strbuf *out)
{
    strbuf clean;
    sb_init(&clean);
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) sb_putc(&clean, *s);
    int rc = b64_decode(clean.data ? clean.data : "", clean.len, out);
    sb_free(&clean);
    return rc;
}

/* key_from_record - the public key of a key record for algorithm a; NULL + reason. */
static EVP_PKEY *key_from_record(const char *record, const char *alg, char *why, size_t whylen)
{
    dkim_tags k;
    char err[128];
    if (dkim_tags_parse(record, strlen(record), &k, err, sizeof err) < 0) {
        snprintf(why, whylen, "key record: %s", err);
        return NULL;
    }
    EVP_PKEY *key = NULL;
    const char *v = dkim_tags_get(&k, "v"), *kt = dkim_tags_get(&k, "k"), *p = dkim_tags_get(&k, "p");
    const char *hashes = dkim_tags_get(&k, "h");
    bool want_ed = !strcmp(alg, "ed25519-sha256");
    strbuf der;
    sb_init(&der);
    if (v && strcmp(v, "DKIM1") != 0) snprintf(why, whylen, "key record: v=%s", v);
    else if (!p) snprintf(why, whylen, "key record without p=");
    else if (!*p) snprintf(why, whylen, "key revoked (empty p=)");
    else if ((kt ? !strcmp(kt, "ed25519") : false) != want_ed || (kt && strcmp(kt, "rsa") && strcmp(kt, "ed25519")))
        snprintf(why, whylen, "key type k=%s does not match a=%s", kt ? kt : "rsa", alg);
    else if (hashes && !strstr(hashes, "sha256")) snprintf(why, whylen, "key record h=%s excludes sha256", hashes);
    else if (b64_loose(p, &der) < 0) snprintf(why, whylen, "key record: p= is not base64");
    else if (want_ed) {
        if (der.len != 32) snprintf(why, whylen, "Ed25519 key of %zu octets", der.len);
        else key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, (const unsigned char *)der.data, der.len);
        if (!key && !why[0]) snprintf(why, whylen, "bad Ed25519 key");
    } else {
        const unsigned char *q = (const unsigned char *)der.data;
        key = d2i_PUBKEY(NULL, &q, (long)der.len);
        if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_RSA) {
            snprintf(why, whylen, "p= is not an RSA public key");
            EVP_PKEY_free(key);
            key = NULL;
        } else if (EVP_PKEY_get_bits(key) < DKIM_MIN_RSA_BITS) {
            snprintf(why, whylen, "RSA key of %d bits", EVP_PKEY_get_bits(key));
            EVP_PKEY_free(key);
            key = NULL;
        }
    }
    ERR_clear_error();
    sb_free(&der);
    dkim_tags_free(&k);
    return key;
}

/* verify_data - whether sig is key's signature of data (rsa-sha256, or Ed25519 over its SHA-256). */
static bool verify_data(EVP_PKEY *key, const strbuf *data, const strbuf *sig)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    const unsigned char *in = (const unsigned char *)(data->data ? data->data : "");
    size_t inlen = data->len;
    const EVP_MD *alg = EVP_sha256();
    if (ed25519(key)) {
        SHA256(in, inlen, md);
        in = md;
        inlen = sizeof md;
        alg = NULL;
    }
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, alg, NULL, key) == 1 &&
              EVP_DigestVerify(ctx, (const unsigned char *)sig->data, sig->len, in, inlen) == 1;
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* verify_fail - set the result and the reason. */
static void verify_fail(dkim_sig_info *info, dkim_res res, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verify_fail(dkim_sig_info *info, dkim_res res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    info->res = res;
    vsnprintf(info->reason, sizeof info->reason, fmt, ap);
    va_end(ap);
}

/* h_has_from - whether the h= list names From. */
static bool h_has_from(const char *h)
{
    for (const char *p = h; *p;) {
        while (*p == ':' || isspace((unsigned char)*p)) p++;
        size_t n = strcspn(p, ":");
        size_t t = n;
        while (t > 0 && isspace((unsigned char)p[t - 1])) t--;
        if (t == 4 && !strncasecmp(p, "from", 4)) return true;
        p += n;
    }
    return false;
}

/* verify_tags - the signature's required tags; false (info set) when one is missing or bad. */
static bool verify_tags(const dkim_tags *t, int64_t now, dkim_sig_info *info, dkim_canon *hc, dkim_canon *bc,
                        int64_t *limit)
{
    static const char *const required[] = {"v", "a", "b", "bh", "d", "h", "s"};
    for (size_t i = 0; i < SL_ARRAY_LEN(required); i++) {
        if (!dkim_tags_get(t, required[i])) {
            verify_fail(info, DKIM_PERMERROR, "signature without %s=", required[i]);
            return false;
        }
    }
    const char *a = dkim_tags_get(t, "a"), *c = dkim_tags_get(t, "c"), *l = dkim_tags_get(t, "l");
    const char *x = dkim_tags_get(t, "x");
    *hc = *bc = DKIM_CANON_SIMPLE;
    *limit = -1;
    uint64_t v;
    if (strcmp(dkim_tags_get(t, "v"), "1") != 0) verify_fail(info, DKIM_PERMERROR, "version v=%s", dkim_tags_get(t, "v"));
    else if (strcmp(a, "rsa-sha256") && strcmp(a, "ed25519-sha256"))
        verify_fail(info, DKIM_PERMERROR, "unsupported algorithm a=%s", a);
    else if (c && dkim_canon_parse(c, hc, bc) < 0) verify_fail(info, DKIM_PERMERROR, "unknown canonicalisation c=%s", c);
    else if (!h_has_from(dkim_tags_get(t, "h"))) verify_fail(info, DKIM_PERMERROR, "From is not signed (h=)");
    else if (l && parse_uint(l, 0, INT64_MAX, &v) < 0) verify_fail(info, DKIM_PERMERROR, "bad l=%s", l);
    else if (x && now > 0 && parse_uint(x, 0, INT64_MAX, &v) == 0 && (int64_t)v < now)
        verify_fail(info, DKIM_FAIL, "signature expired (x=%s)", x);
    else {
        if (l) *limit = (int64_t)strtoll(l, NULL, 10);
        return true;
    }
    return false;
}

void dkim_verify(const char *msg, size_t len, size_t i, const char *key_record, int64_t now, dkim_sig_info *info)
{
    memset(info, 0, sizeof *info);
    hsplit h;
    split_msg(msg, len, &h);
    const hfield *f = sig_field(&h, i);
    dkim_tags t = {0};
    char err[128];
    EVP_PKEY *key = NULL;
    strbuf bh, b, data;
    sb_init(&bh);
    sb_init(&b);
    sb_init(&data);
    dkim_canon hc, bc;
    int64_t limit;
    if (!f) {
        verify_fail(info, DKIM_PERMERROR, "no signature %zu", i);
        goto done;
    }
    if (sig_tags(f, &t, err, sizeof err) < 0) {
        verify_fail(info, DKIM_PERMERROR, "signature: %s", err);
        goto done;
    }
    info->domain = xstrdup(dkim_tags_get(&t, "d"));
    info->selector = xstrdup(dkim_tags_get(&t, "s"));
    info->algorithm = xstrdup(dkim_tags_get(&t, "a"));
    if (!verify_tags(&t, now, info, &hc, &bc, &limit)) goto done;
    if (b64_loose(dkim_tags_get(&t, "bh"), &bh) < 0 || bh.len != 32) {
        verify_fail(info, DKIM_PERMERROR, "bh= is not a SHA-256 in base64");
        goto done;
    }
    if (b64_loose(dkim_tags_get(&t, "b"), &b) < 0 || b.len == 0) {
        verify_fail(info, DKIM_PERMERROR, "b= is not base64");
        goto done;
    }
    key = key_from_record(key_record, info->algorithm, info->reason, sizeof info->reason);
    if (!key) {
        info->res = DKIM_PERMERROR;
        goto done;
    }
    unsigned char md[32];
    uint64_t total;
    body_hash(&h, bc, limit, md, &total);
    if (limit >= 0 && (uint64_t)limit > total) {
        verify_fail(info, DKIM_PERMERROR, "l=%lld is longer than the body", (long long)limit);
        goto done;
    }
    if (memcmp(md, bh.data, 32) != 0) {
        verify_fail(info, DKIM_FAIL, "body hash did not verify");
        goto done;
    }
    headers_canon(&h, dkim_tags_get(&t, "h"), hc, &data);
    sig_field_canon(f->p, f->len, hc, &data);
    if (!verify_data(key, &data, &b)) {
        verify_fail(info, DKIM_FAIL, "signature did not verify");
        goto done;
    }
    info->res = DKIM_PASS;
done:
    EVP_PKEY_free(key);
    sb_free(&bh);
    sb_free(&b);
    sb_free(&data);
    dkim_tags_free(&t);
    free(h.f);
}

const char *dkim_res_name(dkim_res r)
{
    static const char *const names[] = {"pass", "fail", "neutral", "permerror", "temperror"};
    return (unsigned)r < SL_ARRAY_LEN(names) ? names[r] : "permerror";
}

void dkim_sig_info_free(dkim_sig_info *info)
{
    free(info->domain);
    free(info->selector);
    free(info->algorithm);
    info->domain = info->selector = info->algorithm = NULL;
}

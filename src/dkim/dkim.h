/*
 * dkim.h - the pure parts of DKIM (RFC 6376): the tag=value list of DKIM-Signature: fields and
 * of key records (§3.2), the header and body canonicalisations "simple" and "relaxed" (§3.4),
 * and the DKIM-Signature field with its b= value emptied (§3.7). Text in, text out: no DNS, no
 * crypto, no clock, so unit tests and fuzz targets drive them directly. On them, dkim_sig.c
 * signs and verifies one message held in memory (OpenSSL 3: RSA-SHA256, and Ed25519-SHA256 of
 * RFC 8463); the key record is an argument, so fetching it from DNS stays with the caller.
 *
 * Threads: any; no shared state.
 */
#ifndef SLUICE_DKIM_H
#define SLUICE_DKIM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

/* One tag of a tag-list: name and value, the value without the whitespace around it. */
typedef struct {
    char *name;
    char *value;
} dkim_tag;

/* A parsed tag-list; free with dkim_tags_free. */
typedef struct {
    dkim_tag *tag;
    size_t n;
} dkim_tags;

/* dkim_tags_parse - parse a tag-list of len octets (§3.2): "name=value" separated by ";", an
 * optional final ";", folding whitespace around names, "=" and values. 0, or -1 with a message
 * in err for a syntax error or a tag given twice (the list is then empty). */
int dkim_tags_parse(const char *s, size_t len, dkim_tags *out, char *err, size_t errlen);
/* dkim_tags_get - the value of tag name (case-sensitive, §3.2), or NULL. */
const char *dkim_tags_get(const dkim_tags *t, const char *name);
/* dkim_tags_free - release what dkim_tags_parse made. */
void dkim_tags_free(dkim_tags *t);

typedef enum { DKIM_CANON_SIMPLE = 0, DKIM_CANON_RELAXED = 1 } dkim_canon;

/* dkim_canon_parse - "c=" of a signature ("relaxed/simple", "simple", ...) into the header and
 * body canonicalisations (a missing body part means simple, §3.5); -1 when unknown. */
int dkim_canon_parse(const char *c, dkim_canon *header, dkim_canon *body);

/* dkim_canon_header - one header field as it appears in the message (name, colon, value with
 * its folding, without the final CRLF) canonicalised, followed by CRLF, appended to out. */
void dkim_canon_header(dkim_canon c, const char *field, size_t len, strbuf *out);

/* dkim_body_sink - where canonicalised body octets go (a digest, a buffer). */
typedef void (*dkim_body_sink)(void *arg, const char *p, size_t n);

/* A body canonicaliser fed in pieces of any size. */
typedef struct {
    dkim_canon c;
    dkim_body_sink sink;
    void *arg;
    int64_t limit;        /* l=: octets of canonical body to pass on, -1 for all */
    uint64_t emitted;     /* octets passed on (at most limit) */
    uint64_t total;       /* octets of the whole canonical body (for l= checks) */
    size_t crlfs;         /* line ends seen since the last content octet */
    bool cr;              /* a CR is pending (maybe the start of CRLF) */
    bool wsp;             /* relaxed: whitespace is pending inside a line */
    bool content;         /* any content octet seen */
} dkim_body;

/* dkim_body_init - a canonicaliser for c passing at most limit octets (-1: all) to sink. */
void dkim_body_init(dkim_body *b, dkim_canon c, int64_t limit, dkim_body_sink sink, void *arg);
/* dkim_body_feed - n more octets of the body (lines end in CRLF; a bare CR or LF is content). */
void dkim_body_feed(dkim_body *b, const char *p, size_t n);
/* dkim_body_end - the body is complete: pass on the final line end (§3.4.3, §3.4.4). */
void dkim_body_end(dkim_body *b);

/* dkim_strip_b - the DKIM-Signature field with the value of its b= tag removed (the text
 * between "b=" and the next ";" or the end), as it is hashed (§3.7), appended to out. */
void dkim_strip_b(const char *field, size_t len, strbuf *out);

/* ------------------------------------------------------------------ signing and verifying */

struct evp_pkey_st;

/* What to sign with. */
typedef struct {
    const char *domain;          /* d= */
    const char *selector;        /* s= */
    struct evp_pkey_st *key;     /* RSA or Ed25519 private key (borrowed): a= follows its type */
    dkim_canon header_canon, body_canon;
    const char *const *headers;  /* names to sign, in order; NULL: a default set (From, To, Subject, ...) */
    size_t n_headers;
    bool oversign;               /* name each header once more than it occurs, so none can be added */
    int64_t now;                 /* t= (0: no t=) */
} dkim_sign_opts;

/* dkim_sign - the "DKIM-Signature: ...\r\n" field for msg (header, empty line, body; CRLF line
 * ends), folded, appended to out. 0, or -1 with a message in err. */
int dkim_sign(const char *msg, size_t len, const dkim_sign_opts *o, strbuf *out, char *err, size_t errlen);

/* dkim_key_pem - a private key from PEM text (PKCS#8 or traditional); NULL + err on failure. Free with EVP_PKEY_free. */
struct evp_pkey_st *dkim_key_pem(const char *pem, char *err, size_t errlen);

typedef enum { DKIM_PASS, DKIM_FAIL, DKIM_NEUTRAL, DKIM_PERMERROR, DKIM_TEMPERROR } dkim_res;

/* dkim_sig_info - what a verification found out about one signature (strings owned). */
typedef struct {
    dkim_res res;
    char *domain, *selector, *algorithm; /* d=, s=, a= (NULL when missing) */
    char reason[160];                    /* why it is not a pass */
} dkim_sig_info;

/* dkim_sig_count - the number of DKIM-Signature fields in msg's header. */
size_t dkim_sig_count(const char *msg, size_t len);
/* dkim_sig_key_name - "SELECTOR._domainkey.DOMAIN" of signature i (0 = topmost), or NULL when it has no d=/s=. Caller frees. */
char *dkim_sig_key_name(const char *msg, size_t len, size_t i);
/* dkim_verify - verify signature i of msg with the key record (the TXT text, "v=DKIM1; k=...; p=...")
 * into info; now checks x= (0: not checked). */
void dkim_verify(const char *msg, size_t len, size_t i, const char *key_record, int64_t now, dkim_sig_info *info);
/* dkim_sig_info_free - release what dkim_verify put into info. */
void dkim_sig_info_free(dkim_sig_info *info);
/* dkim_res_name - "pass", "fail", "neutral", "permerror", "temperror". */
const char *dkim_res_name(dkim_res r);

/* ------------------------------------------------------------------ with DNS (dkim_dns.c) */

struct dns_ctx;
typedef struct dkim_req dkim_req;
/* dkim_check_cb - the result of every signature, topmost first (n may be 0: none); on the loop. */
typedef void (*dkim_check_cb)(void *arg, const dkim_sig_info *sigs, size_t n);
/* dkim_check - verify every DKIM-Signature of msg (copied), fetching each key record with
 * dns_lookup_txt (a lookup that fails for now: temperror; no record: permerror). When no
 * signature needs a lookup (none, or none names d= and s=) cb runs inside dkim_check and NULL
 * is returned; otherwise cb runs later on the loop thread and the handle is valid until then.
 * Only the loop thread may call this. */
dkim_req *dkim_check(struct dns_ctx *d, const char *msg, size_t len, int64_t now, dkim_check_cb cb, void *arg);
/* dkim_check_cancel - forget req: its callback will not run. */
void dkim_check_cancel(dkim_req *req);

#endif

/*
 * spf.h - Sender Policy Framework (RFC 7208): the record parser and the macro expander (pure:
 * text in, values out, no DNS, no clock), the asynchronous check_host() evaluator on the
 * resolver of dns/dns.h, and the formatters of the Received-SPF: header (§9.1) and of the spf=
 * clause of Authentication-Results: (RFC 8601).
 *
 * Threads: the parser, the expander and the formatters may run anywhere; spf_check and
 * spf_cancel only on the loop thread that owns the dns_ctx, and the callback runs there.
 */
#ifndef SLUICE_SPF_H
#define SLUICE_SPF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/util.h"
#include "dns/dns.h"

/* The results of check_host() (RFC 7208 §2.6). */
typedef enum {
    SPF_NONE,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR
} spf_res;

typedef enum { SPF_ALL, SPF_INCLUDE, SPF_A, SPF_MX, SPF_PTR, SPF_IP4, SPF_IP6, SPF_EXISTS } spf_mech_kind;

/* One directive of a record. */
typedef struct {
    char qual;           /* '+', '-', '~' or '?' */
    spf_mech_kind kind;
    char *domain;        /* the domain-spec (a macro-string) or NULL: the current domain */
    unsigned char ip[16];/* ip4 (first 4 bytes) and ip6 networks */
    int cidr4, cidr6;    /* prefix lengths: 32 / 128 when none was given */
    char *text;          /* the directive as written (for Received-SPF mechanism=) */
} spf_mech;

/* A parsed record; free with spf_record_free. */
typedef struct {
    spf_mech *mech;
    size_t n;
    char *redirect;      /* redirect= domain-spec, or NULL */
    char *exp;           /* exp= domain-spec, or NULL */
} spf_record;

/* The values the macros stand for (RFC 7208 §7.2); all strings owned by the caller. */
typedef struct {
    const char *sender;  /* %{s}: local@domain (postmaster@helo when MAIL FROM was <>) */
    const char *domain;  /* %{d}: the current domain */
    const struct sockaddr_storage *ip; /* %{i} %{c} %{v} */
    const char *ptr;     /* %{p}: a validated name of ip, or NULL for "unknown" */
    const char *helo;    /* %{h} */
    const char *receiver;/* %{r} */
    int64_t now;         /* %{t} */
} spf_macro_vars;

/* One question to the evaluator; strings copied by spf_check. */
typedef struct {
    struct sockaddr_storage ip; /* the SMTP client (an IPv4-mapped IPv6 address counts as IPv4) */
    const char *mail_from;      /* reverse-path "local@domain", "" for <> */
    const char *helo;           /* HELO/EHLO argument */
    const char *receiver;       /* our host name (%{r}, receiver=) */
    int64_t now;                /* %{t} */
} spf_query;

/* The answer; valid only during the callback. */
typedef struct {
    spf_res result;
    const char *identity;    /* "mailfrom" or "helo" */
    const char *domain;      /* the domain first asked */
    const char *mechanism;   /* the directive that matched (e.g. "-all"), NULL when none did */
    const char *explanation; /* fail only: exp= text or the default explanation */
    const char *problem;     /* temperror / permerror: what went wrong */
    unsigned lookups, void_lookups;
} spf_result;

typedef struct spf_req spf_req;
/* spf_cb - the result of spf_check, on the loop thread. */
typedef void (*spf_cb)(void *arg, const spf_result *r);

/* spf_res_name - "pass", "fail", ... */
const char *spf_res_name(spf_res r);
/* spf_is_record - whether a TXT string is an SPF record: "v=spf1" then a space or its end (any case). */
bool spf_is_record(const char *txt);
/* spf_record_parse - parse an SPF record (txt starts with v=spf1); 0, or -1 with a message in err (permerror). */
int spf_record_parse(const char *txt, spf_record *out, char *err, size_t errlen);
/* spf_record_free - release what spf_record_parse made. */
void spf_record_free(spf_record *r);
/* spf_macro_check - whether s is a valid macro-string; exp allows %{c}, %{r}, %{t}. */
bool spf_macro_check(const char *s, bool exp);
/* spf_macro_expand - expand macro-string s with v, appended to out; -1 + err on a syntax error. */
int spf_macro_expand(const char *s, const spf_macro_vars *v, bool exp, strbuf *out, char *err, size_t errlen);
/* spf_domain_trim - an expanded domain-spec cut to at most 253 octets by dropping left labels (§7.3). */
void spf_domain_trim(strbuf *d);

/* spf_check - run check_host() for q (MAIL FROM identity, or HELO when mail_from is ""). When
 * the answer needs no DNS (a malformed domain: none; no client address: permerror) cb runs
 * inside spf_check and NULL is returned; otherwise cb runs later on the loop and the returned
 * handle is valid until then. */
spf_req *spf_check(dns_ctx *d, const spf_query *q, spf_cb cb, void *arg);
/* spf_cancel - forget req: its callback will not run (pending DNS answers are dropped). */
void spf_cancel(spf_req *req);

/* spf_received_header - "Received-SPF: ..." (RFC 7208 §9.1) for r and q, folded, ending CRLF, appended to out. */
void spf_received_header(const spf_result *r, const spf_query *q, strbuf *out);
/* spf_auth_results - the "spf=RESULT smtp.mailfrom=..." clause of Authentication-Results: appended to out. */
void spf_auth_results(const spf_result *r, const spf_query *q, strbuf *out);

#endif

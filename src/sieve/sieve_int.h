/*
 * sieve_int.h - the inside of the Sieve interpreter: tokens, the compiled tree, the matcher and
 * the working copy of a header block. Only src/sieve/ includes it. Pure; any thread.
 *
 * The parser (sieve_parse.c, on the tokens of sieve_lex.c) checks everything it can before a
 * run: every string is a constant (no "variables" extension), so argument syntax, addresses,
 * header names and the comparator/match-type combinations are all compile-time errors. The
 * tree's depth is at most SIEVE_MAX_DEPTH, so the recursive walks over it are bounded; if/elsif
 * chains and command sequences are arrays and lists walked by loops.
 */
#ifndef SLUICE_SIEVE_INT_H
#define SLUICE_SIEVE_INT_H
#include "sieve/sieve.h"

/* ---- tokens (sieve_lex.c) ---- */

enum sv_tok {
    SV_T_EOF = 0, SV_T_IDENT, SV_T_TAG, SV_T_NUM, SV_T_STR,
    SV_T_LBRACK, SV_T_RBRACK, SV_T_LPAREN, SV_T_RPAREN, SV_T_COMMA, SV_T_SEMI,
    SV_T_LBRACE, SV_T_RBRACE, SV_T_ERR
};

typedef struct {
    const char *src;
    size_t len, pos;
    int line;
    /* the current token */
    enum sv_tok tok;
    int tok_line;
    char *text;          /* IDENT/TAG (lowercased, tag without ':'), STR (unescaped); owned */
    size_t text_len;
    uint64_t num;
    char err[160];       /* SV_T_ERR: what went wrong (at tok_line) */
} sv_lexer;

/* sv_lex_init - a lexer over src[0, len). */
void sv_lex_init(sv_lexer *lx, const char *src, size_t len);
/* sv_lex_next - read the next token into lx (SV_T_ERR with lx->err on bad input). */
enum sv_tok sv_lex_next(sv_lexer *lx);
/* sv_lex_free - release the current token's text. */
void sv_lex_free(sv_lexer *lx);

/* ---- matching (sieve_match.c) ---- */

enum sv_cmp { SV_CMP_CASEMAP = 0, SV_CMP_OCTET, SV_CMP_NUMERIC };
enum sv_mt { SV_MT_IS = 0, SV_MT_CONTAINS, SV_MT_MATCHES, SV_MT_COUNT, SV_MT_VALUE };
enum sv_rel { SV_REL_GT, SV_REL_GE, SV_REL_LT, SV_REL_LE, SV_REL_EQ, SV_REL_NE };

typedef struct {
    enum sv_cmp cmp;
    enum sv_mt mt;
    enum sv_rel rel;     /* :count and :value */
} sv_matchspec;

/* sv_rel_parse - "gt" ... "ne" (any case) to its relation; -1 if none. */
int sv_rel_parse(const char *s);
/* sv_match - whether value matches key under ms (:is, :contains, :matches, :value; not :count).
 * Costs are charged to *budget; when it runs out the answer is false and *budget is 0. */
bool sv_match(const sv_matchspec *ms, const char *value, size_t vlen, const char *key, uint64_t *budget);
/* sv_match_count - :count: whether the number n relates to key as ms says. */
bool sv_match_count(const sv_matchspec *ms, size_t n, const char *key, uint64_t *budget);

/* ---- the header working copy and addresses (sieve_hdr.c) ---- */

typedef struct {
    char *raw;           /* the whole field as it goes out: "Name: value" CRLF (folded lines kept) */
    size_t raw_len;
    size_t name_len;     /* raw[0, name_len) is the name; 0 = a malformed line (never matches) */
    char *value;         /* unfolded, leading and trailing white space removed */
    size_t value_len;
} sv_field;

typedef struct {
    sv_field *f;
    size_t n, cap;
} sv_header;

/* sv_hdr_load - split a header block (CRLF or LF lines) into fields. */
void sv_hdr_load(sv_header *h, const char *p, size_t len);
/* sv_hdr_free - release the fields. */
void sv_hdr_free(sv_header *h);
/* sv_hdr_is - whether field i is named name (ASCII case-insensitive). */
bool sv_hdr_is(const sv_header *h, size_t i, const char *name);
/* sv_hdr_add - insert "name: value" (value folded as needed) first, or last when last. */
void sv_hdr_add(sv_header *h, const char *name, const char *value, bool last);
/* sv_hdr_delete - remove field i. */
void sv_hdr_delete(sv_header *h, size_t i);
/* sv_hdr_addtag - prepend tag (and a space) to the first Subject, creating it when absent. */
void sv_hdr_addtag(sv_header *h, const char *tag);
/* sv_hdr_join - the fields as one header block. */
char *sv_hdr_join(const sv_header *h, size_t *len);
/* sv_field_name_ok - whether s is a valid header field name (RFC 5322 ftext, non-empty). */
bool sv_field_name_ok(const char *s);
/* sv_addr_list - the addr-specs of an address-list header value into out (bounded, best effort). */
void sv_addr_list(const char *value, size_t len, strvec *out);
/* sv_addr_ok - whether s looks like one mailbox "local@domain" (for redirect and vacation :from). */
bool sv_addr_ok(const char *s);

/* ---- the compiled tree (sieve_parse.c builds it, sieve_run.c walks it) ---- */

enum sv_test_kind {
    SV_TEST_TRUE, SV_TEST_FALSE, SV_TEST_NOT, SV_TEST_ALLOF, SV_TEST_ANYOF,
    SV_TEST_ADDRESS, SV_TEST_ENVELOPE, SV_TEST_HEADER, SV_TEST_EXISTS, SV_TEST_SIZE,
    SV_TEST_SPAMTEST, SV_TEST_VIRUSTEST
};

enum sv_addrpart { SV_AP_ALL = 0, SV_AP_LOCAL, SV_AP_DOMAIN };

typedef struct sv_test {
    enum sv_test_kind kind;
    sv_matchspec ms;
    enum sv_addrpart part;
    strvec names;            /* header names, envelope parts */
    strvec keys;             /* key list (spamtest/virustest: one value) */
    uint64_t limit;          /* size */
    bool over;               /* size :over (else :under) */
    bool percent;            /* spamtest :percent */
    struct sv_test **kids;   /* not (1), allof, anyof */
    size_t nkids;
} sv_test;

enum sv_cmd_kind {
    SV_CMD_IF, SV_CMD_STOP, SV_CMD_KEEP, SV_CMD_DISCARD, SV_CMD_FILEINTO, SV_CMD_REDIRECT,
    SV_CMD_REJECT, SV_CMD_ADDHEADER, SV_CMD_DELETEHEADER, SV_CMD_ADDTAG, SV_CMD_VACATION
};

typedef struct sv_cmd {
    enum sv_cmd_kind kind;
    int line;
    /* if: conds[i] guards blocks[i]; blocks[ncond] (may be NULL) is the else block */
    sv_test **conds;
    struct sv_cmd **blocks;
    size_t ncond;
    bool has_else;
    /* actions */
    char *s1;                /* folder, address, reason, field name, tag */
    char *s2;                /* addheader value */
    bool copy, last, ereject, mime;
    unsigned index;          /* deleteheader :index (0 = none) */
    sv_matchspec ms;         /* deleteheader */
    strvec keys;             /* deleteheader value patterns */
    unsigned days;           /* vacation */
    char *subject, *from, *handle;
    strvec addresses;
    struct sv_cmd *next;
} sv_cmd;

struct sieve_script {
    sv_cmd *first;
};

/* sv_cmd_free_list - free a command list and everything below it. */
void sv_cmd_free_list(sv_cmd *c);

#endif

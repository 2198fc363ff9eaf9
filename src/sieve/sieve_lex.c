/*
 * sieve_lex.c - the tokens of RFC 5228 §8.1: identifiers, tags, numbers with K/M/G, quoted
 * strings, multi-line "text:" strings (dot-unstuffed, line ends made CRLF), "#" and bracketed
 * comments, and the punctuation. Identifiers and tags are case-insensitive, so they come out
 * lowercased. A NUL byte anywhere is an error, so every string is a C string.
 */
#include "sieve/sieve_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sv_lex_init - a lexer over src[0, len). */
void sv_lex_init(sv_lexer *lx, const char *src, size_t len)
{
    memset(lx, 0, sizeof *lx);
    lx->src = src;
    lx->len = len;
    lx->line = 1;
}

/* sv_lex_free - release the current token's text. */
void sv_lex_free(sv_lexer *lx)
{
    free(lx->text);
    lx->text = NULL;
    lx->text_len = 0;
}

/* lex_fail - end with an error token. */
static enum sv_tok lex_fail(sv_lexer *lx, const char *msg)
{
    snprintf(lx->err, sizeof lx->err, "%s", msg);
    lx->tok = SV_T_ERR;
    return SV_T_ERR;
}

/* peek - the byte at offset k from the position, or 0 past the end. */
static char peek(const sv_lexer *lx, size_t k)
{
    return lx->pos + k < lx->len ? lx->src[lx->pos + k] : '\0';
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* skip_space - skip white space and comments; -1 on an unterminated bracketed comment. */
static int skip_space(sv_lexer *lx)
{
    while (lx->pos < lx->len) {
        char c = lx->src[lx->pos];
        if (c == '\n') {
            lx->line++;
            lx->pos++;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            lx->pos++;
        } else if (c == '#') {
            while (lx->pos < lx->len && lx->src[lx->pos] != '\n') lx->pos++;
        } else if (c == '/' && peek(lx, 1) == '*') {
            lx->pos += 2;
            for (;;) {
                if (lx->pos + 1 >= lx->len) return -1;
                if (lx->src[lx->pos] == '*' && lx->src[lx->pos + 1] == '/') break;
                if (lx->src[lx->pos] == '\n') lx->line++;
                lx->pos++;
            }
            lx->pos += 2;
        } else {
            break;
        }
    }
    return 0;
}

/* lex_word - an identifier or a tag name at the position, lowercased. */
static void lex_word(sv_lexer *lx)
{
    size_t start = lx->pos;
    while (lx->pos < lx->len && (is_alpha(lx->src[lx->pos]) || is_digit(lx->src[lx->pos]))) lx->pos++;
    lx->text = str_lower(xmemdup0(lx->src + start, lx->pos - start));
    lx->text_len = lx->pos - start;
}

/* lex_number - digits and an optional K/M/G quantifier; the value must fit 64 bits. */
static enum sv_tok lex_number(sv_lexer *lx)
{
    uint64_t v = 0;
    while (lx->pos < lx->len && is_digit(lx->src[lx->pos])) {
        unsigned d = (unsigned)(lx->src[lx->pos++] - '0');
        if (v > (UINT64_MAX - d) / 10) return lex_fail(lx, "number too large");
        v = v * 10 + d;
    }
    unsigned shift = 0;
    switch (peek(lx, 0)) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    default: break;
    }
    if (shift) {
        lx->pos++;
        if (v > (UINT64_MAX >> shift)) return lex_fail(lx, "number too large");
        v <<= shift;
    }
    if (is_alpha(peek(lx, 0)) || is_digit(peek(lx, 0))) return lex_fail(lx, "bad number");
    lx->num = v;
    lx->tok = SV_T_NUM;
    return SV_T_NUM;
}

/* lex_quoted - a quoted string; "\x" stands for x (RFC 5228 §2.4.2). */
static enum sv_tok lex_quoted(sv_lexer *lx)
{
    strbuf sb;
    sb_init(&sb);
    lx->pos++; /* the opening quote */
    for (;;) {
        if (lx->pos >= lx->len) {
            sb_free(&sb);
            return lex_fail(lx, "unterminated string");
        }
        char c = lx->src[lx->pos++];
        if (c == '"') break;
        if (c == '\\') {
            if (lx->pos >= lx->len) continue; /* reported as unterminated on the next turn */
            c = lx->src[lx->pos++];
        }
        if (c == '\n') lx->line++;
        if (sb.len >= SIEVE_MAX_STRING) {
            sb_free(&sb);
            return lex_fail(lx, "string too long");
        }
        sb_putc(&sb, c);
    }
    lx->text_len = sb.len;
    lx->text = sb_steal(&sb);
    lx->tok = SV_T_STR;
    return SV_T_STR;
}

/* lex_multiline - "text:" then the rest of its line (blanks, maybe a "#" comment), then lines
 * up to one holding only "."; a line starting with "." loses that dot. Lines end in CRLF. */
static enum sv_tok lex_multiline(sv_lexer *lx)
{
    while (peek(lx, 0) == ' ' || peek(lx, 0) == '\t') lx->pos++;
    if (peek(lx, 0) == '#') {
        while (lx->pos < lx->len && lx->src[lx->pos] != '\n') lx->pos++;
    }
    if (peek(lx, 0) == '\r') lx->pos++;
    if (peek(lx, 0) != '\n') return lex_fail(lx, "text: must end its line");
    lx->pos++;
    lx->line++;
    strbuf sb;
    sb_init(&sb);
    for (;;) {
        if (lx->pos >= lx->len) {
            sb_free(&sb);
            return lex_fail(lx, "unterminated text: string (no line with a lone \".\")");
        }
        const char *p = lx->src + lx->pos;
        const char *nl = memchr(p, '\n', lx->len - lx->pos);
        size_t n = nl ? (size_t)(nl - p) : lx->len - lx->pos;
        lx->pos += n + (nl ? 1 : 0);
        if (!nl) { /* the last line has no end: it cannot be the terminating dot */
            sb_free(&sb);
            return lex_fail(lx, "unterminated text: string (no line with a lone \".\")");
        }
        lx->line++;
        size_t body = n && p[n - 1] == '\r' ? n - 1 : n;
        if (body == 1 && p[0] == '.') break;
        if (body && p[0] == '.') p++, body--;
        if (sb.len + body + 2 > SIEVE_MAX_STRING) {
            sb_free(&sb);
            return lex_fail(lx, "string too long");
        }
        sb_append(&sb, p, body);
        sb_append(&sb, "\r\n", 2);
    }
    lx->text_len = sb.len;
    lx->text = sb_steal(&sb);
    lx->tok = SV_T_STR;
    return SV_T_STR;
}

/* sv_lex_next - read the next token into lx (SV_T_ERR with lx->err on bad input). */
enum sv_tok sv_lex_next(sv_lexer *lx)
{
    sv_lex_free(lx);
    if (skip_space(lx) < 0) {
        lx->tok_line = lx->line;
        return lex_fail(lx, "unterminated comment");
    }
    lx->tok_line = lx->line;
    if (lx->pos >= lx->len) {
        lx->tok = SV_T_EOF;
        return SV_T_EOF;
    }
    char c = lx->src[lx->pos];
    static const struct { char c; enum sv_tok t; } punct[] = {
        {'[', SV_T_LBRACK}, {']', SV_T_RBRACK}, {'(', SV_T_LPAREN}, {')', SV_T_RPAREN},
        {',', SV_T_COMMA}, {';', SV_T_SEMI}, {'{', SV_T_LBRACE}, {'}', SV_T_RBRACE},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(punct); i++) {
        if (punct[i].c == c) {
            lx->pos++;
            lx->tok = punct[i].t;
            return lx->tok;
        }
    }
    if (c == '"') return lex_quoted(lx);
    if (is_digit(c)) return lex_number(lx);
    if (c == ':') {
        lx->pos++;
        if (!is_alpha(peek(lx, 0))) return lex_fail(lx, "bad tag");
        lex_word(lx);
        lx->tok = SV_T_TAG;
        return SV_T_TAG;
    }
    if (is_alpha(c)) {
        lex_word(lx);
        if (strcmp(lx->text, "text") == 0 && peek(lx, 0) == ':') {
            lx->pos++;
            sv_lex_free(lx);
            return lex_multiline(lx);
        }
        lx->tok = SV_T_IDENT;
        return SV_T_IDENT;
    }
    if (c == '\0') return lex_fail(lx, "NUL byte in script");
    return lex_fail(lx, "unexpected character");
}

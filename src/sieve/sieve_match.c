/*
 * sieve_match.c - comparators (i;octet, i;ascii-casemap, i;ascii-numeric: RFC 4790) and match
 * types (:is, :contains, :matches of RFC 5228; :count and :value of RFC 5231).
 *
 * :matches has "*" (any run), "?" (one character: one octet under i;octet, one UTF-8
 * character under i;ascii-casemap) and "\" quoting the next character. The matcher never
 * recurses: it keeps only the last "*" to go back to, so its work is at most the product of
 * the two lengths, and every step is charged to the run's budget, so a hostile script and
 * message together cannot make a run take long. There is no :regex.
 */
#include "sieve/sieve_int.h"

#include <stdio.h>
#include <string.h>

static const char *const rels[] = {"gt", "ge", "lt", "le", "eq", "ne"};

/* sv_rel_parse - "gt" ... "ne" (any case) to its relation; -1 if none. */
int sv_rel_parse(const char *s)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(rels); i++)
        if (str_ieq(s, rels[i])) return (int)i;
    return -1;
}

/* charge - take n units from the budget; false (budget emptied) when it cannot pay. */
static bool charge(uint64_t *budget, uint64_t n)
{
    if (*budget < n) {
        *budget = 0;
        return false;
    }
    *budget -= n;
    return true;
}

/* fold - the byte as the comparator sees it. */
static unsigned char fold(enum sv_cmp cmp, unsigned char c)
{
    if (cmp != SV_CMP_OCTET && c >= 'A' && c <= 'Z') return (unsigned char)(c - 'A' + 'a');
    return c;
}

/* num_cmp - i;ascii-numeric order: the leading digits' value; no leading digit is infinity. */
static int num_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    bool ainf = !alen || a[0] < '0' || a[0] > '9', binf = !blen || b[0] < '0' || b[0] > '9';
    if (ainf || binf) return ainf == binf ? 0 : ainf ? 1 : -1;
    size_t ae = 0, be = 0;
    while (ae < alen && a[ae] >= '0' && a[ae] <= '9') ae++;
    while (be < blen && b[be] >= '0' && b[be] <= '9') be++;
    size_t as = 0, bs = 0;
    while (as + 1 < ae && a[as] == '0') as++;
    while (bs + 1 < be && b[bs] == '0') bs++;
    if (ae - as != be - bs) return ae - as < be - bs ? -1 : 1;
    int r = memcmp(a + as, b + bs, ae - as);
    return r < 0 ? -1 : r > 0;
}

/* ord_cmp - the comparator's order of two strings (-1, 0, 1). */
static int ord_cmp(enum sv_cmp cmp, const char *a, size_t alen, const char *b, size_t blen)
{
    if (cmp == SV_CMP_NUMERIC) return num_cmp(a, alen, b, blen);
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = fold(cmp, (unsigned char)a[i]), y = fold(cmp, (unsigned char)b[i]);
        if (x != y) return x < y ? -1 : 1;
    }
    return alen == blen ? 0 : alen < blen ? -1 : 1;
}

/* rel_holds - whether the order result r satisfies the relation. */
static bool rel_holds(enum sv_rel rel, int r)
{
    switch (rel) {
    case SV_REL_GT: return r > 0;
    case SV_REL_GE: return r >= 0;
    case SV_REL_LT: return r < 0;
    case SV_REL_LE: return r <= 0;
    case SV_REL_EQ: return r == 0;
    case SV_REL_NE: return r != 0;
    }
    return false;
}

/* contains - whether key occurs in value under the comparator (naive search, charged). */
static bool contains(enum sv_cmp cmp, const char *v, size_t vlen, const char *k, size_t klen, uint64_t *budget)
{
    if (!klen) return true;
    for (size_t s = 0; s + klen <= vlen; s++) {
        size_t i = 0;
        while (i < klen && fold(cmp, (unsigned char)v[s + i]) == fold(cmp, (unsigned char)k[i])) i++;
        if (!charge(budget, i + 1)) return false;
        if (i == klen) return true;
    }
    return false;
}

/* char_len - octets of the character at v[s]: 1 under i;octet, a UTF-8 sequence otherwise. */
static size_t char_len(enum sv_cmp cmp, const char *v, size_t vlen, size_t s)
{
    size_t n = 1;
    if (cmp == SV_CMP_OCTET || (unsigned char)v[s] < 0xc0) return 1;
    while (s + n < vlen && n < 4 && ((unsigned char)v[s + n] & 0xc0) == 0x80) n++;
    return n;
}

/* glob - :matches without recursion: on a mismatch, go back to the last "*" and let it take
 * one more character. */
static bool glob(enum sv_cmp cmp, const char *v, size_t vlen, const char *k, size_t klen, uint64_t *budget)
{
    size_t s = 0, pi = 0, star_pi = 0, star_s = 0;
    bool star = false;
    while (s < vlen) {
        if (!charge(budget, 1)) return false;
        if (pi < klen) {
            char c = k[pi];
            if (c == '*') {
                star = true;
                star_pi = ++pi;
                star_s = s;
                continue;
            }
            if (c == '?') {
                s += char_len(cmp, v, vlen, s);
                pi++;
                continue;
            }
            size_t adv = 1;
            if (c == '\\' && pi + 1 < klen) c = k[pi + 1], adv = 2;
            if (fold(cmp, (unsigned char)c) == fold(cmp, (unsigned char)v[s])) {
                s++;
                pi += adv;
                continue;
            }
        }
        if (!star) return false;
        star_s += char_len(cmp, v, vlen, star_s);
        s = star_s;
        pi = star_pi;
    }
    while (pi < klen && k[pi] == '*') pi++;
    return pi == klen;
}

/* sv_match - whether value matches key under ms (:is, :contains, :matches, :value). */
bool sv_match(const sv_matchspec *ms, const char *value, size_t vlen, const char *key, uint64_t *budget)
{
    size_t klen = strlen(key);
    switch (ms->mt) {
    case SV_MT_IS:
        if (!charge(budget, 1 + (vlen < klen ? vlen : klen))) return false;
        return ord_cmp(ms->cmp, value, vlen, key, klen) == 0 &&
               (ms->cmp == SV_CMP_NUMERIC || vlen == klen);
    case SV_MT_CONTAINS:
        return contains(ms->cmp, value, vlen, key, klen, budget);
    case SV_MT_MATCHES:
        return glob(ms->cmp, value, vlen, key, klen, budget);
    case SV_MT_VALUE:
        if (!charge(budget, 1 + (vlen < klen ? vlen : klen))) return false;
        return rel_holds(ms->rel, ord_cmp(ms->cmp, value, vlen, key, klen));
    case SV_MT_COUNT:
        break;
    }
    return false;
}

/* sv_match_count - :count: whether the number n relates to key as ms says. */
bool sv_match_count(const sv_matchspec *ms, size_t n, const char *key, uint64_t *budget)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%zu", n);
    size_t klen = strlen(key);
    if (!charge(budget, 1 + (klen < 32 ? klen : 32))) return false;
    return rel_holds(ms->rel, ord_cmp(ms->cmp, buf, (size_t)len, key, klen));
}

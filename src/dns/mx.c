/*
 * mx.c - the order in which a domain's MX hosts are tried (RFC 5321 5.1): by preference, hosts
 * of equal preference shuffled so that load spreads over them, and hosts known to have failed
 * lately tried after the others of their preference (5.1 allows favouring "an easily reached
 * address" among equal preferences; the order across preferences is never changed). Pure;
 * any thread.
 */
#include "dns/dns.h"

#include <stdlib.h>

/* mx_cmp - order by preference. */
static int mx_cmp(const void *a, const void *b)
{
    unsigned pa = ((const dns_mx *)a)->pref, pb = ((const dns_mx *)b)->pref;
    return pa < pb ? -1 : pa > pb;
}

void dns_mx_order(dns_mx *mx, size_t n, dns_rand_fn rnd, void *ctx)
{
    if (n > 1) qsort(mx, n, sizeof *mx, mx_cmp);
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && mx[end].pref == mx[start].pref) end++;
        /* Fisher-Yates over the run [start, end) of equal preference. */
        for (size_t i = end - 1; i > start; i--) {
            size_t j = start + rnd(ctx, (uint32_t)(i - start + 1));
            dns_mx t = mx[i];
            mx[i] = mx[j];
            mx[j] = t;
        }
        start = end;
    }
}

/* failing_rank - 0 for a host not in failing, else 1 + its position there (case-insensitive). */
static size_t failing_rank(const char *host, const strvec *failing)
{
    for (size_t i = 0; i < failing->n; i++)
        if (str_ieq(host, failing->v[i])) return i + 1;
    return 0;
}

void dns_mx_demote(dns_mx *mx, size_t n, const strvec *failing)
{
    if (!failing || !failing->n) return;
    /* A stable insertion sort by (preference, rank): n is a handful of hosts. */
    for (size_t i = 1; i < n; i++) {
        dns_mx cur = mx[i];
        size_t rank = failing_rank(cur.host, failing), j = i;
        while (j > 0 && mx[j - 1].pref == cur.pref && failing_rank(mx[j - 1].host, failing) > rank) {
            mx[j] = mx[j - 1];
            j--;
        }
        mx[j] = cur;
    }
}

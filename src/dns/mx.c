/*
 * mx.c - the order in which a domain's MX hosts are tried (RFC 5321 5.1): by preference, hosts
 * of equal preference shuffled so that load spreads over them. Pure; any thread.
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

/* dueheap.c - min-heap of entries by due time (see dueheap.h). */
#include "jobs/dueheap.h"
#include "core/util.h"

#include <stdlib.h>

/* heap_swap - exchange two positions and keep the nodes' indexes right. */
static void heap_swap(dueheap *h, size_t a, size_t b)
{
    dueheap_node *t = h->v[a];
    h->v[a] = h->v[b];
    h->v[b] = t;
    h->v[a]->idx = a;
    h->v[b]->idx = b;
}

/* heap_up - move the node at i towards the root while it is earlier than its parent. */
static void heap_up(dueheap *h, size_t i)
{
    while (i > 0 && h->v[(i - 1) / 2]->due > h->v[i]->due) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

/* heap_down - move the node at i towards the leaves while a child is earlier. */
static void heap_down(dueheap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->v[l]->due < h->v[m]->due) m = l;
        if (r < h->n && h->v[r]->due < h->v[m]->due) m = r;
        if (m == i) return;
        heap_swap(h, i, m);
        i = m;
    }
}

void dueheap_push(dueheap *h, dueheap_node *node)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
    }
    node->idx = h->n;
    node->queued = true;
    h->v[h->n++] = node;
    heap_up(h, node->idx);
}

void dueheap_remove(dueheap *h, dueheap_node *node)
{
    size_t i = node->idx;
    if (!node->queued || i >= h->n || h->v[i] != node) abort(); /* not in this heap: a scheduler bug */
    node->queued = false;
    h->n--;
    if (i == h->n) return;
    h->v[i] = h->v[h->n];
    h->v[i]->idx = i;
    heap_down(h, i);
    heap_up(h, i);
}

dueheap_node *dueheap_top(const dueheap *h)
{
    return h->n ? h->v[0] : NULL;
}

dueheap_node *dueheap_at(const dueheap *h, size_t i)
{
    return h->v[i];
}

void dueheap_free(dueheap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

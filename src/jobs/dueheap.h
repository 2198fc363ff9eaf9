/*
 * dueheap.h - a binary min-heap of entries ordered by due time: the waiting messages of one
 * channel (jobs/sched.c). Intrusive: the caller embeds a dueheap_node in its own struct and
 * sets node.due before the push; the heap only holds pointers and keeps each node's index, so
 * removal from the middle (an administrator's hold, a parked job taking a message) is
 * O(log n) without a search. The caller owns the nodes; the heap owns only its pointer array.
 * Not thread-safe: the scheduler calls it on the loop thread only.
 */
#ifndef SLUICE_DUEHEAP_H
#define SLUICE_DUEHEAP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dueheap_node {
    int64_t due; /* key: smaller is earlier; do not change while queued */
    size_t idx;  /* position in the heap while queued */
    bool queued; /* in a heap right now */
} dueheap_node;

typedef struct {
    dueheap_node **v;
    size_t n, cap;
} dueheap;

/* dueheap_push - insert node (node->due set by the caller). */
void dueheap_push(dueheap *h, dueheap_node *node);
/* dueheap_remove - take a queued node out, wherever it is. */
void dueheap_remove(dueheap *h, dueheap_node *node);
/* dueheap_top - the earliest node, or NULL when the heap is empty. */
dueheap_node *dueheap_top(const dueheap *h);
/* dueheap_at - the node at heap position i (< h->n): position 0 is the earliest, the rest in heap order. */
dueheap_node *dueheap_at(const dueheap *h, size_t i);
/* dueheap_free - release the pointer array (not the nodes) and empty the heap. */
void dueheap_free(dueheap *h);

#endif

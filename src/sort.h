/* An in-place sort with qsort's contract (not stable), without the C
 * library's smoothsort: heapsort, O(n log n) in the worst case, a few
 * hundred bytes of code. For the entity listing and the reshard's merge. */
#ifndef SORT_H
#define SORT_H
#include <stddef.h>

void sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

#endif

/* route.h - the routing tables of the backends that route queries to experts (moe's blocks,
 * mita's experts): each query's experts as uint16, and the routing inverted - for each expert,
 * the queries that chose it - so that its queries gather into tiles for sgemm. */
#ifndef LRA_ATTN_ROUTE_H
#define LRA_ATTN_ROUTE_H

#include <stdint.h>

typedef uint16_t lra_route;  /* an expert of a query's routing: at most 65535 experts */
#define LRA_NO_ROUTE 0xFFFFu /* past a query's last expert */

/* The routing of n queries (routes: (n, S), ascending per query, LRA_NO_ROUTE past the last)
 * inverted: off[e] .. off[e+1] in list are the queries (0 .. n-1) routed to expert e, ascending.
 * list holds n S entries, off experts + 1. */
static inline void lra_invert_routes(uint16_t *list, int32_t *off, const lra_route *routes, int n, int S, int experts) {
    for (int e = 0; e <= experts; e++) off[e] = 0;
    for (int x = 0; x < n * S; x++)
        if (routes[x] != LRA_NO_ROUTE) off[routes[x] + 1]++;
    for (int e = 0; e < experts; e++) off[e + 1] += off[e];
    for (int x = 0; x < n * S; x++)
        if (routes[x] != LRA_NO_ROUTE) list[off[routes[x]]++] = (uint16_t)(x / S);
    for (int e = experts; e > 0; e--) off[e] = off[e - 1]; /* off[e] was advanced to the end of expert e */
    off[0] = 0;
}

/* The next tile of an expert's queries, from entry at of its inverted list up to end: at most
 * tile of them, plus base, into rows; returns how many. */
static inline int lra_routed_tile(int32_t *rows, const uint16_t *list, int at, int end, int tile, int base) {
    const int n = end - at < tile ? end - at : tile;
    for (int r = 0; r < n; r++) rows[r] = base + list[at + r];
    return n;
}

#endif

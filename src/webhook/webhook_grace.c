/* webhook_grace — channel_vacated and member_removed wait out the grace
 * delay here; an occupied/added for the same key within it takes the hold
 * back out and neither event is sent (a page reload makes no noise). A
 * chained hash for lookup plus a list in deadline order for the timer. */
#include "util/xalloc.h"
#include "webhook/webhook_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s)
{
    size_t h = 14695981039346656037ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void wh_grace_init(wh_grace *g)
{
    *g = (wh_grace){.nbuckets = 64};
    g->buckets = xcalloc(g->nbuckets, sizeof *g->buckets);
}

void wh_hold_free(wh_hold *h)
{
    if (h) {
        free(h->key);
        free(h);
    }
}

void wh_grace_free(wh_grace *g, void (*free_data)(void *data, void *ctx), void *ctx)
{
    wh_hold *h = g->head;
    while (h) {
        wh_hold *next = h->next;
        if (free_data)
            free_data(h->data, ctx);
        wh_hold_free(h);
        h = next;
    }
    free(g->buckets);
    memset(g, 0, sizeof *g);
}

char *wh_grace_key(size_t app_idx, bool member, const char *channel, const char *user_id)
{
    size_t n = 24 + strlen(channel) + (user_id ? strlen(user_id) : 0);
    char *k = malloc(n);
    if (!k)
        abort();
    if (member)
        snprintf(k, n, "%zu\x1fR\x1f%s\x1f%s", app_idx, channel, user_id ? user_id : "");
    else
        snprintf(k, n, "%zu\x1fV\x1f%s", app_idx, channel);
    return k;
}

static void grow(wh_grace *g)
{
    size_t n = g->nbuckets * 2;
    wh_hold **b = xcalloc(n, sizeof *b);
    for (size_t i = 0; i < g->nbuckets; i++) {
        wh_hold *h = g->buckets[i];
        while (h) {
            wh_hold *next = h->hnext;
            size_t j = hash(h->key) & (n - 1);
            h->hnext = b[j];
            b[j] = h;
            h = next;
        }
    }
    free(g->buckets);
    g->buckets = b;
    g->nbuckets = n;
}

wh_hold *wh_grace_put(wh_grace *g, char *key, uint64_t due_ms, void *data)
{
    if (g->count + 1 > g->nbuckets)
        grow(g);
    wh_hold *h = xcalloc(1, sizeof *h);
    h->key = key;
    h->due_ms = due_ms;
    h->data = data;
    size_t i = hash(key) & (g->nbuckets - 1);
    h->hnext = g->buckets[i];
    g->buckets[i] = h;
    h->prev = g->tail;
    if (g->tail)
        g->tail->next = h;
    else
        g->head = h;
    g->tail = h;
    g->count++;
    return h;
}

static void unlink_hold(wh_grace *g, wh_hold *h)
{
    wh_hold **pp = &g->buckets[hash(h->key) & (g->nbuckets - 1)];
    while (*pp != h)
        pp = &(*pp)->hnext;
    *pp = h->hnext;
    if (h->prev)
        h->prev->next = h->next;
    else
        g->head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        g->tail = h->prev;
    h->prev = h->next = h->hnext = NULL;
    g->count--;
}

wh_hold *wh_grace_take(wh_grace *g, const char *key)
{
    if (!g->buckets)
        return NULL;
    for (wh_hold *h = g->buckets[hash(key) & (g->nbuckets - 1)]; h; h = h->hnext) {
        if (strcmp(h->key, key) == 0) {
            unlink_hold(g, h);
            return h;
        }
    }
    return NULL;
}

wh_hold *wh_grace_pop_due(wh_grace *g, uint64_t now_ms)
{
    wh_hold *h = g->head;
    if (!h || (now_ms != UINT64_MAX && h->due_ms > now_ms))
        return NULL;
    unlink_hold(g, h);
    return h;
}

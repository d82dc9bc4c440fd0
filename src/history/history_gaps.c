/* history_gaps — events that went out live but were not stored.
 *
 * When a batch cannot be committed, its events are still delivered to the
 * connected clients, without ids. A client that was away and resumes from
 * an id before them must not be told it recovered everything. So each
 * such channel is remembered here, and the first batch that commits
 * afterwards uses up one sequence number of it in the store (store skip_seq):
 * a resume across that number finds a gap and answers recovered:false.
 * The record is in the store from then on, across restarts.
 *
 * Bounded: past GAPS_MAX_BYTES (names, entries and table), every channel is
 * given the gap instead (a resume across it on a channel that lost nothing
 * also answers recovered:false, which is safe). While nothing else is
 * written, the thread tries them every GAPS_RETRY_MS, and once more when it
 * stops; what hark forgets by stopping while the store still fails is
 * documented as a limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history/history_internal.h"
#include "util/xalloc.h"

#define GAPS_MAX_BYTES (4u << 20)

typedef struct gap_entry {
    size_t app;
    uint32_t name_off, key_len;
    char key[]; /* "<app index>:<name>" */
} gap_entry;

void history_gaps_note(history *hs, size_t app, const char *name, size_t len)
{
    if (hs->gaps_everywhere)
        return;
    char prefix[24];
    int plen = snprintf(prefix, sizeof(prefix), "%zu:", app);
    size_t klen = (size_t)plen + len;
    gap_entry *g = xmalloc(sizeof(*g) + klen);
    g->app = app;
    g->name_off = (uint32_t)plen;
    g->key_len = (uint32_t)klen;
    memcpy(g->key, prefix, (size_t)plen);
    memcpy(g->key + plen, name, len);
    if (strmap_get(&hs->gaps, g->key, klen)) {
        free(g);
        return;
    }
    size_t cost = sizeof(*g) + klen + 2 * sizeof(strmap_slot); /* the entry and its slot */
    if (hs->gaps_bytes + cost > GAPS_MAX_BYTES) {
        free(g);
        history_gaps_clear(hs);
        hs->gaps_everywhere = true;
        return;
    }
    strmap_put(&hs->gaps, g->key, klen, g);
    hs->gaps_bytes += cost;
}

bool history_gaps_pending(const history *hs)
{
    return hs->gaps_everywhere || hs->gaps.count > 0;
}

int history_gaps_write(history *hs)
{
    store *st = hs->st;
    if (hs->gaps_everywhere)
        return st->ops->skip_seq(st, NULL, NULL, 0);
    for (size_t i = 0; i < hs->gaps.cap; i++) {
        gap_entry *g = hs->gaps.slots[i].value;
        if (!hs->gaps.slots[i].key)
            continue;
        if (st->ops->skip_seq(st, hs->cfg->apps[g->app].id, g->key + g->name_off,
                              g->key_len - g->name_off) != 0)
            return -1;
    }
    return 0;
}

void history_gaps_clear(history *hs)
{
    for (size_t i = 0; i < hs->gaps.cap; i++)
        if (hs->gaps.slots[i].key)
            free(hs->gaps.slots[i].value);
    strmap_free(&hs->gaps);
    strmap_init(&hs->gaps);
    hs->gaps_bytes = 0;
    hs->gaps_everywhere = false;
}

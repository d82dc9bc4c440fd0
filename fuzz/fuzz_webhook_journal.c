/* Fuzz target: wh_journal_replay, the reader of the webhook journal left on
 * disk by an earlier run (possibly torn by a kill or edited by hand). Every
 * record it reports as owed must survive a write/read round trip unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhook/webhook_internal.h"

static void check_one(const wh_jrec *r, void *ctx)
{
    const wh_jrec *want = ctx;
    if (r->seq != want->seq || r->time_ms != want->time_ms || strcmp(r->app_id, want->app_id) ||
        strcmp(r->url, want->url) || r->event_len != want->event_len ||
        memcmp(r->event, want->event, r->event_len))
        abort();
}

static void on_live(const wh_jrec *r, void *ctx)
{
    size_t *n = ctx;
    (*n)++;
    buf b;
    buf_init(&b);
    wh_journal_add(&b, r);
    if (b.len == 0 || b.data[b.len - 1] != '\n' || memchr(b.data, '\n', b.len - 1))
        abort(); /* one record, one line */
    size_t bad = 0;
    wh_journal_replay(b.data, b.len, check_one, (void *)r, &bad);
    if (bad)
        abort();
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0, bad = 0;
    wh_journal_replay((const char *)data, size, on_live, &n, &bad);
    return 0;
}

/* GET /apps/{id}/channels/{name}/events — a page of a kept channel's
 * history (docs/api.md): after=<id>, before=<id> or from=oldest, or the
 * newest page; limit 1-1000. Read by the history thread; the answer waits
 * for it (conn_defer_reply). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "net/http_response.h"
#include "net/worker.h"
#include "util/http_query.h"
#include "util/xalloc.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

static void on_page(hub *h, void *ctx, const history_page *res)
{
    api_waiting_answer(ctx, h, h ? res->status : 0, h ? res->error : NULL,
                       h && res->status == 200 ? res->json->data : NULL,
                       h && res->status == 200 ? res->json->len : 0);
}

/* A query parameter (decoded): its length, -1 when absent, or -2 after
 * answering 400. */
static long param(api_request *r, const char *key, char *out, size_t cap)
{
    long n = http_query_get(r->http->query, r->http->query_len, key, out, cap);
    if (n == -2)
        api_error(r, 400, "%s: too long or badly escaped", key);
    return n;
}

void api_channel_events(api_request *r, const char *raw, size_t raw_len)
{
    char after[HISTORY_ID_MAX + 2], before[HISTORY_ID_MAX + 2], from[16], limit_s[16];
    long na = param(r, "after", after, sizeof(after));
    long nb = na == -2 ? -2 : param(r, "before", before, sizeof(before));
    long nf = nb == -2 ? -2 : param(r, "from", from, sizeof(from));
    long nl = nf == -2 ? -2 : param(r, "limit", limit_s, sizeof(limit_s));
    if (nl == -2)
        return;
    if ((na >= 0) + (nb >= 0) + (nf >= 0) > 1) {
        api_error(r, 400, "Use one of after, before and from, not several");
        return;
    }
    history_page_query q = {.from = HISTORY_NEWEST, .limit = PAGE_DEFAULT};
    if (nf >= 0) {
        if (strcmp(from, "oldest") != 0) {
            api_error(r, 400, "from: the only value is oldest");
            return;
        }
        q.from = HISTORY_OLDEST;
    } else if (na >= 0) {
        q = (history_page_query){HISTORY_AFTER, after, (size_t)na, PAGE_DEFAULT};
    } else if (nb >= 0) {
        q = (history_page_query){HISTORY_BEFORE, before, (size_t)nb, PAGE_DEFAULT};
    }
    if (nl >= 0) {
        char *end;
        long v = limit_s[0] >= '0' && limit_s[0] <= '9' ? strtol(limit_s, &end, 10) : 0;
        if (v == 0 || *end || v < 1 || v > PAGE_MAX) {
            api_error(r, 400, "limit: must be an integer 1-%d", PAGE_MAX);
            return;
        }
        q.limit = (uint32_t)v;
    }
    char *name;
    long n = api_decode_channel(r, raw, raw_len, &name);
    if (n < 0)
        return;
    if (!r->history || !history_rule(r->app, name, (size_t)n)) {
        free(name);
        api_error(r, 404, "This channel's events are not kept (see the app's history rules)");
        return;
    }
    api_waiting *wp = api_waiting_new(r);
    char err[256];
    if (!history_page_get(r->history, r->hub->hub, r->hub->index, name, (size_t)n, &q, on_page, wp,
                          err, sizeof(err))) {
        free(wp);
        free(name);
        api_error(r, 400, "%s", err);
        return;
    }
    /* queued: the answer comes back through this worker's inbox, after
     * this request has returned, so the token is set in time */
    wp->token = conn_defer_reply(r->c);
    free(name);
}

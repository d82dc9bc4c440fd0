/* webhook_journal — the record format of the on-disk journal and its
 * replay after a restart. The file itself is opened, appended to and
 * compacted by the delivery thread (webhook.c); this file only turns records
 * into bytes and bytes back into the events still owed. */
#include "webhook/webhook_internal.h"

#include "util/json_write.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void wh_journal_add(buf *out, const wh_jrec *r)
{
    buf_append_str(out, "{\"s\":");
    buf_append_u64(out, r->seq);
    buf_append_str(out, ",\"t\":");
    buf_append_i64(out, r->time_ms);
    buf_append_str(out, ",\"app\":");
    json_write_cstr(out, r->app_id);
    buf_append_str(out, ",\"url\":");
    json_write_cstr(out, r->url);
    buf_append_str(out, ",\"e\":");
    json_write_string(out, r->event, r->event_len);
    buf_append_str(out, "}\n");
}

void wh_journal_done(buf *out, const uint64_t *seqs, size_t n)
{
    if (n == 0)
        return;
    buf_append_str(out, "{\"c\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append_char(out, ',');
        buf_append_u64(out, seqs[i]);
    }
    buf_append_str(out, "]}\n");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct vec {
    void *items;
    size_t n, cap, size;
} vec;

static void *vec_push(vec *v)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        void *p = realloc(v->items, v->cap * v->size);
        if (!p)
            abort();
        v->items = p;
    }
    return (char *)v->items + v->size * v->n++;
}

/* A sequence number as jansson holds it: a non-negative integer. */
static bool seq_of(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool event_record(json_t *o)
{
    uint64_t s = 0;
    return seq_of(json_object_get(o, "s"), &s) && json_is_integer(json_object_get(o, "t")) &&
           json_is_string(json_object_get(o, "app")) && json_is_string(json_object_get(o, "url")) &&
           json_is_string(json_object_get(o, "e"));
}

uint64_t wh_journal_replay(const char *data, size_t len, void (*on_live)(const wh_jrec *, void *),
                           void *ctx, size_t *bad)
{
    vec events = {.size = sizeof(json_t *)};
    vec done = {.size = sizeof(uint64_t)};
    uint64_t max_seq = 0;
    size_t nbad = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) { /* a torn last write: the record never counted */
            nbad++;
            break;
        }
        json_t *o = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, NULL);
        p = nl + 1;
        json_t *c = json_object_get(o, "c");
        if (o && event_record(o)) {
            uint64_t s = 0;
            seq_of(json_object_get(o, "s"), &s);
            if (s > max_seq)
                max_seq = s;
            *(json_t **)vec_push(&events) = o;
            continue;
        }
        if (o && json_is_array(c)) {
            size_t i;
            json_t *v;
            json_array_foreach(c, i, v)
            {
                uint64_t s = 0;
                if (seq_of(v, &s))
                    *(uint64_t *)vec_push(&done) = s;
            }
        } else {
            nbad++;
        }
        json_decref(o);
    }
    if (done.n)
        qsort(done.items, done.n, sizeof(uint64_t), cmp_u64);
    for (size_t i = 0; i < events.n; i++) {
        json_t *o = ((json_t **)events.items)[i];
        wh_jrec r = {0};
        seq_of(json_object_get(o, "s"), &r.seq);
        if (!done.n || !bsearch(&r.seq, done.items, done.n, sizeof(uint64_t), cmp_u64)) {
            json_t *e = json_object_get(o, "e");
            r.time_ms = (int64_t)json_integer_value(json_object_get(o, "t"));
            r.app_id = json_string_value(json_object_get(o, "app"));
            r.url = json_string_value(json_object_get(o, "url"));
            r.event = json_string_value(e);
            r.event_len = json_string_length(e);
            on_live(&r, ctx);
        }
        json_decref(o);
    }
    free(events.items);
    free(done.items);
    if (bad)
        *bad = nbad;
    return max_seq;
}

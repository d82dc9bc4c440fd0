/* history_read — resume (the events after an id, for a subscriber) and
 * pages (the REST API), read on the history thread inside the batch's
 * transaction, so they see every event sequenced before them. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history/history_internal.h"
#include "protocol/pusher_msg.h"
#include "util/json_write.h"
#include "util/xalloc.h"

static const char *const not_this_history =
    "the id is from an earlier history of this channel (it was reset or lost)";

/* --- resume -------------------------------------------------------------------- */

void history_resume(history *hs, hub *from, size_t app, const char *channel, size_t len,
                    const char *since, size_t since_len, bool want_position, uint32_t max_replay,
                    const char *socket_id, uint64_t ticket, history_resumed_fn done)
{
    job *j = xcalloc(1, sizeof(*j));
    j->want_position = want_position;
    j->kind = JOB_RESUME;
    j->result.ticket = ticket;
    j->from = from;
    j->app = app;
    j->channel = xmemdup(channel, len);
    j->channel_len = len;
    j->max_replay = max_replay;
    j->resumed = done;
    snprintf(j->socket_id, sizeof(j->socket_id), "%s", socket_id);
    const hk_app *a = &hs->cfg->apps[app];
    const hk_history_rule *rule = history_rule(a, channel, len);
    j->max_age_s = rule ? rule->max_age_s : 0;
    const char *why = NULL;
    if (since)
        why = history_id_check(since, since_len, a->id, channel, len, &j->since);
    else
        j->from_head = true;
    if (why) { /* answered in order with the rest, without reading */
        snprintf(j->message, sizeof(j->message), "since: %s", why);
        j->error = j->message;
    }
    history_enqueue(hs, j);
}

typedef struct replay_ctx {
    history *hs;
    job *j;
    chan_entry *c;
    uint64_t expect; /* the next seq a gapless replay must have */
    bool gap;
    bool over_budget;
} replay_ctx;

static bool replay_row(void *arg, const store_event *ev)
{
    replay_ctx *r = arg;
    job *j = r->j;
    if (ev->seq != r->expect) {
        r->gap = true;
        return false;
    }
    r->expect++;
    char id[HISTORY_ID_MAX + 1];
    size_t id_len = history_id_format(id, r->c->ch.epoch, r->c->tag, ev->seq);
    buf b;
    frame_buf_init(&b);
    buf_reserve(&b, ev->data_len + j->channel_len + ev->event_len + 96);
    pusher_encode_stored(&b, ev->event, ev->event_len, j->channel, j->channel_len, ev->data,
                         ev->data_len, ev->user_id, ev->user_id_len, id, id_len);
    frame *f = frame_buf_take(&b);
    f->seq = ev->seq;
    f->stream = frame_stream(j->channel, j->channel_len);
    j->frames[j->num_frames++] = f;
    j->result.bytes += f->len;
    if (atomic_fetch_add(&r->hs->replay_bytes, f->len) + f->len > HISTORY_REPLAY_BUDGET) {
        r->over_budget = true;
        return false;
    }
    return true;
}

void history_replay_release(history *hs, size_t bytes)
{
    atomic_fetch_sub(&hs->replay_bytes, bytes);
}

void history_run_resume(history *hs, job *j)
{
    bool make = j->from_head || j->want_position;
    if (j->error && !make)
        return;
    int rc;
    chan_entry *c = history_channel(hs, j->app, j->channel, j->channel_len, make, &rc);
    if (rc < 0) {
        if (!j->error) { /* a reason found before reading stays the reason */
            snprintf(j->message, sizeof(j->message), "History storage failed: %.150s",
                     hs->st->ops->error(hs->st));
            j->error = j->message;
        }
        return;
    }
    if (c && make) { /* where "now" is, whatever the answer */
        j->result.upto = c->ch.last_seq;
        history_id_format(j->position, c->ch.epoch, c->tag, c->ch.last_seq);
    }
    if (j->error || j->from_head)
        return;
    if (!c || strcmp(c->ch.epoch, j->since.epoch) != 0) {
        j->error = not_this_history;
        return;
    }
    if (j->since.seq > c->ch.last_seq) {
        j->error = "the id was never issued on this channel";
        return;
    }
    uint64_t count = c->ch.last_seq - j->since.seq;
    j->result.upto = c->ch.last_seq;
    if (count > j->max_replay) {
        snprintf(j->message, sizeof(j->message),
                 "%" PRIu64 " %s published after the id, more than max_replay (%" PRIu32 ")", count,
                 count == 1 ? "event was" : "events were", j->max_replay);
        j->error = j->message;
        return;
    }
    if (count == 0)
        return;
    j->frames = xcalloc((size_t)count, sizeof(frame *));
    replay_ctx r = {.j = j, .c = c, .expect = j->since.seq + 1, .hs = hs};
    int64_t min_ms = history_now_ms() - (int64_t)j->max_age_s * 1000;
    rc = hs->st->ops->range(hs->st, &c->ch, j->since.seq, c->ch.last_seq, min_ms, (uint32_t)count,
                            false, replay_row, &r);
    if (rc != 0 || r.gap || r.over_budget || j->num_frames != count) {
        for (size_t i = 0; i < j->num_frames; i++)
            frame_unref(j->frames[i]);
        j->num_frames = 0;
        history_replay_release(hs, j->result.bytes);
        j->result.bytes = 0;
        if (r.over_budget) {
            j->error = "the server is replaying too much at once: resume again later";
        } else if (rc != 0) {
            snprintf(j->message, sizeof(j->message), "History storage failed: %.150s",
                     hs->st->ops->error(hs->st));
            j->error = j->message;
        } else {
            j->error = "some events after the id are no longer kept";
        }
    }
}

static void resumed_call(hub *h, void *arg)
{
    job *j = arg;
    if (h) {
        history_resumed *r = &j->result;
        r->hs = j->hs;
        r->app = j->app;
        r->channel = j->channel;
        r->channel_len = j->channel_len;
        r->socket_id = j->socket_id;
        r->recovered = !j->error && !j->failed;
        r->reason = j->failed ? j->message : j->error;
        /* not from a batch that failed: its head may name a rolled-back seq */
        r->position = !j->failed && j->position[0] ? j->position : NULL;
        if (!r->recovered) {
            r->upto = j->failed ? 0 : r->upto;
            for (size_t i = 0; i < j->num_frames; i++)
                frame_unref(j->frames[i]);
            j->num_frames = 0;
            history_replay_release(j->hs, r->bytes);
            r->bytes = 0;
        }
        r->count = (uint32_t)j->num_frames;
        r->frames = j->frames;
        j->resumed(h, r);
    } else {
        history_replay_release(j->hs, j->result.bytes); /* cancelled at shutdown */
    }
    job_free(j);
}

void history_answer_resume(job *j)
{
    hub_post(j->from, resumed_call, j);
}

/* --- pages ------------------------------------------------------------------- */

bool history_page_get(history *hs, hub *from, size_t app, const char *channel, size_t len,
                      const history_page_query *q, history_page_fn done, void *ctx, char *err,
                      size_t cap)
{
    const hk_app *a = &hs->cfg->apps[app];
    job *j = xcalloc(1, sizeof(*j));
    if (q->from == HISTORY_AFTER || q->from == HISTORY_BEFORE) {
        const char *why = history_id_check(q->id, q->id_len, a->id, channel, len, &j->since);
        if (why) {
            snprintf(err, cap, "%s: %s", q->from == HISTORY_AFTER ? "after" : "before", why);
            free(j);
            return false;
        }
    }
    j->kind = JOB_PAGE;
    j->from = from;
    j->app = app;
    j->channel = xmemdup(channel, len);
    j->channel_len = len;
    j->from_where = q->from;
    j->limit = q->limit;
    j->paged = done;
    j->ctx = ctx;
    const hk_history_rule *rule = history_rule(a, channel, len);
    j->max_age_s = rule ? rule->max_age_s : 0;
    buf_init(&j->json);
    history_enqueue(hs, j);
    return true;
}

typedef struct page_ctx {
    chan_entry *c;
    char **rows; /* each event's JSON object */
    size_t n;
    uint64_t first_seq, last_seq;
} page_ctx;

static bool page_row(void *arg, const store_event *ev)
{
    page_ctx *p = arg;
    char id[HISTORY_ID_MAX + 1];
    size_t id_len = history_id_format(id, p->c->ch.epoch, p->c->tag, ev->seq);
    buf b;
    buf_init(&b);
    buf_append_str(&b, "{\"id\":");
    json_write_string(&b, id, id_len);
    buf_append_str(&b, ",\"event\":");
    json_write_string(&b, ev->event, ev->event_len);
    buf_append_str(&b, ",\"data\":");
    buf_append(&b, ev->data, ev->data_len);
    if (ev->user_id) {
        buf_append_str(&b, ",\"user_id\":");
        json_write_string(&b, ev->user_id, ev->user_id_len);
    }
    buf_append_str(&b, ",\"published_at_ms\":");
    buf_append_i64(&b, ev->published_at_ms);
    buf_append_char(&b, '}');
    p->rows[p->n++] = buf_steal(&b);
    return true;
}

void history_run_page(history *hs, job *j)
{
    int rc;
    chan_entry *c = history_channel(hs, j->app, j->channel, j->channel_len, false, &rc);
    bool with_id = j->from_where == HISTORY_AFTER || j->from_where == HISTORY_BEFORE;
    if (rc < 0) {
        j->status = 503;
        snprintf(j->message, sizeof(j->message), "History storage failed: %.150s",
                 hs->st->ops->error(hs->st));
        j->error = j->message;
        return;
    }
    const char *bad_id = NULL;
    if (with_id && (!c || strcmp(c->ch.epoch, j->since.epoch) != 0))
        bad_id = not_this_history;
    else if (with_id && j->since.seq > c->ch.last_seq)
        bad_id = "the id was never issued on this channel";
    if (bad_id) { /* named like the request's other id errors */
        j->status = 400;
        snprintf(j->message, sizeof(j->message), "%s: %s",
                 j->from_where == HISTORY_AFTER ? "after" : "before", bad_id);
        j->error = j->message;
        return;
    }
    j->status = 200;
    if (!c) {
        buf_append_str(&j->json, "{\"events\":[],\"next\":null}");
        return;
    }
    uint64_t after = 0, upto = c->ch.last_seq;
    bool descending = false;
    switch (j->from_where) {
    case HISTORY_AFTER:
        after = j->since.seq;
        break;
    case HISTORY_BEFORE:
        upto = j->since.seq - 1;
        descending = true;
        break;
    case HISTORY_NEWEST:
        descending = true;
        break;
    default:
        break;
    }
    page_ctx p = {.c = c, .rows = xcalloc(j->limit, sizeof(char *))};
    int64_t min_ms = history_now_ms() - (int64_t)j->max_age_s * 1000;
    rc =
        hs->st->ops->range(hs->st, &c->ch, after, upto, min_ms, j->limit, descending, page_row, &p);
    if (rc != 0) {
        j->status = 503;
        snprintf(j->message, sizeof(j->message), "History storage failed: %.150s",
                 hs->st->ops->error(hs->st));
        j->error = j->message;
    } else {
        buf_append_str(&j->json, "{\"events\":[");
        for (size_t i = 0; i < p.n; i++) {
            if (i)
                buf_append_char(&j->json, ',');
            buf_append_str(&j->json, p.rows[descending ? p.n - 1 - i : i]);
        }
        buf_append_str(&j->json, "],\"next\":");
        if (p.n == j->limit) {
            /* the row that continues the walk: the last of an ascending
             * page, the first (oldest) of a descending one */
            const char *row = p.rows[p.n - 1];
            const char *id = row + 7; /* {"id":"…" */
            size_t id_len = strcspn(id, "\"");
            buf_append_char(&j->json, '"');
            buf_append(&j->json, id, id_len);
            buf_append_char(&j->json, '"');
        } else {
            buf_append_str(&j->json, "null");
        }
        buf_append_char(&j->json, '}');
    }
    for (size_t i = 0; i < p.n; i++)
        free(p.rows[i]);
    free(p.rows);
}

static void paged_call(hub *h, void *arg)
{
    job *j = arg;
    if (h) {
        if (j->failed) {
            j->status = 503;
            j->error = j->message;
        }
        history_page r = {.status = j->status, .error = j->error, .json = &j->json};
        j->paged(h, j->ctx, &r);
    } else {
        j->paged(NULL, j->ctx, NULL);
    }
    job_free(j);
}

void history_answer_page(job *j)
{
    hub_post(j->from, paged_call, j);
}

/* history_read_state — read cursors ("read up to id" per app, user and
 * channel), the "seen" receipts they cause, and unread counts. Kept in
 * the same store as the events and written in the same group commits, so
 * a cursor is as durable as an event once its answer is out. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history/history_internal.h"
#include "protocol/channel_name.h"
#include "protocol/pusher_msg.h"
#include "util/json_write.h"
#include "util/xalloc.h"

static const char *const other_history =
    "the id is from an earlier history of this channel (it was reset or lost)";

/* --- read cursors ------------------------------------------------------------- */

/* One more read or unread request, unless HISTORY_CHAT_MAX are waiting. */
static bool chat_slot(history *hs)
{
    if (atomic_fetch_add(&hs->chat_queued, 1) < HISTORY_CHAT_MAX)
        return true;
    atomic_fetch_sub(&hs->chat_queued, 1);
    return false;
}

int history_mark_read(history *hs, hub *from, size_t app, const char *user, size_t user_len,
                      const char *channel, size_t channel_len, const char *id, size_t id_len,
                      const char *except_socket_id, history_read_fn done, void *ctx, char *err,
                      size_t cap)
{
    job *j = xcalloc(1, sizeof(*j));
    if (id) {
        const char *why =
            history_id_check(id, id_len, hs->cfg->apps[app].id, channel, channel_len, &j->since);
        if (why) {
            snprintf(err, cap, "id: %s", why);
            free(j);
            return 400;
        }
        j->has_id = true;
    }
    if (!chat_slot(hs)) {
        snprintf(err, cap, "the server has too many read requests waiting: try again");
        free(j);
        return 503;
    }
    j->kind = JOB_READ;
    j->from = from;
    j->app = app;
    j->user = xmemdup(user, user_len);
    j->user_len = user_len;
    j->channel = xmemdup(channel, channel_len);
    j->channel_len = channel_len;
    if (except_socket_id)
        snprintf(j->socket_id, sizeof(j->socket_id), "%s", except_socket_id);
    j->read_done = done;
    j->ctx = ctx;
    history_enqueue(hs, j);
    return 0;
}

static bool newest_seq(void *ctx, const store_event *ev)
{
    *(uint64_t *)ctx = ev->seq;
    return false;
}

int history_run_read(history *hs, job *j)
{
    int rc;
    chan_entry *c = history_channel(hs, j->app, j->channel, j->channel_len, false, &rc);
    if (rc < 0)
        return -1;
    j->status = 200;
    if (!c || c->ch.last_seq == 0) {
        if (j->has_id) { /* ids of a channel without history were never issued */
            j->status = 400;
            j->error = c ? "id: the id was never issued on this channel" : other_history;
        }
        return 0; /* no id and no events: nothing to read */
    }
    uint64_t seq = 0;
    if (!j->has_id) {
        /* up to the newest event kept now (none, once age took them all;
         * nor a number no event has: a gap of events never stored) */
        const hk_history_rule *rule =
            history_rule(&hs->cfg->apps[j->app], j->channel, j->channel_len);
        int64_t min_ms = rule ? history_now_ms() - (int64_t)rule->max_age_s * 1000 : INT64_MAX;
        if (hs->st->ops->range(hs->st, &c->ch, 0, c->ch.last_seq, min_ms, 1, true, newest_seq,
                               &seq) != 0)
            return -1;
    } else {
        if (strcmp(c->ch.epoch, j->since.epoch) != 0) {
            j->status = 400;
            j->error = other_history;
            return 0;
        }
        if (j->since.seq > c->ch.last_seq) {
            j->status = 400;
            j->error = "id: the id was never issued on this channel";
            return 0;
        }
        seq = j->since.seq;
    }
    if (seq == 0) /* no event kept, or "<epoch>.<tag>.0": before the first event */
        return 0;
    if (hs->st->ops->read_set(hs->st, hs->cfg->apps[j->app].id, j->user, j->user_len, c->ch.key,
                              seq, &j->moved) != 0)
        return -1;
    if (j->moved)
        history_id_format(j->read_id, c->ch.epoch, c->tag, seq);
    return 0;
}

static void read_call(hub *h, void *arg)
{
    job *j = arg;
    atomic_fetch_sub(&j->hs->chat_queued, 1);
    if (j->read_done) {
        if (h) {
            history_read_result r = {.status = j->failed ? 503 : j->status,
                                     .error = j->failed ? j->message : j->error,
                                     .moved = !j->failed && j->moved};
            j->read_done(h, j->ctx, &r);
        } else {
            j->read_done(NULL, j->ctx, NULL);
        }
    }
    job_free(j);
}

/* After the commit: the receipt to the channel (not to the reader's own
 * connection), then the answer. */
void history_answer_read(job *j)
{
    if (!j->failed && j->moved) {
        buf data;
        buf_init(&data);
        buf_append_str(&data, "{\"user_id\":");
        json_write_string(&data, j->user, j->user_len);
        buf_append_str(&data, ",\"id\":");
        json_write_string(&data, j->read_id, strlen(j->read_id));
        buf_append_char(&data, '}');
        buf b;
        frame_buf_init(&b);
        pusher_encode_string_data(&b, PUSHER_LIT("hark:read"), j->channel, j->channel_len,
                                  data.data, data.len);
        frame *f = frame_buf_take(&b);
        hub_publish_posted(j->from, j->app, j->channel, j->channel_len, f,
                           j->socket_id[0] ? j->socket_id : NULL);
        frame_unref(f);
        buf_free(&data);
    }
    hub_post(j->from, read_call, j);
}

/* --- "was subscribed" notes ----------------------------------------------------- */

void history_note_member(history *hs, size_t app, const char *user, size_t user_len,
                         const char *channel, size_t channel_len)
{
    if (atomic_fetch_add(&hs->notes_queued, 1) >= HISTORY_NOTES_MAX) {
        atomic_fetch_sub(&hs->notes_queued, 1);
        atomic_fetch_add(&hs->notes_dropped, 1);
        return;
    }
    job *j = xcalloc(1, sizeof(*j));
    j->kind = JOB_NOTE;
    j->app = app;
    j->user = xmemdup(user, user_len);
    j->user_len = user_len;
    j->channel = xmemdup(channel, channel_len);
    j->channel_len = channel_len;
    history_enqueue(hs, j);
}

int history_run_note(history *hs, job *j)
{
    int rc;
    chan_entry *c = history_channel(hs, j->app, j->channel, j->channel_len, true, &rc);
    if (!c)
        return -1;
    bool moved;
    return hs->st->ops->read_set(hs->st, hs->cfg->apps[j->app].id, j->user, j->user_len, c->ch.key,
                                 0, &moved);
}

/* --- unread counts -------------------------------------------------------------- */

bool history_unread(history *hs, hub *from, size_t app, const char *user, size_t user_len,
                    const char *const *channels, const size_t *channel_lens, size_t num_channels,
                    history_unread_fn done, void *ctx)
{
    if (!chat_slot(hs))
        return false;
    job *j = xcalloc(1, sizeof(*j));
    j->kind = JOB_UNREAD;
    j->from = from;
    j->app = app;
    j->user = xmemdup(user, user_len);
    j->user_len = user_len;
    if (channels) {
        buf names;
        buf_init(&names);
        buf_append_char(&names, '[');
        for (size_t i = 0; i < num_channels; i++) {
            if (i)
                buf_append_char(&names, ',');
            json_write_string(&names, channels[i], channel_lens[i]);
        }
        buf_append_char(&names, ']');
        j->names_json = buf_steal(&names);
    }
    j->unread_done = done;
    j->ctx = ctx;
    buf_init(&j->json);
    history_enqueue(hs, j);
    return true;
}

typedef struct unread_ctx {
    history *hs;
    job *j;
    bool first;
} unread_ctx;

static void write_id_or_null(buf *out, const char *epoch, uint32_t tag, uint64_t seq)
{
    if (!epoch || seq == 0) {
        buf_append_str(out, "null");
        return;
    }
    char id[HISTORY_ID_MAX + 1];
    size_t n = history_id_format(id, epoch, tag, seq);
    json_write_string(out, id, n);
}

static void unread_row(void *arg, const store_unread *u)
{
    unread_ctx *x = arg;
    job *j = x->j;
    const hk_app *app = &x->hs->cfg->apps[j->app];
    bool kept = history_rule(app, u->name, u->name_len) != NULL;
    bool any = kept && u->epoch && u->last_seq > 0;
    uint32_t tag = history_tag(app->id, u->name, u->name_len);
    if (!x->first)
        buf_append_char(&j->json, ',');
    x->first = false;
    json_write_string(&j->json, u->name, u->name_len);
    buf_append_str(&j->json, ":{\"unread\":");
    buf_append_i64(&j->json, any ? (int64_t)u->unread : 0);
    buf_append_str(&j->json, ",\"last_id\":");
    write_id_or_null(&j->json, u->epoch, tag, any ? u->last_seq : 0);
    buf_append_str(&j->json, ",\"read_id\":");
    write_id_or_null(&j->json, u->epoch, tag, u->read_seq);
    buf_append_char(&j->json, '}');
}

void history_run_unread(history *hs, job *j)
{
    buf own;
    buf_init(&own);
    buf_append_str(&own, CHANNEL_USER_PREFIX);
    buf_append(&own, j->user, j->user_len);
    buf_append_char(&own, '\0');
    unread_ctx x = {.hs = hs, .j = j, .first = true};
    buf_append_str(&j->json, "{\"channels\":{");
    int rc = hs->st->ops->unread(hs->st, hs->cfg->apps[j->app].id, j->user, j->user_len,
                                 j->names_json, own.data, unread_row, &x);
    buf_append_str(&j->json, "}}");
    buf_free(&own);
    if (rc != 0) {
        j->status = 503;
        snprintf(j->message, sizeof(j->message), "History storage failed: %.150s",
                 hs->st->ops->error(hs->st));
        j->error = j->message;
    } else {
        j->status = 200;
    }
}

static void unread_call(hub *h, void *arg)
{
    job *j = arg;
    atomic_fetch_sub(&j->hs->chat_queued, 1);
    if (h) {
        history_unread_result r = {.status = j->failed ? 503 : j->status,
                                   .error = j->failed ? j->message : j->error,
                                   .json = &j->json};
        j->unread_done(h, j->ctx, &r);
    } else {
        j->unread_done(NULL, j->ctx, NULL);
    }
    job_free(j);
}

void history_answer_unread(job *j)
{
    hub_post(j->from, unread_call, j);
}

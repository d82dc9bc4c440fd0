/* POST /apps/{id}/events and /batch_events (spec §8.3, §8.4).
 *
 * Events on channels the app's history rules keep go to the history
 * thread, which delivers them once stored; the answer waits for that
 * (conn_defer_reply) and lists their ids. The others are published at
 * once, as Pusher does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "net/http_response.h"
#include "net/worker.h"
#include "protocol/channel_name.h"
#include "protocol/pusher_msg.h"
#include "util/json_write.h"
#include "util/strmap.h"
#include "util/xalloc.h"

#define MAX_CHANNELS_HARD 100

/* One event to publish, validated. */
typedef struct publish_item {
    const char *name;
    size_t name_len;
    char *data; /* owned when data_owned */
    size_t data_len;
    bool data_owned;
    const char **channels; /* fixed, or user_channels */
    size_t *channel_lens;
    size_t num_channels;
    const char *fixed[MAX_CHANNELS_HARD];
    size_t fixed_lens[MAX_CHANNELS_HARD];
    char **user_channels;                /* "users": each user's #server-to-user- channel, owned */
    char except[32];                     /* socket id, "" for none */
    char author[USER_ID_MAX_LENGTH + 1]; /* user_id, "" for none */
    size_t author_len;
    api_info info;
    bool has_info;
} publish_item;

static void item_free(publish_item *it)
{
    if (it->data_owned)
        free(it->data);
    if (it->user_channels) {
        for (size_t i = 0; i < it->num_channels; i++)
            free(it->user_channels[i]);
        free(it->user_channels);
        free(it->channel_lens);
    }
}

/* "users": [ids] → their #server-to-user- channels. */
static bool parse_users(api_request *r, json_t *users, publish_item *it)
{
    const hk_app *app = r->app;
    if (!json_is_array(users) || json_array_size(users) == 0) {
        api_error(r, 400, "users: must be a non-empty array of user ids");
        return false;
    }
    size_t n = json_array_size(users);
    if (n > app->max_users_per_event) {
        api_error(r, 400, "users: at most %u users per event", app->max_users_per_event);
        return false;
    }
    it->user_channels = xcalloc(n, sizeof(char *));
    it->channel_lens = xcalloc(n, sizeof(size_t));
    it->channels = (const char **)it->user_channels;
    size_t prefix = sizeof(CHANNEL_USER_PREFIX) - 1;
    strmap seen; /* a user named twice gets the event once, as a channel does */
    strmap_init(&seen);
    bool ok = true;
    size_t i;
    json_t *v;
    json_array_foreach(users, i, v)
    {
        if (!json_is_string(v) || !user_id_valid(json_string_value(v), json_string_length(v))) {
            api_error(r, 400,
                      "users[%zu]: must be a user id (1-%d characters of [A-Za-z0-9_-=@,.;])", i,
                      USER_ID_MAX_LENGTH);
            ok = false;
            break;
        }
        size_t len = prefix + json_string_length(v);
        char *name = xmalloc(len + 1);
        memcpy(name, CHANNEL_USER_PREFIX, prefix);
        memcpy(name + prefix, json_string_value(v), json_string_length(v) + 1);
        if (strmap_get(&seen, name, len)) {
            free(name);
            continue;
        }
        strmap_put(&seen, name, len, name);
        it->user_channels[it->num_channels] = name;
        it->channel_lens[it->num_channels++] = len;
    }
    strmap_free(&seen);
    return ok;
}

/* Validates one event object; on failure answers and returns false. */
static bool parse_item(api_request *r, json_t *obj, publish_item *it, bool single_channel,
                       const char *where)
{
    const hk_app *app = r->app;
    memset(it, 0, sizeof(*it));
    it->channels = it->fixed;
    it->channel_lens = it->fixed_lens;
    json_t *name = json_object_get(obj, "name");
    if (!json_is_string(name)) {
        api_error(r, 400, "%sname: required string", where);
        return false;
    }
    it->name = json_string_value(name);
    it->name_len = json_string_length(name);
    if (!event_name_valid(it->name, it->name_len, app->max_event_name_length)) {
        api_error(r, 400, "%sname: must be 1-%zu bytes", where, app->max_event_name_length);
        return false;
    }
    if (event_name_reserved(it->name, it->name_len)) {
        api_error(r, 400, "%sname: pusher: and pusher_internal: events are reserved", where);
        return false;
    }
    json_t *data = json_object_get(obj, "data");
    if (json_is_string(data)) {
        it->data = (char *)json_string_value(data);
        it->data_len = json_string_length(data);
    } else if (data) {
        /* SDKs always send a string; publish anything else compactly */
        it->data = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!it->data)
            abort();
        it->data_len = strlen(it->data);
        it->data_owned = true;
    } else {
        api_error(r, 400, "%sdata: required", where);
        return false;
    }
    if (it->data_len > app->max_payload_bytes) {
        api_error(r, 413, "%sdata: %zu bytes is over the %zu-byte limit", where, it->data_len,
                  app->max_payload_bytes);
        return false;
    }

    json_t *channels = single_channel ? NULL : json_object_get(obj, "channels");
    json_t *channel = json_object_get(obj, "channel");
    json_t *users = single_channel ? NULL : json_object_get(obj, "users");
    if (users && (channels || channel)) {
        api_error(r, 400, "users: send either users or channels, not both");
        return false;
    }
    if (users) {
        if (!parse_users(r, users, it))
            return false;
    } else if (channels) {
        if (!json_is_array(channels) || json_array_size(channels) == 0) {
            api_error(r, 400, "%schannels: must be a non-empty array", where);
            return false;
        }
        size_t max = app->max_channels_per_event;
        if (max > MAX_CHANNELS_HARD)
            max = MAX_CHANNELS_HARD;
        if (json_array_size(channels) > max) {
            api_error(r, 400, "%schannels: at most %zu channels per event", where, max);
            return false;
        }
        size_t i;
        json_t *v;
        json_array_foreach(channels, i, v)
        {
            if (!json_is_string(v)) {
                api_error(r, 400, "%schannels[%zu]: must be a string", where, i);
                return false;
            }
            const char *s = json_string_value(v);
            size_t n = json_string_length(v);
            bool dup = false;
            for (size_t j = 0; j < it->num_channels && !dup; j++)
                dup = it->channel_lens[j] == n && memcmp(it->channels[j], s, n) == 0;
            if (!dup) {
                it->channels[it->num_channels] = s;
                it->channel_lens[it->num_channels++] = n;
            }
        }
    } else if (json_is_string(channel)) {
        it->channels[0] = json_string_value(channel);
        it->channel_lens[0] = json_string_length(channel);
        it->num_channels = 1;
    } else {
        api_error(r, 400, "%s%s: required", where, single_channel ? "channel" : "channels");
        return false;
    }
    for (size_t i = 0; i < it->num_channels && !users; i++) {
        const char *reason = NULL;
        if (!channel_name_valid(it->channels[i], it->channel_lens[i], app->max_channel_name_length,
                                &reason)) {
            api_error(r, 400, "%sinvalid channel name %.*s: %s", where,
                      (int)(it->channel_lens[i] > 200 ? 200 : it->channel_lens[i]), it->channels[i],
                      reason ? reason : "bad name");
            return false;
        }
    }
    json_t *socket_id = json_object_get(obj, "socket_id");
    if (socket_id && !json_is_null(socket_id)) {
        if (!json_is_string(socket_id) ||
            !socket_id_valid(json_string_value(socket_id), json_string_length(socket_id))) {
            api_error(r, 400, "%ssocket_id: must look like 1234.5678", where);
            return false;
        }
        snprintf(it->except, sizeof(it->except), "%s", json_string_value(socket_id));
    }
    json_t *user_id = json_object_get(obj, "user_id");
    if (user_id && !json_is_null(user_id)) {
        if (!json_is_string(user_id) ||
            !user_id_valid(json_string_value(user_id), json_string_length(user_id))) {
            api_error(r, 400,
                      "%suser_id: must be a user id (1-%d characters of [A-Za-z0-9_-=@,.;])", where,
                      USER_ID_MAX_LENGTH);
            return false;
        }
        it->author_len = json_string_length(user_id);
        memcpy(it->author, json_string_value(user_id), it->author_len);
    } else if (it->except[0]) {
        /* "broadcast to others" from a signed-in connection: its user wrote it */
        it->author_len = directory_socket_user(r->hub->hub->dir, r->hub->index, it->except,
                                               strlen(it->except), it->author, sizeof(it->author));
    }
    json_t *info = json_object_get(obj, "info");
    if (json_is_string(info)) {
        it->info = api_parse_info(json_string_value(info), json_string_length(info));
        it->has_info = true;
    }
    return true;
}

/* The events of a request that history keeps, and where each goes in the
 * answer. */
typedef struct kept_list {
    history_event *events;
    char **data; /* each event's data as a JSON string, owned */
    size_t n, cap;
} kept_list;

static void kept_free(kept_list *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->data[i]);
    free(k->data);
    free(k->events);
}

/* Publishes it's channels that history does not keep now; adds the others
 * to kept. slot (may be NULL) gets, per channel, the index in kept or -1. */
static void publish(api_request *r, const publish_item *it, kept_list *kept, long *slot)
{
    for (size_t i = 0; i < it->num_channels; i++) {
        const char *channel = it->channels[i];
        size_t cl = it->channel_lens[i];
        if (r->history && history_rule(r->app, channel, cl)) {
            if (kept->n == kept->cap) {
                kept->cap = kept->cap ? kept->cap * 2 : 8;
                kept->events = xrealloc(kept->events, kept->cap * sizeof(*kept->events));
                kept->data = xrealloc(kept->data, kept->cap * sizeof(*kept->data));
            }
            buf d;
            buf_init(&d);
            json_write_string(&d, it->data, it->data_len);
            kept->data[kept->n] = buf_steal(&d);
            kept->events[kept->n] = (history_event){
                .channel = channel,
                .channel_len = cl,
                .event = it->name,
                .event_len = it->name_len,
                .data_json = kept->data[kept->n],
                .data_len = strlen(kept->data[kept->n]),
                .except_socket_id = it->except[0] ? it->except : NULL,
                .user_id = it->author_len ? it->author : NULL,
                .user_id_len = it->author_len,
            };
            if (slot)
                slot[i] = (long)kept->n;
            kept->n++;
            continue;
        }
        if (slot)
            slot[i] = -1;
        buf b; /* encoded straight into the frame every subscriber shares */
        frame_buf_init(&b);
        buf_reserve(&b, it->data_len + cl + it->name_len + 64);
        pusher_encode_published(&b, it->name, it->name_len, channel, cl, it->data, it->data_len,
                                it->author_len ? it->author : NULL, it->author_len);
        frame *f = frame_buf_take(&b);
        hub_publish(r->hub, channel, cl, f, it->except[0] ? it->except : NULL);
        frame_unref(f);
    }
}

/* An answer waiting for the history thread. */
typedef struct waiting_reply {
    worker *w;
    uint64_t token;
    buf head;     /* the answer up to "ids": `{` or `{"channels":{…},` */
    bool batch;   /* "ids" is a list (one per batch item) rather than an object */
    char **names; /* events: the kept channels' names, as JSON strings */
    long *slot;   /* batch: per item, its index in the kept events or -1 */
    size_t n;     /* names or slots */
} waiting_reply;

static void waiting_free(waiting_reply *wr)
{
    buf_free(&wr->head);
    if (wr->names)
        for (size_t i = 0; i < wr->n; i++)
            free(wr->names[i]);
    free(wr->names);
    free(wr->slot);
    free(wr);
}

/* Completes wr's answer: "ids" (an object of the kept channels, or a list
 * with null where nothing is kept), each from ids (NULL: nothing kept). */
static void finish_answer(waiting_reply *wr, const char (*ids)[HISTORY_ID_MAX + 1])
{
    buf *out = &wr->head;
    buf_append_str(out, wr->batch ? "\"ids\":[" : "\"ids\":{");
    for (size_t i = 0; i < wr->n; i++) {
        if (i)
            buf_append_char(out, ',');
        if (!wr->batch) {
            buf_append_str(out, wr->names[i]);
            buf_append_char(out, ':');
        }
        long k = wr->batch ? wr->slot[i] : (long)i;
        if (k < 0 || !ids)
            buf_append_str(out, "null");
        else
            json_write_string(out, ids[k], strlen(ids[k]));
    }
    buf_append_str(out, wr->batch ? "]}" : "}}");
}

static void on_published(hub *h, void *ctx, const history_published *res)
{
    waiting_reply *wr = ctx;
    conn *c = h ? conn_deferred(wr->w, wr->token) : NULL;
    if (!c) {
        waiting_free(wr);
        return;
    }
    if (!res->stored) {
        http_respond_error(c, 503, res->error);
    } else {
        finish_answer(wr, res->ids);
        http_respond(c, 200, "application/json", wr->head.data, wr->head.len, NULL);
    }
    conn_reply_sent(c);
    waiting_free(wr);
}

/* Answers now when nothing is kept (head + empty ids), else hands the kept
 * events to history and answers when they are stored. Takes wr. */
static void answer(api_request *r, waiting_reply *wr, kept_list *kept)
{
    if (kept->n == 0) {
        finish_answer(wr, NULL);
        api_reply_json(r, &wr->head);
        waiting_free(wr);
        return;
    }
    if (!wr->batch) {
        wr->names = xcalloc(kept->n, sizeof(char *));
        wr->n = kept->n;
        for (size_t i = 0; i < kept->n; i++) {
            buf b;
            buf_init(&b);
            json_write_string(&b, kept->events[i].channel, kept->events[i].channel_len);
            wr->names[i] = buf_steal(&b);
        }
    }
    wr->w = conn_worker(r->c);
    wr->token = conn_defer_reply(r->c);
    history_publish(r->history, r->hub->hub, r->hub->index, kept->events, kept->n, on_published,
                    wr);
}

/* {"name":{counts},...} for the item's channels. */
static void write_channel_info(buf *out, api_request *r, const publish_item *it)
{
    bool first = true;
    for (size_t i = 0; i < it->num_channels; i++) {
        if (!first)
            buf_append_char(out, ',');
        first = false;
        json_write_string(out, it->channels[i], it->channel_lens[i]);
        buf_append_str(out, ":{");
        api_write_counts(out, r, it->channels[i], it->channel_lens[i], it->info);
        buf_append_char(out, '}');
    }
}

void api_events(api_request *r)
{
    json_t *root = api_parse_body(r);
    if (!root)
        return;
    publish_item *it = xmalloc(sizeof(*it));
    if (parse_item(r, root, it, false, "")) {
        kept_list kept = {0};
        publish(r, it, &kept, NULL);
        waiting_reply *wr = xcalloc(1, sizeof(*wr));
        buf_init(&wr->head);
        buf_append_char(&wr->head, '{');
        if (it->has_info) {
            buf_append_str(&wr->head, "\"channels\":{");
            write_channel_info(&wr->head, r, it);
            buf_append_str(&wr->head, "},");
        }
        answer(r, wr, &kept);
        kept_free(&kept);
    }
    item_free(it);
    free(it);
    json_decref(root);
}

void api_batch_events(api_request *r)
{
    json_t *root = api_parse_body(r);
    if (!root)
        return;
    json_t *batch = json_object_get(root, "batch");
    if (!json_is_array(batch)) {
        api_error(r, 400, "batch: required array");
        json_decref(root);
        return;
    }
    size_t n = json_array_size(batch);
    if (n > r->app->max_batch_events) {
        api_error(r, 400, "batch: at most %u events per batch", r->app->max_batch_events);
        json_decref(root);
        return;
    }
    publish_item *items = xcalloc(n ? n : 1, sizeof(*items));
    bool ok = true, any_info = false;
    size_t parsed = 0;
    for (size_t i = 0; i < n && ok; i++) {
        char where[32];
        snprintf(where, sizeof(where), "batch[%zu].", i);
        json_t *obj = json_array_get(batch, i);
        if (!json_is_object(obj)) {
            api_error(r, 400, "%s: must be an object", where);
            ok = false;
            break;
        }
        ok = parse_item(r, obj, &items[i], true, where);
        if (ok)
            parsed++;
        any_info = any_info || items[i].has_info;
    }
    if (ok) {
        kept_list kept = {0};
        waiting_reply *wr = xcalloc(1, sizeof(*wr));
        wr->batch = true;
        wr->n = n;
        wr->slot = xcalloc(n ? n : 1, sizeof(long));
        for (size_t i = 0; i < n; i++)
            publish(r, &items[i], &kept, &wr->slot[i]);
        buf_init(&wr->head);
        buf_append_char(&wr->head, '{');
        if (any_info) {
            buf_append_str(&wr->head, "\"batch\":[");
            for (size_t i = 0; i < n; i++) {
                if (i)
                    buf_append_char(&wr->head, ',');
                buf_append_char(&wr->head, '{');
                if (items[i].has_info)
                    api_write_counts(&wr->head, r, items[i].channels[0], items[i].channel_lens[0],
                                     items[i].info);
                buf_append_char(&wr->head, '}');
            }
            buf_append_str(&wr->head, "],");
        }
        answer(r, wr, &kept);
        kept_free(&kept);
    }
    for (size_t i = 0; i < n; i++)
        item_free(&items[i]);
    free(items);
    json_decref(root);
}

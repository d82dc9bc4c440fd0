/* POST /apps/{id}/events and /batch_events (spec §8.3, §8.4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "protocol/channel_name.h"
#include "protocol/pusher_msg.h"
#include "util/json_write.h"
#include "util/xalloc.h"

#define MAX_CHANNELS_HARD 100

/* One event to publish, validated. */
typedef struct publish_item {
    const char *name;
    size_t name_len;
    char *data; /* owned when data_owned */
    size_t data_len;
    bool data_owned;
    const char *channels[MAX_CHANNELS_HARD];
    size_t channel_lens[MAX_CHANNELS_HARD];
    size_t num_channels;
    char except[32]; /* socket id, "" for none */
    api_info info;
    bool has_info;
} publish_item;

static void item_free(publish_item *it)
{
    if (it->data_owned)
        free(it->data);
}

/* Validates one event object; on failure answers and returns false. */
static bool parse_item(api_request *r, json_t *obj, publish_item *it, bool single_channel,
                       const char *where)
{
    const hk_app *app = r->app;
    memset(it, 0, sizeof(*it));
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
    if (channels) {
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
    for (size_t i = 0; i < it->num_channels; i++) {
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
    json_t *info = json_object_get(obj, "info");
    if (json_is_string(info)) {
        it->info = api_parse_info(json_string_value(info), json_string_length(info));
        it->has_info = true;
    }
    return true;
}

static void publish(api_request *r, const publish_item *it)
{
    for (size_t i = 0; i < it->num_channels; i++) {
        const char *channel = it->channels[i];
        size_t cl = it->channel_lens[i];
        buf b; /* encoded straight into the frame every subscriber shares */
        frame_buf_init(&b);
        buf_reserve(&b, it->data_len + cl + it->name_len + 64);
        pusher_encode_string_data(&b, it->name, it->name_len, channel, cl, it->data, it->data_len);
        frame *f = frame_buf_take(&b);
        hub_publish(r->hub, channel, cl, f, it->except[0] ? it->except : NULL);
        frame_unref(f);
    }
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
        publish(r, it);
        buf out;
        buf_init(&out);
        if (it->has_info) {
            buf_append_str(&out, "{\"channels\":{");
            write_channel_info(&out, r, it);
            buf_append_str(&out, "}}");
        } else {
            buf_append_str(&out, "{}");
        }
        api_reply_json(r, &out);
        buf_free(&out);
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
        for (size_t i = 0; i < n; i++)
            publish(r, &items[i]);
        buf out;
        buf_init(&out);
        if (any_info) {
            buf_append_str(&out, "{\"batch\":[");
            for (size_t i = 0; i < n; i++) {
                if (i)
                    buf_append_char(&out, ',');
                buf_append_char(&out, '{');
                if (items[i].has_info)
                    api_write_counts(&out, r, items[i].channels[0], items[i].channel_lens[0],
                                     items[i].info);
                buf_append_char(&out, '}');
            }
            buf_append_str(&out, "]}");
        } else {
            buf_append_str(&out, "{}");
        }
        api_reply_json(r, &out);
        buf_free(&out);
    }
    for (size_t i = 0; i < n; i++)
        item_free(&items[i]);
    free(items);
    json_decref(root);
}

/* GET /apps/{id}/channels, /channels/{name}, /channels/{name}/users
 * (spec §8.5–8.7) and POST /users/{id}/terminate_connections. */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "net/http_query.h"
#include "protocol/channel_name.h"
#include "util/json_write.h"

static bool query_info(api_request *r, api_info *info)
{
    char value[256];
    long n = http_query_get(r->http->query, r->http->query_len, "info", value, sizeof(value));
    if (n == -2) {
        api_error(r, 400, "info: badly escaped or too long");
        return false;
    }
    *info = n >= 0 ? api_parse_info(value, (size_t)n) : (api_info){0};
    return true;
}

/* Decodes a channel name taken from the path. */
static long decode_name(api_request *r, const char *raw, size_t len, char *out, size_t cap)
{
    if (len >= cap) {
        api_error(r, 400, "Channel name too long");
        return -1;
    }
    long n = http_percent_decode(raw, len, out, false);
    if (n < 0) {
        api_error(r, 400, "Channel name is badly escaped");
        return -1;
    }
    const char *reason = NULL;
    if (!channel_name_valid(out, (size_t)n, r->app->max_channel_name_length, &reason)) {
        api_error(r, 400, "Invalid channel name: %s", reason ? reason : "bad name");
        return -1;
    }
    return n;
}

void api_channels(api_request *r)
{
    char prefix[256];
    long plen = http_query_get(r->http->query, r->http->query_len, "filter_by_prefix", prefix,
                               sizeof(prefix));
    if (plen == -2) {
        api_error(r, 400, "filter_by_prefix: badly escaped or too long");
        return;
    }
    if (plen < 0)
        plen = 0;
    api_info info;
    if (!query_info(r, &info))
        return;
    if (info.user_count && (plen < 9 || memcmp(prefix, "presence-", 9) != 0)) {
        api_error(r, 400, "info=user_count needs filter_by_prefix=presence-");
        return;
    }
    buf out;
    buf_init(&out);
    buf_append_str(&out, "{\"channels\":{");
    bool first = true;
    strmap *m = &r->hub->channels;
    for (size_t i = 0; i < m->cap; i++) {
        const hub_channel *ch = m->slots[i].value;
        if (!m->slots[i].key || ch->num_subs == 0 || ch->kind.type == CHANNEL_USER)
            continue;
        if ((size_t)plen > ch->name_len || memcmp(ch->name, prefix, (size_t)plen) != 0)
            continue;
        if (!first)
            buf_append_char(&out, ',');
        first = false;
        json_write_string(&out, ch->name, ch->name_len);
        buf_append_str(&out, ":{");
        api_write_counts(&out, ch, info, ch->kind.type == CHANNEL_PRESENCE);
        buf_append_char(&out, '}');
    }
    buf_append_str(&out, "}}");
    api_reply_json(r, &out);
    buf_free(&out);
}

void api_channel(api_request *r, const char *raw, size_t raw_len)
{
    char name[512];
    long n = decode_name(r, raw, raw_len, name, sizeof(name));
    if (n < 0)
        return;
    api_info info;
    if (!query_info(r, &info))
        return;
    channel_kind kind = channel_classify(name, (size_t)n);
    if (info.user_count && kind.type != CHANNEL_PRESENCE) {
        api_error(r, 400, "info=user_count is only available for presence channels");
        return;
    }
    hub_channel *ch = hub_channel_find(r->hub, name, (size_t)n);
    bool occupied = ch && ch->num_subs > 0;
    buf out;
    buf_init(&out);
    buf_printf(&out, "{\"occupied\":%s", occupied ? "true" : "false");
    buf mid;
    buf_init(&mid);
    if (api_write_counts(&mid, occupied ? ch : NULL, info, kind.type == CHANNEL_PRESENCE)) {
        buf_append_char(&out, ',');
        buf_append(&out, mid.data, mid.len);
    }
    buf_free(&mid);
    if (info.cache && kind.cache && ch && ch->cached && ch->cached_until_ms > hub_now_ms()) {
        /* the cached message as it is sent: skip the WebSocket header */
        const frame *f = ch->cached;
        size_t h = (f->data[1] & 0x7f) == 126 ? 4 : (f->data[1] & 0x7f) == 127 ? 10 : 2;
        buf_append_str(&out, ",\"cache\":");
        buf_append(&out, f->data + h, f->len - h);
        buf_printf(&out, ",\"cache_ttl\":%llu",
                   (unsigned long long)((ch->cached_until_ms - hub_now_ms()) / 1000));
    }
    buf_append_char(&out, '}');
    api_reply_json(r, &out);
    buf_free(&out);
}

void api_channel_users(api_request *r, const char *raw, size_t raw_len)
{
    char name[512];
    long n = decode_name(r, raw, raw_len, name, sizeof(name));
    if (n < 0)
        return;
    if (channel_classify(name, (size_t)n).type != CHANNEL_PRESENCE) {
        api_error(r, 400, "Users are only available for presence channels");
        return;
    }
    hub_channel *ch = hub_channel_find(r->hub, name, (size_t)n);
    buf out;
    buf_init(&out);
    buf_append_str(&out, "{\"users\":[");
    if (ch) {
        bool first = true;
        for (size_t i = 0; i < ch->members.cap; i++) {
            const hub_member *m = ch->members.slots[i].value;
            if (!ch->members.slots[i].key)
                continue;
            buf_append_str(&out, first ? "{\"id\":" : ",{\"id\":");
            first = false;
            json_write_string(&out, m->id, m->id_len);
            buf_append_char(&out, '}');
        }
    }
    buf_append_str(&out, "]}");
    api_reply_json(r, &out);
    buf_free(&out);
}

void api_terminate_user(api_request *r, const char *raw, size_t raw_len)
{
    char id[512];
    if (raw_len >= sizeof(id)) {
        api_error(r, 400, "User id too long");
        return;
    }
    long n = http_percent_decode(raw, raw_len, id, false);
    if (n < 0 || !user_id_valid(id, (size_t)n)) {
        api_error(r, 400, "Invalid user id");
        return;
    }
    hub_terminate_user(r->hub, id, (size_t)n);
    buf out;
    buf_init(&out);
    buf_append_str(&out, "{}");
    api_reply_json(r, &out);
    buf_free(&out);
}

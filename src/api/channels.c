/* GET /apps/{id}/channels, /channels/{name}, /channels/{name}/users
 * (spec §8.5–8.7). */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "util/http_query.h"
#include "util/xalloc.h"
#include "protocol/channel_name.h"

/* A name at the limit, percent-encoded as SDKs do (encodeURIComponent: up
 * to 3 bytes a character), fits a request head with room for the rest of
 * the request line and the headers. */
_Static_assert(3 * HK_MAX_NAME_LENGTH + 2048 <= HTTP_MAX_HEAD_BYTES,
               "GET /channels/{name} must be able to carry a name of HK_MAX_NAME_LENGTH");

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

/* Decodes a channel name taken from the path into *out (malloc'ed, the
 * caller frees it; NULL after an answered error). Decoding never grows a
 * string, so raw_len + 1 bytes hold any name whatever its escaping. */
long api_decode_channel(api_request *r, const char *raw, size_t len, char **out)
{
    *out = NULL;
    if (len > 3 * r->app->max_channel_name_length) {
        api_error(r, 400, "Invalid channel name: channel name is too long");
        return -1;
    }
    char *name = xmalloc(len + 1);
    long n = http_percent_decode(raw, len, name, false);
    if (n < 0) {
        free(name);
        api_error(r, 400, "Channel name is badly escaped");
        return -1;
    }
    const char *reason = NULL;
    if (!channel_name_valid(name, (size_t)n, r->app->max_channel_name_length, &reason)) {
        free(name);
        api_error(r, 400, "Invalid channel name: %s", reason ? reason : "bad name");
        return -1;
    }
    *out = name;
    return n;
}

void api_channels(api_request *r)
{
    /* A prefix is a channel name or part of one, of any length up to the
     * app's limit: decoded into the query's own size (never smaller). */
    size_t cap = r->http->query_len + 1;
    char *prefix = xmalloc(cap);
    long plen = http_query_get(r->http->query, r->http->query_len, "filter_by_prefix", prefix, cap);
    if (plen == -2) {
        free(prefix);
        api_error(r, 400, "filter_by_prefix: badly escaped");
        return;
    }
    if (plen < 0)
        plen = 0;
    api_info info;
    if (!query_info(r, &info)) {
        free(prefix);
        return;
    }
    if (info.user_count && (plen < 9 || memcmp(prefix, "presence-", 9) != 0)) {
        free(prefix);
        api_error(r, 400, "info=user_count needs filter_by_prefix=presence-");
        return;
    }
    buf out;
    buf_init(&out);
    buf_append_str(&out, "{\"channels\":{");
    directory_list_channels(r->hub->hub->dir, r->hub->index, prefix, (size_t)plen, info.user_count,
                            info.subscription_count, &out);
    buf_append_str(&out, "}}");
    free(prefix);
    api_reply_json(r, &out);
    buf_free(&out);
}

void api_channel(api_request *r, const char *raw, size_t raw_len)
{
    char *name;
    long n = api_decode_channel(r, raw, raw_len, &name);
    if (n < 0)
        return;
    api_info info;
    if (!query_info(r, &info)) {
        free(name);
        return;
    }
    channel_kind kind = channel_classify(name, (size_t)n);
    if (info.user_count && kind.type != CHANNEL_PRESENCE) {
        free(name);
        api_error(r, 400, "info=user_count is only available for presence channels");
        return;
    }
    dir_channel_info ci = directory_channel_info(r->hub->hub->dir, r->hub->index, name, (size_t)n);
    free(name);
    buf out;
    buf_init(&out);
    buf_printf(&out, "{\"occupied\":%s", ci.occupied ? "true" : "false");
    if (info.user_count)
        buf_printf(&out, ",\"user_count\":%u", ci.user_count);
    if (info.subscription_count)
        buf_printf(&out, ",\"subscription_count\":%u", ci.subscription_count);
    if (info.cache && kind.cache && ci.cached) {
        /* the cached message as it is sent (a message frame holds the
         * message alone: the transport adds its header on the way out) */
        const frame *f = ci.cached;
        buf_append_str(&out, ",\"cache\":");
        buf_append(&out, f->data, f->len);
        buf_printf(&out, ",\"cache_ttl\":%llu", (unsigned long long)(ci.cache_ms_left / 1000));
    }
    if (ci.cached)
        frame_unref(ci.cached);
    buf_append_char(&out, '}');
    api_reply_json(r, &out);
    buf_free(&out);
}

void api_channel_users(api_request *r, const char *raw, size_t raw_len)
{
    char *name;
    long n = api_decode_channel(r, raw, raw_len, &name);
    if (n < 0)
        return;
    if (channel_classify(name, (size_t)n).type != CHANNEL_PRESENCE) {
        free(name);
        api_error(r, 400, "Users are only available for presence channels");
        return;
    }
    buf out;
    buf_init(&out);
    buf_append_str(&out, "{\"users\":[");
    directory_list_users(r->hub->hub->dir, r->hub->index, name, (size_t)n, &out);
    free(name);
    buf_append_str(&out, "]}");
    api_reply_json(r, &out);
    buf_free(&out);
}

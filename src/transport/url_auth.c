#include "transport/url_auth.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/channel_name.h"
#include "util/http_query.h"
#include "util/xalloc.h"

bool url_app_path(const hk_config *cfg, const http_request *req, const char *tail, const char **key,
                  size_t *key_len)
{
    size_t plen = strlen(cfg->path_prefix), tlen = strlen(tail);
    const char *p = req->path;
    size_t n = req->path_len;
    if (req->upgrade_websocket || n < plen + 5 + 1 + tlen ||
        memcmp(p, cfg->path_prefix, plen) != 0 || memcmp(p + plen, "/app/", 5) != 0 ||
        memcmp(p + n - tlen, tail, tlen) != 0)
        return false;
    *key = p + plen + 5;
    *key_len = n - plen - 5 - tlen;
    return !memchr(*key, '/', *key_len);
}

char *url_param(const http_request *req, const char *key)
{
    size_t cap = req->query_len + 1;
    char *out = xmalloc(cap);
    if (http_query_get(req->query, req->query_len, key, out, cap) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

bool url_param_for(const http_request *req, const char *key, const char *channel,
                   size_t channel_len, char *out, size_t cap)
{
    http_query_iter it;
    http_query_iter_init(&it, req->query, req->query_len);
    const char *k, *v;
    size_t kl, vl;
    size_t want = strlen(key);
    while (http_query_next(&it, &k, &kl, &v, &vl)) {
        if (kl != want || memcmp(k, key, kl) != 0 || vl >= cap)
            continue;
        long n = http_percent_decode(v, vl, out, true);
        if (n > (long)channel_len && memcmp(out, channel, channel_len) == 0 &&
            out[channel_len] == ':') {
            memmove(out, out + channel_len + 1, (size_t)n - channel_len);
            return true;
        }
    }
    return false;
}

time_t url_token_expiry(const char *token)
{
    if (!token || !socket_id_valid(token, strlen(token)))
        return 0;
    time_t at = (time_t)strtoll(token, NULL, 10);
    time_t now = time(NULL);
    return at > now && at <= now + URL_TOKEN_MAX_AHEAD_S ? at : 0;
}

const char *url_channels_parse(const char *list, const hk_app *app, size_t max, url_channels *out)
{
    memset(out, 0, sizeof(*out));
    if (max > URL_CHANNELS_MAX)
        max = URL_CHANNELS_MAX;
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *reason = NULL;
        if (out->count == max)
            return "channels: too many channels";
        if (!channel_name_valid(p, n, app->max_channel_name_length, &reason))
            return "channels: a comma-separated list of valid channel names";
        out->names[out->count] = p;
        out->lens[out->count++] = n;
        out->needs_token = out->needs_token || channel_kind_needs_auth(channel_classify(p, n));
        p = comma ? comma + 1 : NULL;
    }
    return out->count ? NULL : "channels: name at least one channel";
}

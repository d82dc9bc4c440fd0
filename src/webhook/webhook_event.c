/* webhook_event — payload bytes, target filters, retry policy: the parts of
 * delivery that are plain functions. */
#include "webhook/webhook_internal.h"

#include "util/json_write.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

_Static_assert(HK_WEBHOOK_CHANNEL_OCCUPIED == 1u << WEBHOOK_CHANNEL_OCCUPIED &&
                   HK_WEBHOOK_CHANNEL_VACATED == 1u << WEBHOOK_CHANNEL_VACATED &&
                   HK_WEBHOOK_MEMBER_ADDED == 1u << WEBHOOK_MEMBER_ADDED &&
                   HK_WEBHOOK_MEMBER_REMOVED == 1u << WEBHOOK_MEMBER_REMOVED &&
                   HK_WEBHOOK_CLIENT_EVENT == 1u << WEBHOOK_CLIENT_EVENT &&
                   HK_WEBHOOK_CACHE_MISS == 1u << WEBHOOK_CACHE_MISS &&
                   HK_WEBHOOK_SUBSCRIPTION_COUNT == 1u << WEBHOOK_SUBSCRIPTION_COUNT,
               "config's event bits follow enum webhook_kind");

static void key_str(buf *out, const char *key, const char *val)
{
    buf_append_str(out, ",\"");
    buf_append_str(out, key);
    buf_append_str(out, "\":");
    json_write_cstr(out, val);
}

/* A client's data that is a JSON string is sent as that string; a string
 * that does not parse is treated as text like any other value. */
static bool is_json_string(const char *s, size_t len)
{
    if (len < 2 || s[0] != '"' || s[len - 1] != '"')
        return false;
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY, NULL);
    bool ok = v && json_is_string(v);
    json_decref(v);
    return ok;
}

bool wh_event_encode(buf *out, const webhook_event *ev)
{
    if ((unsigned)ev->kind >= HK_WEBHOOK_NUM_EVENTS || !ev->channel)
        return false;
    buf_append_str(out, "{\"name\":\"");
    buf_append_str(out, hk_webhook_event_names[ev->kind]);
    buf_append_str(out, "\",\"channel\":");
    json_write_cstr(out, ev->channel);
    switch (ev->kind) {
    case WEBHOOK_MEMBER_ADDED:
    case WEBHOOK_MEMBER_REMOVED:
        key_str(out, "user_id", ev->user_id ? ev->user_id : "");
        break;
    case WEBHOOK_CLIENT_EVENT:
        key_str(out, "event", ev->event ? ev->event : "");
        if (ev->data) {
            buf_append_str(out, ",\"data\":");
            if (is_json_string(ev->data, ev->data_len))
                buf_append(out, ev->data, ev->data_len);
            else
                json_write_string(out, ev->data, ev->data_len);
        }
        if (ev->socket_id)
            key_str(out, "socket_id", ev->socket_id);
        if (ev->user_id)
            key_str(out, "user_id", ev->user_id);
        break;
    case WEBHOOK_SUBSCRIPTION_COUNT:
        buf_append_str(out, ",\"subscription_count\":");
        buf_append_i64(out, ev->subscription_count);
        break;
    default:
        break;
    }
    buf_append_char(out, '}');
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool wh_hook_matches(const hk_webhook *hook, enum webhook_kind kind, const char *channel)
{
    if (!(hook->event_types & (1u << kind)))
        return false;
    if (hook->channel_prefix &&
        strncmp(channel, hook->channel_prefix, strlen(hook->channel_prefix)) != 0)
        return false;
    return !hook->channel_suffix || ends_with(channel, hook->channel_suffix);
}

void wh_body(buf *out, int64_t time_ms, const char *const *events, const size_t *lens, size_t n)
{
    buf_append_str(out, "{\"time_ms\":");
    buf_append_i64(out, time_ms);
    buf_append_str(out, ",\"events\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append_char(out, ',');
        buf_append(out, events[i], lens[i]);
    }
    buf_append_str(out, "]}");
}

uint64_t wh_backoff_ms(uint32_t base_ms, uint32_t max_ms, unsigned retry, uint32_t rnd)
{
    uint64_t d = base_ms ? base_ms : 1;
    for (unsigned i = 1; i < retry && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    uint64_t half = d / 2;
    return (d - half) + (half ? rnd % (half + 1) : 0);
}

enum wh_outcome wh_classify(int curl_code, long status)
{
    if (curl_code != CURLE_OK) {
        /* These will fail the same way every time; the rest are the network. */
        if (curl_code == CURLE_URL_MALFORMAT || curl_code == CURLE_UNSUPPORTED_PROTOCOL)
            return WH_FAIL;
        return WH_RETRY;
    }
    if (status >= 200 && status < 300)
        return WH_OK;
    /* 408 and 429 ask for a later attempt; other 4xx are the receiver
     * refusing this payload, which a retry will not change. */
    if (status >= 500 || status == 408 || status == 429)
        return WH_RETRY;
    return WH_FAIL;
}

int64_t wh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wh_mkdirs(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        abort();
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    free(p);
    return rc;
}

/* config_webhook — apps[].webhooks, in soketi's shape so a soketi app
 * config carries over: [{"url", "event_types": [...], "filter":
 * {"channel_name_starts_with", "channel_name_ends_with"}, "headers": {}}].
 * Unknown keys are refused like everywhere else in the file. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const hk_webhook_event_names[HK_WEBHOOK_NUM_EVENTS] = {
    "channel_occupied", "channel_vacated", "member_added",       "member_removed",
    "client_event",     "cache_miss",      "subscription_count",
};

#define EVENT_LIST                                                                                 \
    "channel_occupied, channel_vacated, member_added, member_removed, client_event, "              \
    "cache_miss, subscription_count"

/* Headers hark sets itself: a user value would break the signature check or
 * the framing of the request. */
static const char *const reserved_headers[] = {
    "content-type",       "content-length", "transfer-encoding", "host", "x-pusher-key",
    "x-pusher-signature", "expect",
};

static bool url_ok(const char *s)
{
    size_t skip;
    if (strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (s[skip] == '\0' || s[skip] == '/' || s[skip] == '?' || s[skip] == '#')
        return false; /* no host */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* RFC 9110 token characters. */
static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!strchr("!#$%&'*+-.^_`|~", *p) && !(*p >= '0' && *p <= '9') &&
            !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z'))
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < ' ' && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

static int load_event_types(hk_webhook *wh, const json_t *v, const char *file, const char *where,
                            char *err, size_t cap)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return config_errf(err, cap, "%s: %sevent_types: must be a non-empty array of " EVENT_LIST,
                           file, where);
    size_t i;
    const json_t *name;
    wh->event_types = 0;
    json_array_foreach(v, i, name)
    {
        int bit = -1;
        for (int k = 0; json_is_string(name) && k < HK_WEBHOOK_NUM_EVENTS; k++)
            if (strcmp(json_string_value(name), hk_webhook_event_names[k]) == 0)
                bit = k;
        if (bit < 0)
            return config_errf(err, cap, "%s: %sevent_types[%zu]: must be one of " EVENT_LIST, file,
                               where, i);
        wh->event_types |= 1u << bit;
    }
    return CONFIG_OK;
}

static int load_filter(hk_webhook *wh, const json_t *v, const char *file, const char *where,
                       char *err, size_t cap)
{
    if (!json_is_object(v))
        return config_errf(err, cap, "%s: %sfilter: must be an object", file, where);
    const char *name;
    const json_t *s;
    json_object_foreach((json_t *)v, name, s)
    {
        char **slot = strcmp(name, "channel_name_starts_with") == 0 ? &wh->channel_prefix
                      : strcmp(name, "channel_name_ends_with") == 0 ? &wh->channel_suffix
                                                                    : NULL;
        if (!slot)
            return config_errf(err, cap, "%s: %sfilter.%s: unknown key", file, where, name);
        if (!json_is_string(s))
            return config_errf(err, cap, "%s: %sfilter.%s: must be a string", file, where, name);
        free(*slot);
        /* "" matches every channel: the same as no filter. */
        *slot = *json_string_value(s) ? config_strdup(json_string_value(s)) : NULL;
    }
    return CONFIG_OK;
}

static int load_headers(hk_webhook *wh, const json_t *v, const char *file, const char *where,
                        char *err, size_t cap)
{
    if (!json_is_object(v))
        return config_errf(err, cap, "%s: %sheaders: must be an object of strings", file, where);
    wh->headers = calloc(json_object_size(v) + 1, sizeof *wh->headers);
    if (!wh->headers)
        abort();
    const char *name;
    const json_t *s;
    json_object_foreach((json_t *)v, name, s)
    {
        if (!header_name_ok(name))
            return config_errf(err, cap, "%s: %sheaders.%s: not a valid header name", file, where,
                               name);
        for (size_t k = 0; k < sizeof reserved_headers / sizeof reserved_headers[0]; k++)
            if (strcasecmp(name, reserved_headers[k]) == 0)
                return config_errf(err, cap, "%s: %sheaders.%s: is set by hark", file, where, name);
        if (!json_is_string(s) || !header_value_ok(json_string_value(s)))
            return config_errf(err, cap,
                               "%s: %sheaders.%s: must be a string without control characters",
                               file, where, name);
        size_t n = strlen(name) + 2 + strlen(json_string_value(s)) + 1;
        char *line = malloc(n);
        if (!line)
            abort();
        snprintf(line, n, "%s: %s", name, json_string_value(s));
        wh->headers[wh->num_headers++] = line;
    }
    return CONFIG_OK;
}

static int load_one(hk_webhook *wh, const json_t *obj, const char *file, const char *where,
                    char *err, size_t cap)
{
    if (!json_is_object(obj))
        return config_errf(err, cap, "%s: %.*s: must be an object", file, (int)strlen(where) - 1,
                           where);
    const char *name;
    const json_t *v;
    int rc = CONFIG_OK;
    json_object_foreach((json_t *)obj, name, v)
    {
        if (strcmp(name, "url") == 0) {
            if (!json_is_string(v) || !url_ok(json_string_value(v)))
                return config_errf(err, cap, "%s: %surl: must be an http:// or https:// URL", file,
                                   where);
            free(wh->url);
            wh->url = config_strdup(json_string_value(v));
        } else if (strcmp(name, "event_types") == 0) {
            rc = load_event_types(wh, v, file, where, err, cap);
        } else if (strcmp(name, "filter") == 0) {
            rc = load_filter(wh, v, file, where, err, cap);
        } else if (strcmp(name, "headers") == 0) {
            rc = load_headers(wh, v, file, where, err, cap);
        } else {
            return config_errf(err, cap, "%s: %s%s: unknown key", file, where, name);
        }
        if (rc != CONFIG_OK)
            return rc;
    }
    if (!wh->url)
        return config_errf(err, cap, "%s: %surl: must be an http:// or https:// URL", file, where);
    return CONFIG_OK;
}

int config_webhooks_load(hk_app *app, const json_t *list, const char *file, const char *where,
                         char *err, size_t cap)
{
    if (!json_is_array(list))
        return config_errf(err, cap, "%s: %swebhooks: must be an array of webhook objects", file,
                           where);
    config_webhooks_free(app);
    size_t n = json_array_size(list);
    if (n == 0)
        return CONFIG_OK;
    app->webhooks = calloc(n, sizeof *app->webhooks);
    if (!app->webhooks)
        abort();
    for (size_t i = 0; i < n; i++) {
        char at[96];
        snprintf(at, sizeof at, "%swebhooks[%zu].", where, i);
        hk_webhook *wh = &app->webhooks[app->num_webhooks++]; /* freed with app on error */
        wh->event_types = HK_WEBHOOK_ALL;
        int rc = load_one(wh, json_array_get(list, i), file, at, err, cap);
        if (rc != CONFIG_OK)
            return rc;
    }
    return CONFIG_OK;
}

void config_webhooks_free(hk_app *app)
{
    for (size_t i = 0; i < app->num_webhooks; i++) {
        hk_webhook *wh = &app->webhooks[i];
        free(wh->url);
        free(wh->channel_prefix);
        free(wh->channel_suffix);
        for (size_t k = 0; k < wh->num_headers; k++)
            free(wh->headers[k]);
        free(wh->headers);
    }
    free(app->webhooks);
    app->webhooks = NULL;
    app->num_webhooks = 0;
}

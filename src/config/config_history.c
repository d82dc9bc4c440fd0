/* config_history — apps[].history: false, or a list of rules, first match
 * wins: [{"channels": "private-conversation-*", "max_events": 5000,
 * "max_age_s": 604800, "client_events": false}, …]. Without the key an app
 * keeps every channel but the cache- variants (1,000 events, 24 hours). */
#include "config/config_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS_LIMIT 10000000u
#define MAX_AGE_LIMIT 315360000u /* ten years */

/* A pattern some channel name can match: the characters of channel names
 * (spec §4.2), '*' for any run of them, and '#' only first
 * (#server-to-user-*). Any other character is a typo that would turn
 * history off for the channels meant, without a word. */
static bool pattern_valid(const char *p, size_t len)
{
    static const char extra[] = "_-=@,.;*";
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && memchr(extra, c, sizeof extra - 1)) || (c == '#' && i == 0);
        if (!ok)
            return false;
    }
    return true;
}

static int load_rule(hk_history_rule *r, const json_t *obj, const char *file, const char *where,
                     char *err, size_t cap)
{
    if (!json_is_object(obj))
        return config_errf(err, cap,
                           "%s: %s: must be an object with channels, max_events, max_age_s", file,
                           where);
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)obj, name, v)
    {
        if (strcmp(name, "channels") == 0) {
            if (!json_is_string(v) || json_string_length(v) > HK_MAX_NAME_LENGTH ||
                !pattern_valid(json_string_value(v), json_string_length(v)))
                return config_errf(err, cap,
                                   "%s: %s.channels: must be a channel name pattern: characters of "
                                   "channel names (A-Z a-z 0-9 _ - = @ , . ;), '*' for any run of "
                                   "them, '#' only first",
                                   file, where);
            free(r->channels);
            r->channels = config_strdup(json_string_value(v));
        } else if (strcmp(name, "max_events") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > MAX_EVENTS_LIMIT)
                return config_errf(err, cap, "%s: %s.max_events: must be an integer 1-%u", file,
                                   where, MAX_EVENTS_LIMIT);
            r->max_events = (uint32_t)json_integer_value(v);
        } else if (strcmp(name, "max_age_s") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > MAX_AGE_LIMIT)
                return config_errf(err, cap, "%s: %s.max_age_s: must be an integer 1-%u", file,
                                   where, MAX_AGE_LIMIT);
            r->max_age_s = (uint32_t)json_integer_value(v);
        } else if (strcmp(name, "client_events") == 0) {
            if (!json_is_boolean(v))
                return config_errf(err, cap, "%s: %s.client_events: must be true or false", file,
                                   where);
            r->client_events = json_is_true(v);
        } else {
            return config_errf(err, cap, "%s: %s.%s: unknown key", file, where, name);
        }
    }
    if (!r->channels)
        return config_errf(err, cap, "%s: %s.channels: is required (a channel name pattern)", file,
                           where);
    return CONFIG_OK;
}

int config_history_load(hk_app *app, const json_t *v, const char *file, const char *where,
                        char *err, size_t cap)
{
    config_history_free(app);
    if (json_is_false(v)) {
        app->history_mode = HK_HISTORY_OFF;
        return CONFIG_OK;
    }
    if (!json_is_array(v))
        return config_errf(err, cap, "%s: %shistory: must be false or an array of rules", file,
                           where);
    app->history_mode = HK_HISTORY_RULES;
    size_t n = json_array_size(v);
    if (n == 0)
        return CONFIG_OK; /* no rule matches: nothing is kept */
    app->history_rules = calloc(n, sizeof *app->history_rules);
    if (!app->history_rules)
        abort();
    for (size_t i = 0; i < n; i++) {
        char at[96];
        snprintf(at, sizeof at, "%shistory[%zu]", where, i);
        hk_history_rule *r = &app->history_rules[app->num_history_rules++]; /* freed with app */
        r->max_events = HK_HISTORY_DEFAULT_EVENTS;
        r->max_age_s = HK_HISTORY_DEFAULT_AGE_S;
        int rc = load_rule(r, json_array_get(v, i), file, at, err, cap);
        if (rc != CONFIG_OK)
            return rc;
    }
    return CONFIG_OK;
}

void config_history_free(hk_app *app)
{
    for (size_t i = 0; i < app->num_history_rules; i++)
        free(app->history_rules[i].channels);
    free(app->history_rules);
    app->history_rules = NULL;
    app->num_history_rules = 0;
    app->history_mode = HK_HISTORY_DEFAULT;
}

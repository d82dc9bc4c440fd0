/* history_id — the ids of kept events, and the rules that say which
 * channels are kept. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "history/history_internal.h"
#include "protocol/channel_name.h"

static const hk_history_rule default_rule = {
    .channels = "*",
    .max_events = HK_HISTORY_DEFAULT_EVENTS,
    .max_age_s = HK_HISTORY_DEFAULT_AGE_S,
    .client_events = false,
};

/* '*' matches any run of characters (backtracking on the last star only,
 * which is enough for a glob without other metacharacters). */
static bool glob_match(const char *pat, const char *s, size_t len)
{
    const char *star = NULL;
    size_t i = 0, resume = 0;
    while (i < len) {
        if (*pat == '*') {
            star = pat++;
            resume = i;
        } else if (*pat && *pat == s[i]) {
            pat++;
            i++;
        } else if (star) {
            pat = star + 1;
            i = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

const hk_history_rule *history_rule(const hk_app *app, const char *name, size_t len)
{
    switch (app->history_mode) {
    case HK_HISTORY_OFF:
        return NULL;
    case HK_HISTORY_RULES:
        for (size_t i = 0; i < app->num_history_rules; i++)
            if (glob_match(app->history_rules[i].channels, name, len))
                return &app->history_rules[i];
        return NULL;
    default:
        return channel_classify(name, len).cache ? NULL : &default_rule;
    }
}

uint32_t history_tag(const char *app_id, const char *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (const char *p = app_id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u; /* separator: no app id ends where a name begins */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    return h;
}

size_t history_id_format(char out[HISTORY_ID_MAX + 1], const char *epoch, uint32_t tag,
                         uint64_t seq)
{
    int n = snprintf(out, HISTORY_ID_MAX + 1, "%s.%08" PRIx32 ".%010" PRIu64, epoch, tag, seq);
    return (size_t)n;
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

const char *history_id_parse(const char *s, size_t len, history_id *out)
{
    static const char *const bad = "not an event id of this server";
    if (len < STORE_EPOCH_LEN + 1 + 8 + 1 + 1 || len > HISTORY_ID_MAX)
        return bad;
    for (size_t i = 0; i < STORE_EPOCH_LEN; i++)
        if (!is_alnum(s[i]))
            return bad;
    memcpy(out->epoch, s, STORE_EPOCH_LEN);
    out->epoch[STORE_EPOCH_LEN] = '\0';
    const char *p = s + STORE_EPOCH_LEN;
    if (*p++ != '.')
        return bad;
    uint32_t tag = 0;
    for (int i = 0; i < 8; i++, p++) {
        char c = *p;
        uint32_t d = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
                     : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                                            : 16;
        if (d == 16)
            return bad;
        tag = tag << 4 | d;
    }
    if (*p++ != '.')
        return bad;
    const char *end = s + len;
    /* the form issued: 10 digits zero-padded, more without a leading zero */
    if (end - p < 10 || end - p > 19 || (end - p > 10 && *p == '0'))
        return bad;
    uint64_t seq = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return bad;
        seq = seq * 10 + (uint64_t)(*p - '0');
    }
    /* seq 0 is the place before a history's first event: a poll or an event
     * stream that has seen none yet stands there */
    out->tag = tag;
    out->seq = seq;
    return NULL;
}

const char *history_id_check(const char *s, size_t len, const char *app_id, const char *name,
                             size_t name_len, history_id *out)
{
    const char *why = history_id_parse(s, len, out);
    if (why)
        return why;
    if (out->tag != history_tag(app_id, name, name_len))
        return "the id is an event id of another channel";
    return NULL;
}

bool history_id_belongs(const char *id, size_t id_len, const char *app_id, const char *name,
                        size_t len)
{
    history_id parsed;
    return history_id_check(id, id_len, app_id, name, len, &parsed) == NULL;
}

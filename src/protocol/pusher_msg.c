#include "protocol/pusher_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"
#include "util/json_write.h"
#include "util/xalloc.h"

/* The reason is shown to the client: jansson's text quotes a bit of the
 * input ("... near 'xyz'"), so it is cut to err_cap at a character
 * boundary and kept valid UTF-8. */
static void set_err(char *err, size_t err_cap, const char *fmt, const char *detail)
{
    if (!err || !err_cap)
        return;
    char text[JSON_ERROR_TEXT_LENGTH + 64];
    int n = snprintf(text, sizeof text, fmt, detail);
    size_t len = n < 0 ? 0 : (size_t)n;
    utf8_sanitize(err, err_cap, text, len < sizeof text ? len : sizeof text - 1);
}

int pusher_msg_decode(const char *text, size_t len, pusher_msg *out, char *err, size_t err_cap)
{
    json_error_t jerr;
    memset(out, 0, sizeof *out);
    if (err && err_cap)
        err[0] = '\0';

    /* Flags 0: duplicate keys are allowed (the last one wins, as in
     * JSON.parse), NUL inside strings is refused, and jansson bounds the
     * nesting depth itself. */
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root) {
        set_err(err, err_cap, "Invalid JSON: %s", jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        set_err(err, err_cap, "%s", "Invalid message: not a JSON object");
        json_decref(root);
        return -1;
    }
    json_t *event = json_object_get(root, "event");
    if (!json_is_string(event)) {
        set_err(err, err_cap, "%s",
                event ? "Invalid message: \"event\" must be a string"
                      : "Invalid message: missing \"event\"");
        json_decref(root);
        return -1;
    }
    json_t *channel = json_object_get(root, "channel");
    if (channel && !json_is_string(channel)) {
        set_err(err, err_cap, "%s", "Invalid message: \"channel\" must be a string");
        json_decref(root);
        return -1;
    }

    json_t *data = json_object_get(root, "data");
    const char *ev = json_string_value(event);
    size_t ev_len = json_string_length(event);
    /* Spec §0 leniency: some clients send pusher:* data double-encoded. Only
     * an object replaces the string; anything else stays as sent. */
    if (json_is_string(data) && ev_len >= 7 && memcmp(ev, "pusher:", 7) == 0) {
        json_t *inner = json_loadb(json_string_value(data), json_string_length(data), 0, &jerr);
        if (json_is_object(inner)) {
            /* root takes the reference; the old string is released. */
            json_object_set_new(root, "data", inner);
            data = inner;
        } else {
            json_decref(inner);
        }
    }

    out->root = root;
    out->event = ev;
    out->event_len = ev_len;
    out->channel = channel ? json_string_value(channel) : NULL;
    out->channel_len = channel ? json_string_length(channel) : 0;
    out->data = data;
    return 0;
}

void pusher_msg_free(pusher_msg *m)
{
    if (!m)
        return;
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

const char *pusher_msg_data_string(const pusher_msg *m, const char *key, size_t *len)
{
    json_t *v = json_is_object(m->data) ? json_object_get(m->data, key) : NULL;
    if (!json_is_string(v)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = json_string_length(v);
    return json_string_value(v);
}

/* --- encoding ----------------------------------------------------------- */

static void begin(buf *out, const char *event, size_t event_len)
{
    buf_append_str(out, "{\"event\":");
    json_write_string(out, event, event_len);
}

static void add_key_str(buf *out, const char *key, const char *value, size_t len)
{
    buf_append_char(out, ',');
    buf_append_str(out, key);
    json_write_string(out, value, len);
}

/* A JSON string of text that may quote client input: ill-formed UTF-8 is
 * replaced by U+FFFD (utf8_sanitize), so the frame is always a valid text
 * frame; json_write_string escapes the rest. */
static void write_text(buf *out, const char *text, size_t len)
{
    if (utf8_valid((const uint8_t *)text, len)) {
        json_write_string(out, text, len);
        return;
    }
    size_t cap = 3 * len + 1;
    char *clean = xmalloc(cap);
    size_t n = utf8_sanitize(clean, cap, text, len);
    json_write_string(out, clean, n);
    free(clean);
}

static void add_key_text(buf *out, const char *key, const char *value, size_t len)
{
    buf_append_char(out, ',');
    buf_append_str(out, key);
    write_text(out, value, len);
}

void pusher_encode_string_data(buf *out, const char *event, size_t event_len, const char *channel,
                               size_t channel_len, const char *data_str, size_t data_len)
{
    begin(out, event, event_len);
    buf_append_str(out, ",\"data\":");
    json_write_string(out, data_str, data_len);
    if (channel)
        add_key_str(out, "\"channel\":", channel, channel_len);
    buf_append_char(out, '}');
}

void pusher_encode_published(buf *out, const char *event, size_t event_len, const char *channel,
                             size_t channel_len, const char *data_str, size_t data_len,
                             const char *user_id, size_t user_id_len)
{
    begin(out, event, event_len);
    buf_append_str(out, ",\"data\":");
    json_write_string(out, data_str, data_len);
    add_key_str(out, "\"channel\":", channel, channel_len);
    if (user_id)
        add_key_str(out, "\"user_id\":", user_id, user_id_len);
    buf_append_char(out, '}');
}

void pusher_encode_raw_data(buf *out, const char *event, size_t event_len, const char *channel,
                            size_t channel_len, const char *data_json, size_t data_len,
                            const char *user_id, size_t user_id_len)
{
    begin(out, event, event_len);
    if (data_json) {
        buf_append_str(out, ",\"data\":");
        buf_append(out, data_json, data_len);
    }
    if (channel)
        add_key_str(out, "\"channel\":", channel, channel_len);
    if (user_id)
        add_key_str(out, "\"user_id\":", user_id, user_id_len);
    buf_append_char(out, '}');
}

void pusher_encode_stored(buf *out, const char *event, size_t event_len, const char *channel,
                          size_t channel_len, const char *data_json, size_t data_len,
                          const char *user_id, size_t user_id_len, const char *id, size_t id_len)
{
    begin(out, event, event_len);
    buf_append_str(out, ",\"data\":");
    buf_append(out, data_json, data_len);
    add_key_str(out, "\"channel\":", channel, channel_len);
    if (user_id)
        add_key_str(out, "\"user_id\":", user_id, user_id_len);
    add_key_str(out, "\"id\":", id, id_len);
    buf_append_char(out, '}');
}

void pusher_encode_error(buf *out, int code, const char *message)
{
    begin(out, PUSHER_LIT("pusher:error"));
    buf_append_str(out, ",\"data\":{\"code\":");
    if (code)
        buf_append_i64(out, code);
    else
        buf_append_str(out, "null");
    add_key_text(out, "\"message\":", message ? message : "", message ? strlen(message) : 0);
    buf_append_str(out, "}}");
}

/* Key order event, data, channel like every other frame (spec §0 [rec]);
 * pusher-js and the native SDKs read it by key. */
void pusher_encode_subscription_error(buf *out, const char *channel, size_t channel_len,
                                      const char *type, const char *error, int status)
{
    begin(out, PUSHER_LIT("pusher:subscription_error"));
    buf_append_str(out, ",\"data\":{\"type\":");
    write_text(out, type ? type : "", type ? strlen(type) : 0);
    add_key_text(out, "\"error\":", error ? error : "", error ? strlen(error) : 0);
    buf_append_str(out, ",\"status\":");
    buf_append_i64(out, status);
    buf_append_char(out, '}');
    if (channel)
        add_key_text(out, "\"channel\":", channel, channel_len);
    buf_append_char(out, '}');
}

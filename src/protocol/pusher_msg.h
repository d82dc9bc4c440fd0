/* pusher_msg — decodes the JSON messages a client sends (spec §3.1) and
 * encodes the frames the server sends (spec §3.2) with key order event,
 * data, channel, user_id and no whitespace. */
#ifndef HARK_PROTOCOL_PUSHER_MSG_H
#define HARK_PROTOCOL_PUSHER_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

typedef struct pusher_msg {
    json_t *root;      /* owned; pusher_msg_free releases it */
    const char *event; /* borrowed from root */
    size_t event_len;
    const char *channel; /* NULL when absent */
    size_t channel_len;
    json_t *data; /* borrowed; NULL when absent. For "pusher:*" events a
                     string that parses as a JSON object is replaced by
                     the object (spec §0 leniency). */
} pusher_msg;

/* Parses one text frame. Returns 0, or -1 with the complete message for the
 * client in err, cut to err_cap at a character boundary and valid UTF-8:
 * "Invalid JSON: <parser's reason>" or "Invalid message: not a JSON object",
 * "Invalid message: missing \"event\"", "Invalid message: \"event\" must
 * be a string", "Invalid message: \"channel\" must be a string". */
int pusher_msg_decode(const char *text, size_t len, pusher_msg *out, char *err, size_t err_cap);
void pusher_msg_free(pusher_msg *m);

/* Helpers to read data fields of pusher:* events: the string value of key in
 * the data object, or NULL (with *len = 0) when absent or not a string. */
const char *pusher_msg_data_string(const pusher_msg *m, const char *key, size_t *len);

/* --- encoding: append one complete JSON message to out ------------------- */

/* Names (event, channel, user id) are given as pointer and length: they
 * need not be NUL-terminated and are written whole, whatever their length.
 * PUSHER_LIT("pusher:pong") passes a string literal as both. */
#define PUSHER_LIT(s) (s), (sizeof(s) - 1)

/* {"event":E,"data":"<data as a JSON string>","channel":C}; channel may be
 * NULL (no channel key). data_str is the already-encoded inner JSON text
 * (e.g. "{}"). */
void pusher_encode_string_data(buf *out, const char *event, size_t event_len, const char *channel,
                               size_t channel_len, const char *data_str, size_t data_len);

/* A published event: {"event":E,"data":"<data as a JSON string>",
 * "channel":C[,"user_id":U]}; user_id may be NULL (no key). */
void pusher_encode_published(buf *out, const char *event, size_t event_len, const char *channel,
                             size_t channel_len, const char *data_str, size_t data_len,
                             const char *user_id, size_t user_id_len);

/* {"event":E,"data":<raw JSON>,"channel":C[,"user_id":U]}; data_json is
 * copied verbatim (NULL → no data key); channel and user_id may be NULL
 * (no key). */
void pusher_encode_raw_data(buf *out, const char *event, size_t event_len, const char *channel,
                            size_t channel_len, const char *data_json, size_t data_len,
                            const char *user_id, size_t user_id_len);

/* An event kept in history, as delivered live and replayed:
 * {"event":E,"data":<raw JSON>,"channel":C[,"user_id":U],"id":I}; user_id
 * may be NULL. */
void pusher_encode_stored(buf *out, const char *event, size_t event_len, const char *channel,
                          size_t channel_len, const char *data_json, size_t data_len,
                          const char *user_id, size_t user_id_len, const char *id, size_t id_len);

/* {"event":"pusher:error","data":{"code":C,"message":M}}; code 0 → null.
 * M may quote client input: ill-formed UTF-8 in it becomes U+FFFD. */
void pusher_encode_error(buf *out, int code, const char *message);

/* {"event":"pusher:subscription_error","data":{"type":T,"error":E,"status":S},"channel":C}
 * (the usual key order: event, data, channel); channel may be NULL (no
 * channel key). Ill-formed UTF-8 in T, E or C becomes U+FFFD. */
void pusher_encode_subscription_error(buf *out, const char *channel, size_t channel_len,
                                      const char *type, const char *error, int status);

#endif

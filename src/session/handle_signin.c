/* pusher:signin (spec §3.5): user authentication and the watchlist. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/channel_name.h"
#include "protocol/errors.h"
#include "protocol/signature.h"
#include "session/session_internal.h"
#include "util/json_write.h"

#define WATCHLIST_MAX 100

static void refuse(session *s, const char *message)
{
    if (s->sub.app->cfg->user_authentication_required)
        session_close(s, PUSHER_UNAUTHORIZED, message);
    else
        session_send_error(s, PUSHER_UNAUTHORIZED, message);
}

void handle_signin(session *s, const pusher_msg *m)
{
    const hk_app *app = s->sub.app->cfg;
    size_t auth_len = 0, ud_len = 0;
    const char *auth = pusher_msg_data_string(m, "auth", &auth_len);
    const char *user_data = pusher_msg_data_string(m, "user_data", &ud_len);
    if (!auth || !user_data) {
        refuse(s, "Sign-in refused: auth and user_data are required");
        return;
    }
    if (!sig_check_user(app->key, app->secret, session_signed_id(s), user_data, ud_len, auth,
                        auth_len)) {
        refuse(s, "Sign-in refused: invalid signature");
        return;
    }
    json_error_t jerr;
    json_t *root = json_loadb(user_data, ud_len, 0, &jerr);
    json_t *id = root ? json_object_get(root, "id") : NULL;
    if (!json_is_object(root) || !json_is_string(id) ||
        !user_id_valid(json_string_value(id), json_string_length(id))) {
        json_decref(root);
        refuse(s, "Sign-in refused: user_data must be an object with a valid string id");
        return;
    }
    const char *uid = json_string_value(id);
    size_t uid_len = json_string_length(id);
    if (s->sub.user &&
        (s->sub.user->id_len != uid_len || memcmp(s->sub.user->id, uid, uid_len) != 0)) {
        json_decref(root);
        refuse(s, "Sign-in refused: the connection is signed in as another user");
        return;
    }

    const char *ids[WATCHLIST_MAX];
    size_t lens[WATCHLIST_MAX];
    size_t num = 0;
    bool truncated = false;
    json_t *watch = json_object_get(root, "watchlist");
    if (json_is_array(watch)) {
        size_t i;
        json_t *v;
        json_array_foreach(watch, i, v)
        {
            if (!json_is_string(v) || !user_id_valid(json_string_value(v), json_string_length(v)))
                continue;
            if (num == WATCHLIST_MAX) {
                truncated = true;
                break;
            }
            ids[num] = json_string_value(v);
            lens[num] = json_string_length(v);
            num++;
        }
    }

    buf b;
    buf_init(&b);
    buf_append_str(&b, "{\"event\":\"pusher:signin_success\",\"data\":{\"user_data\":");
    json_write_string(&b, user_data, ud_len);
    buf_append_str(&b, "}}");
    session_send_text(s, b.data, b.len);
    buf_free(&b);

    if (!s->sub.user) {
        json_t *info = json_object_get(root, "user_info");
        free(s->user_info);
        s->user_info = info ? json_dumps(info, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        hub_signin(&s->sub, uid, uid_len, ids, lens, num);
        for (uint32_t i = 0; i < s->sub.num_slots; i++) /* subscribed before signing in */
            session_note_member(s, s->sub.slots[i].channel->name,
                                s->sub.slots[i].channel->name_len);
    }
    s->auth_deadline_ms = 0;
    if (truncated)
        session_send_error(s, PUSHER_WATCHLIST_LIMIT,
                           "The watchlist is limited to 100 users; the first 100 are kept");
    json_decref(root);
}

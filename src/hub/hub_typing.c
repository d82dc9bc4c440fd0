/* hub_typing — "… is typing" on a channel, relayed to its other users.
 *
 * The state (who types where, since when, through which connection) is
 * the directory's, so it is one per user and channel across workers; the
 * hub turns its changes into hark:typing frames, sent to every subscriber
 * of the channel except the connections of the typing user. */
#include <string.h>

#include "hub/hub_internal.h"
#include "protocol/pusher_msg.h"
#include "util/json_write.h"

static void relay(hub_app *app, const char *channel, size_t channel_len, const char *user,
                  size_t user_len, bool typing)
{
    buf data;
    buf_init(&data);
    buf_append_str(&data, "{\"user_id\":");
    json_write_string(&data, user, user_len);
    buf_append_str(&data, typing ? ",\"typing\":true}" : ",\"typing\":false}");
    buf b;
    frame_buf_init(&b);
    pusher_encode_string_data(&b, PUSHER_LIT("hark:typing"), channel, channel_len, data.data,
                              data.len);
    frame *f = frame_buf_take(&b);
    buf key;
    buf_init(&key);
    buf_append(&key, channel, channel_len);
    buf_append_char(&key, '\n');
    buf_append(&key, user, user_len);
    hub_group_send_except_id(app, MSG_PUBLISH_OTHERS, key.data, key.len, f, NULL);
    frame_unref(f);
    buf_free(&key);
    buf_free(&data);
}

void hub_typing(subscriber *s, sub_slot *slot, bool typing)
{
    hub_app *app = s->app;
    hub_channel *ch = slot->channel;
    const hub_user *u = s->user;
    dir_typing_signal sig = {.channel = ch->name,
                             .channel_len = ch->name_len,
                             .user_id = u->id,
                             .user_id_len = u->id_len,
                             .socket_id = s->socket_id,
                             .typing = typing,
                             .throttle_ms = app->cfg->typing_throttle_ms,
                             .ttl_ms = app->cfg->typing_ttl_ms};
    enum dir_typing_relay r = directory_typing(app->hub->dir, app->index, &sig);
    /* whether to ask the directory when this subscription ends */
    slot->typing = typing;
    if (r != DIR_TYPING_QUIET)
        relay(app, ch->name, ch->name_len, u->id, u->id_len, r == DIR_TYPING_START);
}

void hub_typing_left(subscriber *s, const sub_slot *slot)
{
    hub_app *app = s->app;
    const hub_channel *ch = slot->channel;
    if (!s->user)
        return;
    if (directory_typing_left(app->hub->dir, app->index, ch->name, ch->name_len, s->user->id,
                              s->user->id_len, s->socket_id))
        relay(app, ch->name, ch->name_len, s->user->id, s->user->id_len, false);
}

void hub_typing_expire(hub *h)
{
    for (size_t a = 0; a < h->num_apps; a++) {
        size_t n = 0;
        char **gone = directory_typing_expired(h->dir, a, &n);
        for (size_t i = 0; i < n; i++) {
            const char *nl = strchr(gone[i], '\n');
            size_t channel_len = (size_t)(nl - gone[i]);
            relay(&h->apps[a], gone[i], channel_len, nl + 1, strlen(nl + 1), false);
            free(gone[i]);
        }
        free(gone);
    }
}

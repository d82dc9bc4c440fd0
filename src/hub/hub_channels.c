/* hub_channels — subscriptions, presence members, cache replay, publishing
 * and client events on this worker's channels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"
#include "protocol/errors.h"
#include "protocol/pusher_msg.h"
#include "util/buf.h"
#include "util/json_write.h"

void hub_channel_free(hub_channel *ch)
{
    for (size_t i = 0; i < ch->members.cap; i++)
        if (ch->members.slots[i].key)
            free(ch->members.slots[i].value);
    strmap_free(&ch->members);
    free(ch->subs);
    free(ch);
}

hub_channel *hub_channel_find(hub_app *app, const char *name, size_t len)
{
    return strmap_get(&app->channels, name, len);
}

static hub_channel *channel_get_or_create(hub_app *app, const char *name, size_t len,
                                          channel_kind kind)
{
    hub_channel *ch = strmap_get(&app->channels, name, len);
    if (ch)
        return ch;
    ch = xcalloc(1, sizeof(*ch) + len + 1);
    ch->app = app;
    ch->kind = kind;
    ch->name_len = (uint32_t)len;
    memcpy(ch->name, name, len);
    strmap_init(&ch->members);
    strmap_put(&app->channels, ch->name, len, ch);
    return ch;
}

static void channel_release(hub_channel *ch)
{
    if (ch->num_subs > 0)
        return;
    strmap_remove(&ch->app->channels, ch->name, ch->name_len);
    hub_channel_free(ch);
}

static void send_subscription_succeeded(subscriber *s, hub_channel *ch, const buf *presence)
{
    buf payload;
    buf_init(&payload);
    if (presence)
        pusher_encode_string_data(&payload, PUSHER_LIT("pusher_internal:subscription_succeeded"),
                                  ch->name, ch->name_len, presence->data, presence->len);
    else
        pusher_encode_string_data(&payload, PUSHER_LIT("pusher_internal:subscription_succeeded"),
                                  ch->name, ch->name_len, "{}", 2);
    hub_send_payload(s, &payload);
    buf_free(&payload);
}

static void member_event(hub_app *app, const char *channel, size_t channel_len, const char *id,
                         size_t id_len, const char *info, size_t info_len, const subscriber *except)
{
    bool added = info != NULL;
    buf data, payload;
    buf_init(&data);
    buf_init(&payload);
    buf_append_str(&data, "{\"user_id\":");
    json_write_string(&data, id, id_len);
    if (added) {
        buf_append_str(&data, ",\"user_info\":");
        buf_append(&data, info, info_len);
    }
    buf_append_char(&data, '}');
    if (added)
        pusher_encode_string_data(&payload, PUSHER_LIT("pusher_internal:member_added"), channel,
                                  channel_len, data.data, data.len);
    else
        pusher_encode_string_data(&payload, PUSHER_LIT("pusher_internal:member_removed"), channel,
                                  channel_len, data.data, data.len);
    hub_group_publish_payload(app, channel, channel_len, &payload, except);
    buf_free(&data);
    buf_free(&payload);

    hub_event ev = {.kind = added ? HUB_MEMBER_ADDED : HUB_MEMBER_REMOVED,
                    .channel = channel,
                    .channel_len = channel_len,
                    .user_id = id,
                    .user_id_len = id_len};
    hub_emit(app, &ev);
}

static void subscription_count_changed(hub_app *app, const char *channel, size_t len,
                                       uint32_t total)
{
    if (!app->cfg->subscription_count)
        return;
    if (total > 0) {
        char data[64];
        int n = snprintf(data, sizeof(data), "{\"subscription_count\":%u}", total);
        buf payload;
        buf_init(&payload);
        pusher_encode_string_data(&payload, PUSHER_LIT("pusher_internal:subscription_count"),
                                  channel, len, data, (size_t)n);
        hub_group_publish_payload(app, channel, len, &payload, NULL);
        buf_free(&payload);
    }
    hub_event ev = {.kind = HUB_SUBSCRIPTION_COUNT,
                    .channel = channel,
                    .channel_len = len,
                    .subscription_count = total};
    hub_emit(app, &ev);
}

sub_slot *hub_subscription(subscriber *s, const char *name, size_t len)
{
    for (uint32_t i = 0; i < s->num_slots; i++) {
        hub_channel *ch = s->slots[i].channel;
        if (ch->name_len == len && memcmp(ch->name, name, len) == 0)
            return &s->slots[i];
    }
    return NULL;
}

enum hub_subscribe_result hub_subscribe(subscriber *s, const char *name, size_t len,
                                        channel_kind kind, const hub_presence_join *join,
                                        frame **cached)
{
    if (cached)
        *cached = NULL;
    hub_app *app = s->app;
    hub *h = app->hub;
    bool presence = kind.type == CHANNEL_PRESENCE;
    buf state;
    buf_init(&state);

    sub_slot *existing = hub_subscription(s, name, len);
    if (existing) {
        if (presence)
            directory_presence_state(h->dir, app->index, name, len, &state);
        send_subscription_succeeded(s, existing->channel, presence ? &state : NULL);
        buf_free(&state);
        return HUB_ALREADY_SUBSCRIBED;
    }
    hub_channel *ch = channel_get_or_create(app, name, len, kind);

    hub_member *member = NULL;
    dir_member_join mj;
    if (presence) {
        member = strmap_get(&ch->members, join->user_id, join->user_id_len);
        mj = (dir_member_join){join->user_id, join->user_id_len, join->user_info,
                               join->user_info_len, app->cfg->max_presence_members};
    }
    dir_subscribe_result r =
        directory_subscribe(h->dir, app->index, name, len, kind, presence && !member ? &mj : NULL,
                            presence ? &state : NULL, ch->num_subs == 0 ? hub_worker_bit(h) : 0);
    if (r.refused) {
        channel_release(ch);
        buf_free(&state);
        return HUB_MEMBER_LIMIT;
    }
    if (presence && !member) {
        member = xmalloc(sizeof(*member) + join->user_id_len + 1);
        member->conns = 0;
        member->id_len = (uint32_t)join->user_id_len;
        memcpy(member->id, join->user_id, join->user_id_len);
        member->id[join->user_id_len] = '\0';
        strmap_put(&ch->members, member->id, member->id_len, member);
    }
    if (member)
        member->conns++;

    if (s->slots_cap == 0) { /* the first subscription lives in the subscriber */
        s->slots = &s->first_slot;
        s->slots_cap = 1;
    } else if (s->num_slots == s->slots_cap) {
        uint32_t cap = s->slots_cap * 2;
        if (s->slots == &s->first_slot) {
            sub_slot *heap = xrealloc(NULL, cap * sizeof(*heap));
            heap[0] = s->first_slot;
            s->slots = heap;
        } else {
            s->slots = xrealloc(s->slots, cap * sizeof(*s->slots));
        }
        s->slots_cap = cap;
    }
    if (ch->num_subs == ch->subs_cap) {
        ch->subs_cap = ch->subs_cap ? ch->subs_cap * 2 : 1; /* many channels have one subscriber */
        ch->subs = xrealloc(ch->subs, ch->subs_cap * sizeof(*ch->subs));
    }
    s->slots[s->num_slots] = (sub_slot){.channel = ch, .pos = ch->num_subs, .member = member};
    ch->subs[ch->num_subs] = (channel_sub){.sub = s, .slot = s->num_slots};
    s->num_slots++;
    ch->num_subs++;

    send_subscription_succeeded(s, ch, presence ? &state : NULL);
    buf_free(&state);
    if (r.cached && cached) {
        *cached = r.cached;
    } else if (r.cached) {
        s->ops->send(s, r.cached);
        frame_unref(r.cached);
    } else if (kind.cache) {
        buf payload;
        buf_init(&payload);
        buf_append_str(&payload, "{\"event\":\"pusher:cache_miss\",\"channel\":");
        json_write_string(&payload, ch->name, ch->name_len);
        buf_append_char(&payload, '}');
        hub_send_payload(s, &payload);
        buf_free(&payload);
        hub_event ev = {.kind = HUB_CACHE_MISS, .channel = ch->name, .channel_len = ch->name_len};
        hub_emit(app, &ev);
    }
    if (r.new_member)
        member_event(app, ch->name, ch->name_len, join->user_id, join->user_id_len, join->user_info,
                     join->user_info_len, s);
    if (r.total == 1) {
        hub_event ev = {
            .kind = HUB_CHANNEL_OCCUPIED, .channel = ch->name, .channel_len = ch->name_len};
        hub_emit(app, &ev);
    }
    subscription_count_changed(app, ch->name, ch->name_len, r.total);
    return HUB_SUBSCRIBED;
}

/* Removes subscription index i of s, with its presence and webhook effects. */
void hub_unsubscribe_slot(subscriber *s, uint32_t i)
{
    hub_app *app = s->app;
    sub_slot slot = s->slots[i];
    hub_channel *ch = slot.channel;

    uint32_t last = s->num_slots - 1; /* swap-remove from the subscriber's list */
    if (i != last) {
        s->slots[i] = s->slots[last];
        s->slots[i].channel->subs[s->slots[i].pos].slot = i;
    }
    s->num_slots--;

    uint32_t ch_last = ch->num_subs - 1; /* swap-remove from the channel's list */
    if (slot.pos != ch_last) {
        ch->subs[slot.pos] = ch->subs[ch_last];
        channel_sub moved = ch->subs[slot.pos];
        moved.sub->slots[moved.slot].pos = slot.pos;
    }
    ch->num_subs--;

    /* The channel and the member are freed last: their names are what the
     * directory and the events below are told, whole. */
    if (slot.typing)
        hub_typing_left(s, &slot);
    hub_member *gone = NULL;
    if (slot.member && --slot.member->conns == 0) {
        gone = slot.member;
        strmap_remove(&ch->members, gone->id, gone->id_len);
    }
    bool member_removed = false;
    uint32_t total = directory_unsubscribe(
        app->hub->dir, app->index, ch->name, ch->name_len, gone ? gone->id : NULL,
        gone ? gone->id_len : 0, &member_removed, ch->num_subs == 0 ? hub_worker_bit(app->hub) : 0);
    if (member_removed)
        member_event(app, ch->name, ch->name_len, gone->id, gone->id_len, NULL, 0, NULL);
    if (total == 0) {
        hub_event ev = {
            .kind = HUB_CHANNEL_VACATED, .channel = ch->name, .channel_len = ch->name_len};
        hub_emit(app, &ev);
    }
    subscription_count_changed(app, ch->name, ch->name_len, total);
    free(gone);
    channel_release(ch);
}

bool hub_unsubscribe(subscriber *s, const char *name, size_t len)
{
    sub_slot *slot = hub_subscription(s, name, len);
    if (!slot)
        return false;
    hub_unsubscribe_slot(s, (uint32_t)(slot - s->slots));
    return true;
}

void hub_publish(hub_app *app, const char *name, size_t len, frame *f, const char *except_socket_id)
{
    channel_kind kind = channel_classify(name, len);
    if (kind.type == CHANNEL_USER) {
        size_t prefix = sizeof(CHANNEL_USER_PREFIX) - 1;
        hub_group_send_except_id(app, MSG_PUBLISH_USER, name + prefix, len - prefix, f,
                                 except_socket_id);
        return;
    }
    if (kind.cache)
        directory_cache_store(app->hub->dir, app->index, name, len, f, app->cfg->cache_ttl);
    hub_group_send_except_id(app, MSG_PUBLISH, name, len, f, except_socket_id);
    hub_event ev = {.kind = HUB_PUBLISH, .channel = name, .channel_len = len, .frame = f};
    hub_emit(app, &ev);
}

void hub_client_event(subscriber *s, sub_slot *slot, frame *f, const char *event, size_t event_len,
                      const char *data, size_t data_len)
{
    hub_channel *ch = slot->channel;
    if (f)
        hub_group_send(s->app, MSG_PUBLISH, ch->name, ch->name_len, f, s);
    hub_event ev = {.kind = HUB_CLIENT_EVENT,
                    .channel = ch->name,
                    .channel_len = ch->name_len,
                    .user_id = slot->member ? slot->member->id : NULL,
                    .user_id_len = slot->member ? slot->member->id_len : 0,
                    .event = event,
                    .event_len = event_len,
                    .data = data,
                    .data_len = data_len,
                    .socket_id = s->socket_id,
                    .frame = f};
    hub_emit(s->app, &ev);
}

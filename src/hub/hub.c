#include "hub/hub.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "protocol/errors.h"
#include "protocol/pusher_msg.h"
#include "util/buf.h"
#include "util/json_write.h"

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p)
        abort();
    return p;
}

uint64_t hub_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

hub *hub_new(const hk_config *cfg, uint32_t node_id, hub_webhook_fn webhook, void *webhook_ctx)
{
    hub *h = calloc(1, sizeof(*h));
    if (!h)
        abort();
    h->cfg = cfg;
    h->node_id = node_id;
    h->webhook = webhook;
    h->webhook_ctx = webhook_ctx;
    h->num_apps = cfg->num_apps;
    h->apps = calloc(cfg->num_apps ? cfg->num_apps : 1, sizeof(*h->apps));
    if (!h->apps)
        abort();
    for (size_t i = 0; i < cfg->num_apps; i++) {
        h->apps[i].cfg = &cfg->apps[i];
        h->apps[i].hub = h;
        strmap_init(&h->apps[i].channels);
        strmap_init(&h->apps[i].users);
        strmap_init(&h->apps[i].sockets);
    }
    return h;
}

static void channel_free(hub_channel *ch)
{
    for (size_t i = 0; i < ch->members.cap; i++) {
        hub_member *m = ch->members.slots[i].value;
        if (ch->members.slots[i].key) {
            free(m->info);
            free(m);
        }
    }
    strmap_free(&ch->members);
    if (ch->cached)
        frame_unref(ch->cached);
    free(ch->subs);
    free(ch);
}

void hub_free(hub *h)
{
    if (!h)
        return;
    for (size_t a = 0; a < h->num_apps; a++) {
        hub_app *app = &h->apps[a];
        for (size_t i = 0; i < app->channels.cap; i++)
            if (app->channels.slots[i].key)
                channel_free(app->channels.slots[i].value);
        for (size_t i = 0; i < app->users.cap; i++) {
            if (app->users.slots[i].key) {
                hub_user *u = app->users.slots[i].value;
                free(u->conns);
                free(u->watchers);
                free(u);
            }
        }
        strmap_free(&app->channels);
        strmap_free(&app->users);
        strmap_free(&app->sockets);
    }
    free(h->apps);
    free(h);
}

hub_app *hub_app_of(hub *h, const hk_app *app)
{
    return &h->apps[app - h->cfg->apps];
}

static void emit(hub_app *app, const webhook_event *ev)
{
    if (app->hub->webhook)
        app->hub->webhook(app->hub->webhook_ctx, app->cfg, ev);
}

/* ---- sending helpers ------------------------------------------------------ */

static void send_payload(subscriber *s, const buf *payload)
{
    frame *f = frame_ws_text(payload->data, payload->len);
    s->ops->send(s, f);
    frame_unref(f);
}

static void broadcast(hub_channel *ch, frame *f, const subscriber *except)
{
    for (uint32_t i = 0; i < ch->num_subs; i++) {
        subscriber *s = ch->subs[i].sub;
        if (s != except)
            s->ops->send(s, f);
    }
}

static void broadcast_payload(hub_channel *ch, const buf *payload, const subscriber *except)
{
    frame *f = frame_ws_text(payload->data, payload->len);
    broadcast(ch, f, except);
    frame_unref(f);
}

/* ---- sockets ---------------------------------------------------------------- */

static uint64_t random_u64(void)
{
    static _Thread_local uint64_t state;
    if (state == 0) {
        if (getrandom(&state, sizeof(state), 0) != sizeof(state))
            state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&state;
        state |= 1;
    }
    state ^= state << 13; /* xorshift64: socket ids need uniqueness, not secrecy */
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

void hub_attach(hub_app *app, subscriber *s, const subscriber_ops *ops)
{
    memset(s, 0, sizeof(*s));
    s->ops = ops;
    s->app = app;
    for (;;) {
        uint64_t r = random_u64() % 1000000000000000ull; /* 15 digits */
        int n = snprintf(s->socket_id, sizeof(s->socket_id), "%u.%llu", app->hub->node_id,
                         (unsigned long long)r);
        s->socket_id_len = (uint8_t)n;
        if (!strmap_get(&app->sockets, s->socket_id, (size_t)n))
            break;
    }
    strmap_put(&app->sockets, s->socket_id, s->socket_id_len, s);
    app->connections++;
}

subscriber *hub_find_socket(hub_app *app, const char *socket_id, size_t len)
{
    return strmap_get(&app->sockets, socket_id, len);
}

/* ---- channels --------------------------------------------------------------- */

static bool cache_valid(const hub_channel *ch)
{
    return ch->cached && ch->cached_until_ms > hub_now_ms();
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
    ch = calloc(1, sizeof(*ch) + len + 1);
    if (!ch)
        abort();
    ch->app = app;
    ch->kind = kind;
    ch->name_len = (uint32_t)len;
    memcpy(ch->name, name, len);
    strmap_init(&ch->members);
    strmap_put(&app->channels, ch->name, len, ch);
    return ch;
}

/* Frees the channel when nothing keeps it: no subscriber, no live cache. */
static void channel_release(hub_channel *ch)
{
    if (ch->num_subs > 0 || cache_valid(ch))
        return;
    strmap_remove(&ch->app->channels, ch->name, ch->name_len);
    channel_free(ch);
}

static void encode_presence_state(buf *out, hub_channel *ch)
{
    /* {"presence":{"ids":[...],"hash":{id:info,...},"count":N}} */
    buf_append_str(out, "{\"presence\":{\"ids\":[");
    bool first = true;
    for (size_t i = 0; i < ch->members.cap; i++) {
        hub_member *m = ch->members.slots[i].value;
        if (!ch->members.slots[i].key)
            continue;
        if (!first)
            buf_append_char(out, ',');
        first = false;
        json_write_string(out, m->id, m->id_len);
    }
    buf_append_str(out, "],\"hash\":{");
    first = true;
    for (size_t i = 0; i < ch->members.cap; i++) {
        hub_member *m = ch->members.slots[i].value;
        if (!ch->members.slots[i].key)
            continue;
        if (!first)
            buf_append_char(out, ',');
        first = false;
        json_write_string(out, m->id, m->id_len);
        buf_append_char(out, ':');
        buf_append(out, m->info, m->info_len);
    }
    buf_append_str(out, "},\"count\":");
    buf_append_u64(out, ch->members.count);
    buf_append_str(out, "}}");
}

static void send_subscription_succeeded(subscriber *s, hub_channel *ch)
{
    buf payload;
    buf_init(&payload);
    if (ch->kind.type == CHANNEL_PRESENCE) {
        buf data;
        buf_init(&data);
        encode_presence_state(&data, ch);
        pusher_encode_string_data(&payload, "pusher_internal:subscription_succeeded", ch->name,
                                  data.data, data.len);
        buf_free(&data);
    } else {
        pusher_encode_string_data(&payload, "pusher_internal:subscription_succeeded", ch->name,
                                  "{}", 2);
    }
    send_payload(s, &payload);
    buf_free(&payload);
}

static void member_event(hub_channel *ch, const hub_member *m, bool added, const subscriber *except)
{
    buf data, payload;
    buf_init(&data);
    buf_init(&payload);
    buf_append_str(&data, "{\"user_id\":");
    json_write_string(&data, m->id, m->id_len);
    if (added) {
        buf_append_str(&data, ",\"user_info\":");
        buf_append(&data, m->info, m->info_len);
    }
    buf_append_char(&data, '}');
    pusher_encode_string_data(
        &payload, added ? "pusher_internal:member_added" : "pusher_internal:member_removed",
        ch->name, data.data, data.len);
    broadcast_payload(ch, &payload, except);
    buf_free(&data);
    buf_free(&payload);

    webhook_event ev = {.kind = added ? WEBHOOK_MEMBER_ADDED : WEBHOOK_MEMBER_REMOVED,
                        .channel = ch->name,
                        .user_id = m->id};
    emit(ch->app, &ev);
}

static void subscription_count_changed(hub_channel *ch)
{
    if (!ch->app->cfg->subscription_count)
        return;
    if (ch->num_subs > 0) {
        char data[64];
        int n = snprintf(data, sizeof(data), "{\"subscription_count\":%u}", ch->num_subs);
        buf payload;
        buf_init(&payload);
        pusher_encode_string_data(&payload, "pusher_internal:subscription_count", ch->name, data,
                                  (size_t)n);
        broadcast_payload(ch, &payload, NULL);
        buf_free(&payload);
    }
    webhook_event ev = {.kind = WEBHOOK_SUBSCRIPTION_COUNT,
                        .channel = ch->name,
                        .subscription_count = ch->num_subs};
    emit(ch->app, &ev);
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
                                        channel_kind kind, const hub_presence_join *join)
{
    hub_app *app = s->app;
    sub_slot *existing = hub_subscription(s, name, len);
    if (existing) {
        send_subscription_succeeded(s, existing->channel);
        return HUB_ALREADY_SUBSCRIBED;
    }
    hub_channel *ch = channel_get_or_create(app, name, len, kind);

    hub_member *member = NULL;
    bool new_member = false;
    if (kind.type == CHANNEL_PRESENCE) {
        member = strmap_get(&ch->members, join->user_id, join->user_id_len);
        if (!member) {
            if (ch->members.count >= app->cfg->max_presence_members) {
                channel_release(ch);
                return HUB_MEMBER_LIMIT;
            }
            member = malloc(sizeof(*member) + join->user_id_len + 1);
            if (!member)
                abort();
            member->conns = 0;
            member->id_len = (uint32_t)join->user_id_len;
            memcpy(member->id, join->user_id, join->user_id_len);
            member->id[join->user_id_len] = '\0';
            member->info = malloc(join->user_info_len + 1);
            if (!member->info)
                abort();
            memcpy(member->info, join->user_info, join->user_info_len);
            member->info[join->user_info_len] = '\0';
            member->info_len = join->user_info_len;
            strmap_put(&ch->members, member->id, member->id_len, member);
            new_member = true;
        }
        member->conns++;
    }

    if (s->num_slots == s->slots_cap) {
        s->slots_cap = s->slots_cap ? s->slots_cap * 2 : 2;
        s->slots = xrealloc(s->slots, s->slots_cap * sizeof(*s->slots));
    }
    if (ch->num_subs == ch->subs_cap) {
        ch->subs_cap = ch->subs_cap ? ch->subs_cap * 2 : 4;
        ch->subs = xrealloc(ch->subs, ch->subs_cap * sizeof(*ch->subs));
    }
    s->slots[s->num_slots] = (sub_slot){.channel = ch, .pos = ch->num_subs, .member = member};
    ch->subs[ch->num_subs] = (channel_sub){.sub = s, .slot = s->num_slots};
    s->num_slots++;
    ch->num_subs++;

    send_subscription_succeeded(s, ch);
    if (kind.cache) {
        if (cache_valid(ch)) {
            s->ops->send(s, ch->cached);
        } else {
            buf payload;
            buf_init(&payload);
            buf_append_str(&payload, "{\"event\":\"pusher:cache_miss\",\"channel\":");
            json_write_string(&payload, ch->name, ch->name_len);
            buf_append_char(&payload, '}');
            send_payload(s, &payload);
            buf_free(&payload);
            webhook_event ev = {.kind = WEBHOOK_CACHE_MISS, .channel = ch->name};
            emit(app, &ev);
        }
    }
    if (new_member)
        member_event(ch, member, true, s);
    if (ch->num_subs == 1) {
        webhook_event ev = {.kind = WEBHOOK_CHANNEL_OCCUPIED, .channel = ch->name};
        emit(app, &ev);
    }
    subscription_count_changed(ch);
    return HUB_SUBSCRIBED;
}

/* Removes subscription index i of s, with its presence and webhook effects. */
static void unsubscribe_slot(subscriber *s, uint32_t i)
{
    sub_slot slot = s->slots[i];
    hub_channel *ch = slot.channel;

    /* swap-remove from the subscriber's list */
    uint32_t last = s->num_slots - 1;
    if (i != last) {
        s->slots[i] = s->slots[last];
        hub_channel *moved_ch = s->slots[i].channel;
        moved_ch->subs[s->slots[i].pos].slot = i;
    }
    s->num_slots--;

    /* swap-remove from the channel's list */
    uint32_t ch_last = ch->num_subs - 1;
    if (slot.pos != ch_last) {
        ch->subs[slot.pos] = ch->subs[ch_last];
        channel_sub moved = ch->subs[slot.pos];
        moved.sub->slots[moved.slot].pos = slot.pos;
    }
    ch->num_subs--;

    if (slot.member && --slot.member->conns == 0) {
        hub_member *m = slot.member;
        strmap_remove(&ch->members, m->id, m->id_len);
        member_event(ch, m, false, NULL);
        free(m->info);
        free(m);
    }
    if (ch->num_subs == 0) {
        webhook_event ev = {.kind = WEBHOOK_CHANNEL_VACATED, .channel = ch->name};
        emit(ch->app, &ev);
    }
    subscription_count_changed(ch);
    channel_release(ch);
}

bool hub_unsubscribe(subscriber *s, const char *name, size_t len)
{
    sub_slot *slot = hub_subscription(s, name, len);
    if (!slot)
        return false;
    unsubscribe_slot(s, (uint32_t)(slot - s->slots));
    return true;
}

void hub_publish(hub_app *app, const char *name, size_t len, frame *f, const subscriber *except)
{
    channel_kind kind = channel_classify(name, len);
    if (kind.type == CHANNEL_USER) {
        size_t prefix = sizeof(CHANNEL_USER_PREFIX) - 1;
        hub_user *u = hub_user_find(app, name + prefix, len - prefix);
        if (!u)
            return;
        for (uint32_t i = 0; i < u->num_conns; i++)
            if (u->conns[i] != except)
                u->conns[i]->ops->send(u->conns[i], f);
        return;
    }
    hub_channel *ch;
    if (kind.cache) {
        ch = channel_get_or_create(app, name, len, kind);
        if (ch->cached)
            frame_unref(ch->cached);
        ch->cached = frame_ref(f);
        ch->cached_until_ms = hub_now_ms() + (uint64_t)app->cfg->cache_ttl * 1000u;
    } else {
        ch = hub_channel_find(app, name, len);
        if (!ch)
            return;
    }
    broadcast(ch, f, except);
}

void hub_client_event(subscriber *s, sub_slot *slot, frame *f, const char *event, const char *data,
                      size_t data_len)
{
    hub_channel *ch = slot->channel;
    broadcast(ch, f, s);
    webhook_event ev = {.kind = WEBHOOK_CLIENT_EVENT,
                        .channel = ch->name,
                        .user_id = slot->member ? slot->member->id : NULL,
                        .event = event,
                        .data = data,
                        .data_len = data_len,
                        .socket_id = s->socket_id};
    emit(s->app, &ev);
}

/* ---- users ------------------------------------------------------------------ */

hub_user *hub_user_find(hub_app *app, const char *id, size_t len)
{
    return strmap_get(&app->users, id, len);
}

static hub_user *user_get_or_create(hub_app *app, const char *id, size_t len)
{
    hub_user *u = strmap_get(&app->users, id, len);
    if (u)
        return u;
    u = calloc(1, sizeof(*u) + len + 1);
    if (!u)
        abort();
    u->id_len = (uint32_t)len;
    memcpy(u->id, id, len);
    strmap_put(&app->users, u->id, len, u);
    return u;
}

static void user_release(hub_app *app, hub_user *u)
{
    if (u->num_conns > 0 || u->num_watchers > 0)
        return;
    strmap_remove(&app->users, u->id, u->id_len);
    free(u->conns);
    free(u->watchers);
    free(u);
}

static void push_sub(subscriber ***arr, uint32_t *n, uint32_t *cap, subscriber *s)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 2;
        *arr = xrealloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[(*n)++] = s;
}

static void remove_sub(subscriber **arr, uint32_t *n, const subscriber *s)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (arr[i] == s) {
            arr[i] = arr[--*n];
            return;
        }
    }
}

/* {"event":"pusher_internal:watchlist_events","data":"{\"events\":[...]}"} */
static void send_watchlist_events(subscriber *s, const char *online_ids, size_t online_len,
                                  const char *offline_ids, size_t offline_len)
{
    buf data, payload;
    buf_init(&data);
    buf_init(&payload);
    buf_append_str(&data, "{\"events\":[");
    if (online_ids) {
        buf_append_str(&data, "{\"name\":\"online\",\"user_ids\":[");
        buf_append(&data, online_ids, online_len);
        buf_append_str(&data, "]}");
    }
    if (offline_ids) {
        if (online_ids)
            buf_append_char(&data, ',');
        buf_append_str(&data, "{\"name\":\"offline\",\"user_ids\":[");
        buf_append(&data, offline_ids, offline_len);
        buf_append_str(&data, "]}");
    }
    buf_append_str(&data, "]}");
    pusher_encode_string_data(&payload, "pusher_internal:watchlist_events", NULL, data.data,
                              data.len);
    send_payload(s, &payload);
    buf_free(&data);
    buf_free(&payload);
}

static void notify_watchers(hub_user *u, bool online)
{
    if (u->num_watchers == 0)
        return;
    buf id;
    buf_init(&id);
    json_write_string(&id, u->id, u->id_len);
    for (uint32_t i = 0; i < u->num_watchers; i++) {
        if (online)
            send_watchlist_events(u->watchers[i], id.data, id.len, NULL, 0);
        else
            send_watchlist_events(u->watchers[i], NULL, 0, id.data, id.len);
    }
    buf_free(&id);
}

bool hub_signin(subscriber *s, const char *user_id, size_t len, const char *const *watch_ids,
                const size_t *watch_lens, size_t num_watch)
{
    hub_app *app = s->app;
    if (s->user)
        return s->user->id_len == len && memcmp(s->user->id, user_id, len) == 0;
    hub_user *u = user_get_or_create(app, user_id, len);
    push_sub(&u->conns, &u->num_conns, &u->conns_cap, s);
    s->user = u;
    if (u->num_conns == 1)
        notify_watchers(u, true);

    if (num_watch == 0)
        return true;
    s->watching = xrealloc(NULL, num_watch * sizeof(*s->watching));
    buf online, offline;
    buf_init(&online);
    buf_init(&offline);
    for (size_t i = 0; i < num_watch; i++) {
        hub_user *w = user_get_or_create(app, watch_ids[i], watch_lens[i]);
        bool dup = false;
        for (uint32_t j = 0; j < s->num_watching; j++)
            dup = dup || s->watching[j] == w;
        if (dup)
            continue;
        s->watching[s->num_watching++] = w;
        push_sub(&w->watchers, &w->num_watchers, &w->watchers_cap, s);
        buf *list = w->num_conns > 0 ? &online : &offline;
        if (list->len)
            buf_append_char(list, ',');
        json_write_string(list, w->id, w->id_len);
    }
    send_watchlist_events(s, online.len ? online.data : NULL, online.len,
                          offline.len ? offline.data : NULL, offline.len);
    buf_free(&online);
    buf_free(&offline);
    return true;
}

size_t hub_terminate_user(hub_app *app, const char *id, size_t len)
{
    hub_user *u = hub_user_find(app, id, len);
    if (!u)
        return 0;
    /* close is asynchronous: the list stays intact while we walk it */
    for (uint32_t i = 0; i < u->num_conns; i++)
        u->conns[i]->ops->close(u->conns[i], 4009, "You got disconnected by the app.");
    return u->num_conns;
}

void hub_detach(subscriber *s)
{
    hub_app *app = s->app;
    if (!app)
        return;
    while (s->num_slots > 0)
        unsubscribe_slot(s, s->num_slots - 1);
    free(s->slots);
    s->slots = NULL;
    s->slots_cap = 0;

    if (s->user) {
        hub_user *u = s->user;
        remove_sub(u->conns, &u->num_conns, s);
        s->user = NULL;
        if (u->num_conns == 0)
            notify_watchers(u, false);
        user_release(app, u);
    }
    for (uint32_t i = 0; i < s->num_watching; i++) {
        hub_user *w = s->watching[i];
        remove_sub(w->watchers, &w->num_watchers, s);
        user_release(app, w);
    }
    free(s->watching);
    s->watching = NULL;
    s->num_watching = 0;

    strmap_remove(&app->sockets, s->socket_id, s->socket_id_len);
    app->connections--;
    s->app = NULL;
}

void hub_sweep(hub *h)
{
    for (size_t a = 0; a < h->num_apps; a++) {
        hub_app *app = &h->apps[a];
        hub_channel *dead[64];
        size_t n;
        do {
            n = 0;
            for (size_t i = 0; i < app->channels.cap && n < 64; i++) {
                hub_channel *ch = app->channels.slots[i].value;
                if (app->channels.slots[i].key && ch->num_subs == 0 && !cache_valid(ch))
                    dead[n++] = ch;
            }
            for (size_t i = 0; i < n; i++)
                channel_release(dead[i]);
        } while (n == 64);
    }
}

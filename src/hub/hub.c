#include "hub/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "protocol/errors.h"
#include "protocol/pusher_msg.h"
#include "util/buf.h"
#include "util/json_write.h"

enum hub_msg_kind {
    MSG_PUBLISH,        /* fan f out on channel name */
    MSG_PUBLISH_USER,   /* deliver f to connections signed in as name */
    MSG_TERMINATE_USER, /* close connections signed in as name with 4009 */
    MSG_USER_ONLINE,    /* tell watchers of name */
    MSG_USER_OFFLINE,
};

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
        h->apps[i].index = i;
        strmap_init(&h->apps[i].channels);
        strmap_init(&h->apps[i].users);
        strmap_init(&h->apps[i].sockets);
    }
    h->dir = directory_new(cfg);
    h->owns_dir = true;
    h->peers = NULL;
    h->num_peers = 0;
    pthread_mutex_init(&h->inbox.lock, NULL);
    return h;
}

void hub_join_group(hub *h, directory *dir, hub **peers, size_t num_peers, hub_wake_fn wake,
                    void *wake_ctx)
{
    if (h->owns_dir)
        directory_free(h->dir);
    h->dir = dir;
    h->owns_dir = false;
    h->peers = peers;
    h->num_peers = num_peers;
    h->wake = wake;
    h->wake_ctx = wake_ctx;
}

static void channel_free(hub_channel *ch)
{
    for (size_t i = 0; i < ch->members.cap; i++)
        if (ch->members.slots[i].key)
            free(ch->members.slots[i].value);
    strmap_free(&ch->members);
    free(ch->subs);
    free(ch);
}

static void msg_free(hub_msg *m)
{
    if (m->f)
        frame_unref(m->f);
    free(m->name);
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
    for (size_t i = 0; i < h->inbox.count; i++)
        msg_free(&h->inbox.items[i]);
    free(h->inbox.items);
    pthread_mutex_destroy(&h->inbox.lock);
    if (h->owns_dir)
        directory_free(h->dir);
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

/* ---- messages between workers ----------------------------------------------- */

static void inbox_push(hub *to, uint8_t kind, size_t app, const char *name, size_t len, frame *f,
                       const char *except)
{
    hub_msg m = {.kind = kind, .app = (uint32_t)app, .f = f ? frame_ref(f) : NULL};
    m.name = malloc(len + 1);
    if (!m.name)
        abort();
    memcpy(m.name, name, len);
    m.name[len] = '\0';
    m.name_len = len;
    if (except)
        snprintf(m.except, sizeof(m.except), "%s", except);
    pthread_mutex_lock(&to->inbox.lock);
    if (to->inbox.count == to->inbox.cap) {
        to->inbox.cap = to->inbox.cap ? to->inbox.cap * 2 : 16;
        to->inbox.items = xrealloc(to->inbox.items, to->inbox.cap * sizeof(hub_msg));
    }
    to->inbox.items[to->inbox.count++] = m;
    bool first = to->inbox.count == 1;
    pthread_mutex_unlock(&to->inbox.lock);
    if (first && to->wake)
        to->wake(to->wake_ctx);
}

static void local_deliver(hub *h, uint8_t kind, size_t app_idx, const char *name, size_t len,
                          frame *f, const subscriber *except);

/* Runs kind on this hub now and on every other hub through its inbox. The
 * excluded connection is named by socket id: it may live on any worker. */
static void group_send_except_id(hub_app *app, uint8_t kind, const char *name, size_t len, frame *f,
                                 const char *except_id)
{
    hub *self = app->hub;
    for (size_t i = 0; i < self->num_peers; i++) {
        if (self->peers[i] == self)
            continue;
        /* One copy per worker (never per subscriber): each worker then counts
         * references on its own cache line instead of all workers contending
         * for one atomic counter during fan-out. */
        frame *copy = f ? frame_raw(f->data, f->len) : NULL;
        inbox_push(self->peers[i], kind, app->index, name, len, copy, except_id);
        if (copy)
            frame_unref(copy);
    }
    const subscriber *except =
        except_id ? hub_find_socket(app, except_id, strlen(except_id)) : NULL;
    local_deliver(self, kind, app->index, name, len, f, except);
}

static void group_send(hub_app *app, uint8_t kind, const char *name, size_t len, frame *f,
                       const subscriber *except)
{
    group_send_except_id(app, kind, name, len, f, except ? except->socket_id : NULL);
}

static void group_publish_payload(hub_app *app, const char *channel, size_t len, const buf *payload,
                                  const subscriber *except)
{
    frame *f = frame_ws_text(payload->data, payload->len);
    group_send(app, MSG_PUBLISH, channel, len, f, except);
    frame_unref(f);
}

void hub_drain_inbox(hub *h)
{
    pthread_mutex_lock(&h->inbox.lock);
    hub_msg *items = h->inbox.items;
    size_t count = h->inbox.count;
    h->inbox.items = NULL;
    h->inbox.count = 0;
    h->inbox.cap = 0;
    pthread_mutex_unlock(&h->inbox.lock);
    for (size_t i = 0; i < count; i++) {
        hub_msg *m = &items[i];
        hub_app *app = &h->apps[m->app];
        const subscriber *except =
            m->except[0] ? hub_find_socket(app, m->except, strlen(m->except)) : NULL;
        local_deliver(h, m->kind, m->app, m->name, m->name_len, m->f, except);
        msg_free(m);
    }
    free(items);
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
    directory_add_connection(app->hub->dir, app->index, 1);
}

subscriber *hub_find_socket(hub_app *app, const char *socket_id, size_t len)
{
    return strmap_get(&app->sockets, socket_id, len);
}

/* ---- channels --------------------------------------------------------------- */

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

static void channel_release(hub_channel *ch)
{
    if (ch->num_subs > 0)
        return;
    strmap_remove(&ch->app->channels, ch->name, ch->name_len);
    channel_free(ch);
}

static void send_subscription_succeeded(subscriber *s, hub_channel *ch, const buf *presence)
{
    buf payload;
    buf_init(&payload);
    if (presence)
        pusher_encode_string_data(&payload, "pusher_internal:subscription_succeeded", ch->name,
                                  presence->data, presence->len);
    else
        pusher_encode_string_data(&payload, "pusher_internal:subscription_succeeded", ch->name,
                                  "{}", 2);
    send_payload(s, &payload);
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
    pusher_encode_string_data(
        &payload, added ? "pusher_internal:member_added" : "pusher_internal:member_removed",
        channel, data.data, data.len);
    group_publish_payload(app, channel, channel_len, &payload, except);
    buf_free(&data);
    buf_free(&payload);

    webhook_event ev = {.kind = added ? WEBHOOK_MEMBER_ADDED : WEBHOOK_MEMBER_REMOVED,
                        .channel = channel,
                        .user_id = id};
    emit(app, &ev);
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
        pusher_encode_string_data(&payload, "pusher_internal:subscription_count", channel, data,
                                  (size_t)n);
        group_publish_payload(app, channel, len, &payload, NULL);
        buf_free(&payload);
    }
    webhook_event ev = {
        .kind = WEBHOOK_SUBSCRIPTION_COUNT, .channel = channel, .subscription_count = total};
    emit(app, &ev);
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
                            presence ? &state : NULL);
    if (r.refused) {
        channel_release(ch);
        buf_free(&state);
        return HUB_MEMBER_LIMIT;
    }
    if (presence && !member) {
        member = malloc(sizeof(*member) + join->user_id_len + 1);
        if (!member)
            abort();
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
    if (r.cached) {
        s->ops->send(s, r.cached);
        frame_unref(r.cached);
    } else if (kind.cache) {
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
    if (r.new_member)
        member_event(app, ch->name, ch->name_len, join->user_id, join->user_id_len, join->user_info,
                     join->user_info_len, s);
    if (r.total == 1) {
        webhook_event ev = {.kind = WEBHOOK_CHANNEL_OCCUPIED, .channel = ch->name};
        emit(app, &ev);
    }
    subscription_count_changed(app, ch->name, ch->name_len, r.total);
    return HUB_SUBSCRIBED;
}

/* Removes subscription index i of s, with its presence and webhook effects. */
static void unsubscribe_slot(subscriber *s, uint32_t i)
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

    char member_id[160];
    size_t member_len = 0;
    bool member_left_worker = false;
    if (slot.member && --slot.member->conns == 0) {
        hub_member *m = slot.member;
        member_len = m->id_len < sizeof(member_id) - 1 ? m->id_len : sizeof(member_id) - 1;
        memcpy(member_id, m->id, member_len);
        member_id[member_len] = '\0';
        strmap_remove(&ch->members, m->id, m->id_len);
        free(m);
        member_left_worker = true;
    }
    char name[256];
    size_t name_len = ch->name_len < sizeof(name) - 1 ? ch->name_len : sizeof(name) - 1;
    memcpy(name, ch->name, name_len);
    name[name_len] = '\0';
    channel_release(ch);

    bool member_removed = false;
    uint32_t total =
        directory_unsubscribe(app->hub->dir, app->index, name, name_len,
                              member_left_worker ? member_id : NULL, member_len, &member_removed);
    if (member_removed)
        member_event(app, name, name_len, member_id, member_len, NULL, 0, NULL);
    if (total == 0) {
        webhook_event ev = {.kind = WEBHOOK_CHANNEL_VACATED, .channel = name};
        emit(app, &ev);
    }
    subscription_count_changed(app, name, name_len, total);
}

bool hub_unsubscribe(subscriber *s, const char *name, size_t len)
{
    sub_slot *slot = hub_subscription(s, name, len);
    if (!slot)
        return false;
    unsubscribe_slot(s, (uint32_t)(slot - s->slots));
    return true;
}

void hub_publish(hub_app *app, const char *name, size_t len, frame *f, const char *except_socket_id)
{
    channel_kind kind = channel_classify(name, len);
    if (kind.type == CHANNEL_USER) {
        size_t prefix = sizeof(CHANNEL_USER_PREFIX) - 1;
        group_send_except_id(app, MSG_PUBLISH_USER, name + prefix, len - prefix, f,
                             except_socket_id);
        return;
    }
    if (kind.cache)
        directory_cache_store(app->hub->dir, app->index, name, len, f, app->cfg->cache_ttl);
    group_send_except_id(app, MSG_PUBLISH, name, len, f, except_socket_id);
}

void hub_client_event(subscriber *s, sub_slot *slot, frame *f, const char *event, const char *data,
                      size_t data_len)
{
    hub_channel *ch = slot->channel;
    group_send(s->app, MSG_PUBLISH, ch->name, ch->name_len, f, s);
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

static void local_deliver(hub *h, uint8_t kind, size_t app_idx, const char *name, size_t len,
                          frame *f, const subscriber *except)
{
    hub_app *app = &h->apps[app_idx];
    if (kind == MSG_PUBLISH) {
        hub_channel *ch = hub_channel_find(app, name, len);
        if (ch)
            broadcast(ch, f, except);
        return;
    }
    hub_user *u = hub_user_find(app, name, len);
    if (!u)
        return;
    switch (kind) {
    case MSG_PUBLISH_USER:
        for (uint32_t i = 0; i < u->num_conns; i++)
            if (u->conns[i] != except)
                u->conns[i]->ops->send(u->conns[i], f);
        break;
    case MSG_TERMINATE_USER:
        /* close is asynchronous: the list stays intact while we walk it */
        for (uint32_t i = 0; i < u->num_conns; i++)
            u->conns[i]->ops->close(u->conns[i], PUSHER_UNAUTHORIZED,
                                    "You got disconnected by the app.");
        break;
    case MSG_USER_ONLINE:
    case MSG_USER_OFFLINE:
        notify_watchers(u, kind == MSG_USER_ONLINE);
        break;
    default:
        break;
    }
}

bool hub_signin(subscriber *s, const char *user_id, size_t len, const char *const *watch_ids,
                const size_t *watch_lens, size_t num_watch)
{
    hub_app *app = s->app;
    hub *h = app->hub;
    if (s->user)
        return s->user->id_len == len && memcmp(s->user->id, user_id, len) == 0;
    hub_user *u = user_get_or_create(app, user_id, len);
    push_sub(&u->conns, &u->num_conns, &u->conns_cap, s);
    s->user = u;
    if (directory_user_online(h->dir, app->index, user_id, len, 1) == 1)
        group_send(app, MSG_USER_ONLINE, user_id, len, NULL, NULL);

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
        bool is_online = directory_user_online(h->dir, app->index, w->id, w->id_len, 0) > 0;
        buf *list = is_online ? &online : &offline;
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

void hub_terminate_user(hub_app *app, const char *id, size_t len)
{
    group_send(app, MSG_TERMINATE_USER, id, len, NULL, NULL);
}

void hub_detach(subscriber *s)
{
    hub_app *app = s->app;
    if (!app)
        return;
    while (s->num_slots > 0)
        unsubscribe_slot(s, s->num_slots - 1);
    if (s->slots != &s->first_slot)
        free(s->slots);
    s->slots = NULL;
    s->slots_cap = 0;

    if (s->user) {
        hub_user *u = s->user;
        remove_sub(u->conns, &u->num_conns, s);
        s->user = NULL;
        if (directory_user_online(app->hub->dir, app->index, u->id, u->id_len, -1) == 0) {
            char id[160];
            size_t n = u->id_len < sizeof(id) ? u->id_len : sizeof(id);
            memcpy(id, u->id, n);
            user_release(app, u);
            group_send(app, MSG_USER_OFFLINE, id, n, NULL, NULL);
        } else {
            user_release(app, u);
        }
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
    directory_add_connection(app->hub->dir, app->index, -1);
    s->app = NULL;
}

void hub_sweep(hub *h)
{
    directory_sweep(h->dir);
}

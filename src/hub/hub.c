/* hub — lifecycle: a worker's hub, its apps, attaching and detaching
 * subscribers, and the helpers the other hub files share. */
#include <sys/random.h>
#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"
#include "protocol/errors.h"
#include "protocol/pusher_msg.h"
#include "util/buf.h"
#include "util/json_write.h"

hub *hub_new(const hk_config *cfg, uint32_t socket_prefix)
{
    hub *h = xcalloc(1, sizeof(*h));
    h->cfg = cfg;
    h->socket_prefix = socket_prefix;
    h->num_apps = cfg->num_apps;
    h->apps = xcalloc(cfg->num_apps ? cfg->num_apps : 1, sizeof(*h->apps));
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
    pthread_mutex_init(&h->replies.lock, NULL);
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
    for (size_t i = 0; i < num_peers; i++)
        if (peers[i] == h)
            h->peer_index = i;
    h->wake = wake;
    h->wake_ctx = wake_ctx;
}

void hub_free(hub *h)
{
    if (!h)
        return;
    for (size_t a = 0; a < h->num_apps; a++) {
        hub_app *app = &h->apps[a];
        for (size_t i = 0; i < app->channels.cap; i++)
            if (app->channels.slots[i].key)
                hub_channel_free(app->channels.slots[i].value);
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
    for (size_t i = 0; i < h->inbox.count; i++) {
        if (h->inbox.items[i].kind == MSG_CALL)
            h->inbox.items[i].call(NULL, h->inbox.items[i].arg); /* frees its work only */
        hub_msg_free(&h->inbox.items[i]);
    }
    free(h->inbox.items);
    pthread_mutex_destroy(&h->inbox.lock);
    for (size_t i = 0; i < h->replies.count; i++)
        h->replies.items[i].call(NULL, h->replies.items[i].arg); /* frees its work only */
    free(h->replies.items);
    pthread_mutex_destroy(&h->replies.lock);
    if (h->owns_dir)
        directory_free(h->dir);
    free(h->apps);
    free(h);
}

hub_app *hub_app_of(hub *h, const hk_app *app)
{
    return &h->apps[app - h->cfg->apps];
}

void hub_observe(hub *h, hub_observer_fn fn, void *ctx)
{
    if (h->num_observers == HUB_MAX_OBSERVERS)
        abort(); /* a wiring mistake, found at start */
    h->observers[h->num_observers].fn = fn;
    h->observers[h->num_observers].ctx = ctx;
    h->num_observers++;
}

void hub_emit(hub_app *app, const hub_event *ev)
{
    hub *h = app->hub;
    for (size_t i = 0; i < h->num_observers; i++)
        h->observers[i].fn(h->observers[i].ctx, app->cfg, ev);
}

void hub_send_payload(subscriber *s, const buf *payload)
{
    frame *f = frame_message(payload->data, payload->len);
    s->ops->send(s, f);
    frame_unref(f);
}

void hub_broadcast(hub_channel *ch, frame *f, const subscriber *except)
{
    for (uint32_t i = 0; i < ch->num_subs; i++) {
        subscriber *s = ch->subs[i].sub;
        if (s != except)
            s->ops->send(s, f);
    }
}

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
        int n = snprintf(s->socket_id, sizeof(s->socket_id), "%u.%llu", app->hub->socket_prefix,
                         (unsigned long long)r);
        s->socket_id_len = (uint8_t)n;
        if (!strmap_get(&app->sockets, s->socket_id, (size_t)n))
            break;
    }
    strmap_put(&app->sockets, s->socket_id, s->socket_id_len, s);
    directory_add_connection(app->hub->dir, app->index, 1);
}

subscriber *hub_find_socket(hub_app *app, const char *socket_id, size_t len)
{
    return strmap_get(&app->sockets, socket_id, len);
}

void hub_detach(subscriber *s)
{
    hub_app *app = s->app;
    if (!app)
        return;
    while (s->num_slots > 0)
        hub_unsubscribe_slot(s, s->num_slots - 1);
    if (s->slots != &s->first_slot)
        free(s->slots);
    s->slots = NULL;
    s->slots_cap = 0;

    hub_user_detach(s);

    strmap_remove(&app->sockets, s->socket_id, s->socket_id_len);
    directory_add_connection(app->hub->dir, app->index, -1);
    hub_event ev = {.kind = HUB_CONNECTION_CLOSED, .socket_id = s->socket_id};
    hub_emit(app, &ev);
    s->app = NULL;
}

void hub_sweep(hub *h)
{
    directory_sweep(h->dir);
}

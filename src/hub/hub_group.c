/* hub_group — the workers' hubs as one: messages between them (publish,
 * user delivery, terminate, watchlist changes) through each hub's inbox. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"
#include "protocol/errors.h"
#include "protocol/pusher_msg.h"
#include "util/buf.h"
#include "util/json_write.h"

void hub_msg_free(hub_msg *m)
{
    if (m->f)
        frame_unref(m->f);
    free(m->name);
}

static bool queue_add(hub_inbox *q, hub_msg m)
{
    pthread_mutex_lock(&q->lock);
    if (q->count == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->items = xrealloc(q->items, q->cap * sizeof(hub_msg));
    }
    q->items[q->count++] = m;
    bool first = q->count == 1;
    pthread_mutex_unlock(&q->lock);
    return first;
}

/* Takes every message of q (the caller frees the array); *count says how many. */
static hub_msg *queue_take(hub_inbox *q, size_t *count)
{
    pthread_mutex_lock(&q->lock);
    hub_msg *items = q->items;
    *count = q->count;
    q->items = NULL;
    q->count = 0;
    q->cap = 0;
    pthread_mutex_unlock(&q->lock);
    return items;
}

static void inbox_add(hub *to, hub_msg m)
{
    if (queue_add(&to->inbox, m) && to->wake)
        to->wake(to->wake_ctx);
}

static void inbox_push(hub *to, uint8_t kind, size_t app, const char *name, size_t len, frame *f,
                       const char *except)
{
    hub_msg m = {.kind = kind, .app = (uint32_t)app, .f = f ? frame_ref(f) : NULL};
    m.name = xmalloc(len + 1);
    memcpy(m.name, name, len);
    m.name[len] = '\0';
    m.name_len = len;
    if (except)
        snprintf(m.except, sizeof(m.except), "%s", except);
    inbox_add(to, m);
}

void hub_post(hub *h, hub_call_fn fn, void *arg)
{
    inbox_add(h, (hub_msg){.kind = MSG_CALL, .call = fn, .arg = arg});
}

void hub_post_reply(hub *h, hub_call_fn fn, void *arg)
{
    bool first = queue_add(&h->replies, (hub_msg){.kind = MSG_CALL, .call = fn, .arg = arg});
    atomic_store_explicit(&h->replies_waiting, true, memory_order_release);
    if (first && h->wake)
        h->wake(h->wake_ctx);
}

size_t hub_poll_replies(hub *h)
{
    if (!atomic_load_explicit(&h->replies_waiting, memory_order_acquire))
        return 0;
    return hub_drain_replies(h);
}

size_t hub_drain_replies(hub *h)
{
    /* cleared before the take: a reply posted after it sets the flag again */
    atomic_store_explicit(&h->replies_waiting, false, memory_order_seq_cst);
    size_t count;
    hub_msg *items = queue_take(&h->replies, &count);
    for (size_t i = 0; i < count; i++)
        items[i].call(h, items[i].arg);
    free(items);
    return count;
}

void hub_publish_posted(hub *any, size_t app, const char *name, size_t len, frame *f,
                        const char *except_socket_id)
{
    channel_kind kind = channel_classify(name, len);
    uint8_t msg = MSG_PUBLISH;
    uint64_t interested = ~0ull;
    if (kind.type == CHANNEL_USER) {
        size_t prefix = sizeof(CHANNEL_USER_PREFIX) - 1;
        name += prefix;
        len -= prefix;
        msg = MSG_PUBLISH_USER;
    } else {
        if (kind.cache)
            directory_cache_store(any->dir, app, name, len, f, any->cfg->apps[app].cache_ttl);
        if (any->num_peers <= 64)
            interested = directory_interest(any->dir, app, name, len);
    }
    size_t n = any->num_peers ? any->num_peers : 1; /* a hub on its own is its only peer */
    for (size_t i = 0; i < n; i++) {
        if (!(interested >> i & 1))
            continue;
        hub *to = any->num_peers ? any->peers[i] : any;
        frame *copy = n > 1 ? frame_copy(f) : frame_ref(f);
        inbox_push(to, msg, app, name, len, copy, except_socket_id);
        frame_unref(copy);
    }
}

/* Runs kind on this hub now and on every other hub through its inbox. The
 * excluded connection is named by socket id: it may live on any worker. */
void hub_group_send_except_id(hub_app *app, uint8_t kind, const char *name, size_t len, frame *f,
                              const char *except_id)
{
    hub *self = app->hub;
    /* A publish goes only to workers with a subscriber to the channel. */
    uint64_t interested = ~0ull;
    if ((kind == MSG_PUBLISH || kind == MSG_PUBLISH_OTHERS) && self->num_peers > 1 &&
        hub_worker_bit(self)) {
        const char *nl = kind == MSG_PUBLISH_OTHERS ? memchr(name, '\n', len) : NULL;
        interested =
            directory_interest(self->dir, app->index, name, nl ? (size_t)(nl - name) : len);
    }
    for (size_t i = 0; i < self->num_peers; i++) {
        if (self->peers[i] == self || !(interested >> i & 1))
            continue;
        /* One copy per worker (never per subscriber): each worker then counts
         * references on its own cache line instead of all workers contending
         * for one atomic counter during fan-out. */
        frame *copy = f ? frame_copy(f) : NULL;
        inbox_push(self->peers[i], kind, app->index, name, len, copy, except_id);
        if (copy)
            frame_unref(copy);
    }
    const subscriber *except =
        except_id ? hub_find_socket(app, except_id, strlen(except_id)) : NULL;
    hub_local_deliver(self, kind, app->index, name, len, f, except);
}

void hub_group_send(hub_app *app, uint8_t kind, const char *name, size_t len, frame *f,
                    const subscriber *except)
{
    hub_group_send_except_id(app, kind, name, len, f, except ? except->socket_id : NULL);
}

void hub_group_publish_payload(hub_app *app, const char *channel, size_t len, const buf *payload,
                               const subscriber *except)
{
    frame *f = frame_message(payload->data, payload->len);
    hub_group_send(app, MSG_PUBLISH, channel, len, f, except);
    frame_unref(f);
}

void hub_drain_inbox(hub *h)
{
    size_t count;
    hub_msg *items = queue_take(&h->inbox, &count);
    for (size_t i = 0; i < count; i++) {
        hub_msg *m = &items[i];
        if (m->kind == MSG_CALL) {
            m->call(h, m->arg);
            continue;
        }
        hub_app *app = &h->apps[m->app];
        const subscriber *except =
            m->except[0] ? hub_find_socket(app, m->except, strlen(m->except)) : NULL;
        hub_local_deliver(h, m->kind, m->app, m->name, m->name_len, m->f, except);
        hub_msg_free(m);
    }
    free(items);
}

void hub_local_deliver(hub *h, uint8_t kind, size_t app_idx, const char *name, size_t len, frame *f,
                       const subscriber *except)
{
    hub_app *app = &h->apps[app_idx];
    if (kind == MSG_PUBLISH) {
        hub_channel *ch = hub_channel_find(app, name, len);
        if (ch)
            hub_broadcast(ch, f, except);
        return;
    }
    if (kind == MSG_PUBLISH_OTHERS) {
        const char *nl = memchr(name, '\n', len);
        size_t channel_len = nl ? (size_t)(nl - name) : len;
        hub_channel *ch = hub_channel_find(app, name, channel_len);
        const hub_user *skip = nl ? hub_user_find(app, nl + 1, len - channel_len - 1) : NULL;
        for (uint32_t i = 0; ch && i < ch->num_subs; i++) {
            subscriber *s = ch->subs[i].sub;
            if (s != except && (!skip || s->user != skip))
                s->ops->send(s, f);
        }
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
        hub_notify_watchers(u, kind == MSG_USER_ONLINE);
        break;
    default:
        break;
    }
}

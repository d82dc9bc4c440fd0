/* hub — channels, subscriptions, presence members, cache channels and
 * signed-in users of every app. The subscription core.
 *
 * The hub knows nothing of WebSocket: it talks to a subscriber through two
 * operations (queue a frame, close with a code), so a WebSocket connection,
 * an HTTP stream or a remote node can all subscribe. Fan-out queues a
 * reference to one shared frame per subscriber; nothing is allocated or
 * encoded per subscriber.
 *
 * One hub belongs to one event-loop thread (a worker) and holds that
 * worker's subscribers. What all workers must agree on (subscription
 * totals, presence members, cached events, who is online) lives in the
 * shared directory (hub/directory.h). A publish is fanned out by the
 * publishing worker to its own subscribers and handed to every other
 * worker's inbox as one message carrying a reference to the same frame. */
#ifndef HARK_HUB_HUB_H
#define HARK_HUB_HUB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "config/config.h"
#include "hub/directory.h"
#include "util/frame.h"
#include "protocol/channel_name.h"
#include "util/strmap.h"

typedef struct hub hub;
typedef struct hub_app hub_app;
typedef struct hub_channel hub_channel;
typedef struct hub_member hub_member;
typedef struct hub_user hub_user;
typedef struct subscriber subscriber;

typedef struct subscriber_ops {
    /* Queue f for sending; the callee takes its own reference. */
    void (*send)(subscriber *s, frame *f);
    /* Send pusher:error {code, message} and close with code (asynchronously:
     * the subscriber stays attached until its owner detaches it). */
    void (*close)(subscriber *s, int code, const char *message);
} subscriber_ops;

/* One of a subscriber's subscriptions; pos is its index in the channel. */
typedef struct sub_slot {
    hub_channel *channel;
    uint32_t pos;
    bool typing;        /* this connection last said its user is typing here */
    hub_member *member; /* presence channels */
} sub_slot;

struct subscriber {
    const subscriber_ops *ops;
    hub_app *app;
    sub_slot *slots; /* first_slot, or the heap from the second subscription */
    uint32_t num_slots, slots_cap;
    sub_slot first_slot;
    hub_user *user; /* signed in as */
    hub_user **watching;
    uint32_t num_watching;
    uint8_t socket_id_len;
    char socket_id[31];
};

/* A channel's subscriber; slot is the index in subscriber->slots. */
typedef struct channel_sub {
    subscriber *sub;
    uint32_t slot;
} channel_sub;

/* A presence member as seen by this worker (user_info lives in the
 * directory, which keeps the first one). */
struct hub_member {
    uint32_t conns; /* this worker's subscriptions of the user to the channel */
    uint32_t id_len;
    char id[];
};

struct hub_channel {
    hub_app *app;
    channel_kind kind;
    uint32_t name_len;
    channel_sub *subs;
    uint32_t num_subs, subs_cap;
    strmap members; /* presence: user id → hub_member */
    frame *cached;  /* cache channels: last event as sent */
    uint64_t cached_until_ms;
    char name[];
};

struct hub_user {
    subscriber **conns; /* connections signed in as this user */
    uint32_t num_conns, conns_cap;
    subscriber **watchers; /* connections whose watchlist has this user */
    uint32_t num_watchers, watchers_cap;
    uint32_t id_len;
    char id[];
};

/* What observers see (webhooks now; history, metrics and a cluster bus
 * later), in the order it happens on the hub's thread. */
enum hub_event_kind {
    HUB_CHANNEL_OCCUPIED,   /* a channel's subscriptions went 0 → 1 (all workers) */
    HUB_CHANNEL_VACATED,    /* 1 → 0 */
    HUB_MEMBER_ADDED,       /* a user's first subscription to a presence channel */
    HUB_MEMBER_REMOVED,     /* the user's last one ended */
    HUB_CLIENT_EVENT,       /* a client-* event relayed (frame: the message as sent) */
    HUB_CACHE_MISS,         /* a cache channel had nothing to replay */
    HUB_SUBSCRIPTION_COUNT, /* the channel's subscription count changed */
    HUB_PUBLISH,            /* an event published to a channel (frame: the message) */
    HUB_CONNECTION_CLOSED,  /* a subscriber left the app (socket_id) */
};

/* One event. Strings are borrowed for the call only; unused fields are
 * NULL / 0. Names come with their whole length; channel (except on
 * HUB_PUBLISH), user_id and event are also NUL-terminated. */
typedef struct hub_event {
    enum hub_event_kind kind;
    const char *channel;
    size_t channel_len;
    const char *user_id; /* member events; client events on presence channels */
    size_t user_id_len;
    const char *event; /* client event name */
    size_t event_len;
    const char *data; /* client event data as JSON text as sent */
    size_t data_len;
    const char *socket_id; /* client events, connection ends */
    long subscription_count;
    const frame *frame; /* publishes and client events */
} hub_event;

/* Called on the hub's thread; must not block (hand work to another thread). */
typedef void (*hub_observer_fn)(void *ctx, const hk_app *app, const hub_event *ev);

#define HUB_MAX_OBSERVERS 4

struct hub_app {
    const hk_app *cfg;
    hub *hub;
    strmap channels; /* name → hub_channel */
    strmap users;    /* id → hub_user (signed in, or watched) */
    strmap sockets;  /* socket id → subscriber */
    size_t index;    /* in cfg->apps and the directory */
};

/* A message from another worker's hub. */
/* Work another thread hands to a hub (hub_post): runs on the hub's thread
 * with h, or with h NULL when the hub is freed first (then it only frees
 * arg). */
typedef void (*hub_call_fn)(hub *h, void *arg);

typedef struct hub_msg {
    uint8_t kind;
    uint32_t app;
    frame *f;
    hub_call_fn call; /* MSG_CALL */
    void *arg;
    char except[32]; /* socket id not to deliver to, "" for none */
    char *name;      /* channel or user id (owned) */
    size_t name_len;
} hub_msg;

typedef struct hub_inbox {
    pthread_mutex_t lock;
    hub_msg *items;
    size_t count, cap;
} hub_inbox;

typedef void (*hub_wake_fn)(void *ctx);

struct hub {
    const hk_config *cfg;
    hub_app *apps; /* index-aligned with cfg->apps */
    size_t num_apps;
    uint32_t socket_prefix; /* first part of socket ids: node and worker */
    struct {
        hub_observer_fn fn;
        void *ctx;
    } observers[HUB_MAX_OBSERVERS];
    size_t num_observers;
    directory *dir;
    bool owns_dir;
    hub **peers; /* every hub of the server, this one included */
    size_t num_peers;
    size_t peer_index; /* this hub's place in peers (its bit in directory_interest) */
    hub_wake_fn wake;  /* wakes this hub's loop to drain its inbox */
    void *wake_ctx;
    hub_inbox inbox;
    hub_inbox replies;           /* hub_post_reply */
    atomic_bool replies_waiting; /* checked without the lock, mid-flush */
};

/* A hub on its own (one worker, private directory). socket_prefix is the
 * first part of its socket ids, unique to the worker and its node. */
hub *hub_new(const hk_config *cfg, uint32_t socket_prefix);
/* Adds an observer of every event (at most HUB_MAX_OBSERVERS). */
void hub_observe(hub *h, hub_observer_fn fn, void *ctx);
/* Joins a group of workers sharing dir (replaces the private directory).
 * peers must outlive the hub; wake is called from other threads. */
void hub_join_group(hub *h, directory *dir, hub **peers, size_t num_peers, hub_wake_fn wake,
                    void *wake_ctx);
void hub_free(hub *h);
/* Handles what other workers sent (on this hub's thread). */
void hub_drain_inbox(hub *h);
hub_app *hub_app_of(hub *h, const hk_app *app);

/* Attaches a new subscriber to an app and gives it a unique socket id. */
void hub_attach(hub_app *app, subscriber *s, const subscriber_ops *ops);
/* Unsubscribes everything, signs out, forgets the socket id. */
void hub_detach(subscriber *s);
subscriber *hub_find_socket(hub_app *app, const char *socket_id, size_t len);

typedef struct hub_presence_join {
    const char *user_id;
    size_t user_id_len;
    const char *user_info; /* compact JSON text */
    size_t user_info_len;
} hub_presence_join;

enum hub_subscribe_result {
    HUB_SUBSCRIBED = 0,
    HUB_ALREADY_SUBSCRIBED, /* subscription_succeeded is sent again */
    HUB_MEMBER_LIMIT,       /* presence channel is full */
};

/* Subscribes (name already validated and authorized) and sends what follows:
 * subscription_succeeded, the cached event or cache_miss, member_added to the
 * others, subscription_count. join is required for presence channels. With
 * cached not NULL, the cached event is not sent but handed to *cached (a
 * reference, or NULL when there is none): a resume decides whether its
 * replay already carries it. */
enum hub_subscribe_result hub_subscribe(subscriber *s, const char *name, size_t len,
                                        channel_kind kind, const hub_presence_join *join,
                                        frame **cached);
/* Returns false when s was not subscribed. */
bool hub_unsubscribe(subscriber *s, const char *name, size_t len);
/* The subscription of s to name, or NULL. */
sub_slot *hub_subscription(subscriber *s, const char *name, size_t len);

/* This worker's part of a channel, or NULL. */
hub_channel *hub_channel_find(hub_app *app, const char *name, size_t len);
/* Queues f for every subscriber of the channel, on every worker, except the
 * connection with socket id except_socket_id (may be NULL), remembering it on cache channels.
 * "#server-to-user-<id>" reaches every connection signed in as <id>. */
void hub_publish(hub_app *app, const char *name, size_t len, frame *f,
                 const char *except_socket_id);
/* A client event from s on its subscribed channel: relayed (unless f is
 * NULL: someone else delivers it) and reported to observers. */
void hub_client_event(subscriber *s, sub_slot *slot, frame *f, const char *event, size_t event_len,
                      const char *data, size_t data_len);

/* Signs s in as user_id, watching the given ids; sends the watchlist's
 * current online state. Returns false if s is signed in as another user. */
bool hub_signin(subscriber *s, const char *user_id, size_t len, const char *const *watch_ids,
                const size_t *watch_lens, size_t num_watch);
hub_user *hub_user_find(hub_app *app, const char *id, size_t len);
/* Closes every connection signed in as user_id, on every worker, with 4009. */
void hub_terminate_user(hub_app *app, const char *id, size_t len);

/* Any thread: runs fn(h, arg) on h's thread, after what was posted to h
 * before it. */
void hub_post(hub *h, hub_call_fn fn, void *arg);
/* Any thread: like hub_post, for an answer that nothing posted before it
 * has to precede (a deferred HTTP answer): the worker also runs these in
 * the middle of a long flush (hub_drain_replies), so an answer does not
 * wait behind the fan-out of thousands of connections. */
void hub_post_reply(hub *h, hub_call_fn fn, void *arg);
/* Runs the replies posted so far; returns how many ran. */
size_t hub_drain_replies(hub *h);
/* The same, after a check without the lock (for the middle of a flush: a
 * reply posted at that instant waits for the drain that its wake-up or the
 * iteration's end makes, which always takes the lock). */
size_t hub_poll_replies(hub *h);
/* Any thread: delivers f on channel name through the inbox of every
 * worker with a subscriber (this hub's own included), in the order of the
 * calls, except to except_socket_id; remembers it on cache channels. A
 * caller that serializes its calls (the history thread) so delivers every
 * channel's events in one order on every worker. */
void hub_publish_posted(hub *any, size_t app, const char *name, size_t len, frame *f,
                        const char *except_socket_id);

/* Frees vacant channels whose cached event has expired (directory). */
void hub_sweep(hub *h);

/* --- typing (hub_typing.c) --- */

/* s (signed in) says its user is typing, or stopped, on its subscription
 * slot: the channel's other users hear {"user_id","typing"} as hark:typing
 * when that changes what they know (first start, a renewal after the
 * app's typing_throttle_ms, a stop). Never stored. */
void hub_typing(subscriber *s, sub_slot *slot, bool typing);
/* Ends the typing states past the app's typing_ttl_ms (hark:typing false
 * to their channels); once a second from one worker. */
void hub_typing_expire(hub *h);

#endif

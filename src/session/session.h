/* session — one Pusher client, whatever carries it: the connection checks,
 * pusher:* events, subscriptions, client events and sign-in. Each handler
 * lives in its own file (handle_*.c).
 *
 * A session knows nothing of sockets. It reaches its client through a
 * transport (three operations: queue a frame, close with a code, how much
 * is unsent), so a WebSocket (transport/ws_transport.c) and an HTTP
 * transport that spans several requests use the same session. The
 * transport owns the session's memory (the WebSocket keeps it inside its
 * connection) and reports time: every call that needs the clock takes now.
 *
 * Where the rules live: the session owns what the Pusher protocol says
 * (activity, the sign-in deadline, client-event rates, channel limits);
 * the transport owns how bytes move (keep-alive pings, the slow-consumer
 * bound on unsent bytes, write deadlines). */
#ifndef HARK_SESSION_SESSION_H
#define HARK_SESSION_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history/history.h"
#include "hub/hub.h"
#include "util/frame.h"

typedef struct session session;
typedef struct session_replay session_replay;

/* What a session needs of the transport carrying it. */
typedef struct session_transport {
    /* Queue a Pusher message (f's payload is the JSON); takes its own
     * reference. The transport frames it on the way out. */
    void (*send)(session *s, frame *f);
    /* Close with a Pusher close code; the session has already sent the
     * pusher:error that says why. reason is valid UTF-8. */
    void (*close)(session *s, int code, const char *reason);
    /* Bytes queued and not yet written: what a session checks before it
     * queues a long run of events of its own (a replay). */
    size_t (*unsent)(const session *s);
    /* Optional (NULL: none). A transport that tells its client where it is
     * in each kept channel (SSE: the stream's Last-Event-ID) gets, for
     * every kept channel subscribed without since, its position "now"
     * (the id of the newest event then, `…0000000000` when none), after
     * which every later event of the channel is sent. */
    void (*position)(session *s, const char *channel, size_t len, const char *id);
} session_transport;

/* The session's state. Transports allocate it and call session_init; the
 * fields are the session's own. */
struct session {
    subscriber sub; /* first: the hub's subscriber * is a session * */
    const session_transport *transport;
    hub *hub;
    history *history;
    session_replay *replays; /* resumes in progress (pusher:subscribe with since), in order */
    size_t replay_held;      /* bytes of live copies held back for them */
    bool attached;           /* sub is attached to a hub app */
    bool closed;             /* session_close was called: nothing more is sent */
    uint16_t chat_pending;   /* hark:read / hark:unread waiting for the history thread */
    uint32_t rate_count;
    uint64_t rate_window_ms;   /* start of the current client-event second */
    uint64_t auth_deadline_ms; /* user_authentication_required: 0 = satisfied */
    char *user_info;           /* signed-in user's user_info JSON, for presence */
    /* The socket id the client's authorizations sign when it is not the
     * session's own (an event stream signs a token of its URL; the
     * transport owns the string); NULL = own. */
    const char *signed_id;
};

/* The socket id authorizations must sign. */
static inline const char *session_signed_id(const session *s)
{
    return s->signed_id ? s->signed_id : s->sub.socket_id;
}

/* A fresh session of a worker's hub and history, carried by t (nothing is
 * sent yet). */
void session_init(session *s, const worker_services *w, const session_transport *t);

/* The checks before a session starts: the app key (key_len bytes, from the
 * transport's path), the app being enabled, the protocol query parameter.
 * Returns 0 and sets *app, or a close code with why in message. */
int session_admit(hub *h, const char *key, size_t key_len, const char *query, size_t query_len,
                  const hk_app **app, char *message, size_t cap);

/* Starts an admitted session: checks the app's connection quota, attaches
 * to the hub and sends pusher:connection_established. Returns false when
 * the session was closed instead. */
bool session_start(session *s, const hk_app *app, uint64_t now_ms);

/* One Pusher message from the client (JSON text; data may be modified). */
void session_receive(session *s, char *data, size_t len, uint64_t now_ms);

/* Periodic checks (user_authentication_required), at least every second. */
void session_tick(session *s, uint64_t now_ms);

/* The client is gone or closed: unsubscribes everything, frees what the
 * session holds (not the session itself: the transport owns it). */
void session_end(session *s);

/* Sends pusher:error {code, message} (code 0 → null). */
void session_send_error(session *s, int code, const char *message);
/* Sends pusher:error {code, message}, then closes the transport with code.
 * Once only; later calls do nothing. */
void session_close(session *s, int code, const char *message);
/* Queues one Pusher message (JSON text, copied). */
void session_send_text(session *s, const char *json, size_t len);

#endif

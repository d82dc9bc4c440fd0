/* session_internal — what the session's event handlers share. */
#ifndef HARK_SESSION_SESSION_INTERNAL_H
#define HARK_SESSION_SESSION_INTERNAL_H

#include "net/conn.h"
#include "protocol/pusher_msg.h"
#include "session/session.h"

/* Per-connection Pusher state, in the connection's extension area. */
typedef struct session {
    subscriber sub; /* first: the hub's subscriber * is a session * */
    bool attached;  /* sub is attached to a hub app */
    uint32_t rate_count;
    uint64_t rate_window_ms;   /* start of the current client-event second */
    uint64_t auth_deadline_ms; /* user_authentication_required: 0 = satisfied */
    char *user_info;           /* signed-in user's user_info JSON, for presence */
} session;

static inline session *session_of(conn *c)
{
    return conn_ext(c);
}

static inline conn *session_conn(subscriber *s)
{
    return conn_from_ext(s);
}

void handle_subscribe(conn *c, const pusher_msg *m);
void handle_unsubscribe(conn *c, const pusher_msg *m);
void handle_client_event(conn *c, const pusher_msg *m);
void handle_signin(conn *c, const pusher_msg *m);

void session_subscription_error(conn *c, const char *channel, size_t channel_len, const char *type,
                                const char *error, int status);

#endif

/* session_internal — what the session's event handlers share. */
#ifndef HARK_SESSION_SESSION_INTERNAL_H
#define HARK_SESSION_SESSION_INTERNAL_H

#include "net/conn.h"
#include "protocol/pusher_msg.h"
#include "session/session.h"

static inline conn *session_conn(subscriber *s)
{
    return (conn *)s; /* subscriber is conn's first member */
}

void handle_subscribe(conn *c, const pusher_msg *m);
void handle_unsubscribe(conn *c, const pusher_msg *m);
void handle_client_event(conn *c, const pusher_msg *m);
void handle_signin(conn *c, const pusher_msg *m);

void session_subscription_error(conn *c, const char *channel, const char *type, const char *error,
                                int status);

#endif

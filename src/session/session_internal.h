/* session_internal — what the session's event handlers share. */
#ifndef HARK_SESSION_SESSION_INTERNAL_H
#define HARK_SESSION_SESSION_INTERNAL_H

#include "protocol/pusher_msg.h"
#include "session/session.h"

void handle_subscribe(session *s, const pusher_msg *m);
void handle_unsubscribe(session *s, const pusher_msg *m);
void handle_client_event(session *s, const pusher_msg *m, uint64_t now_ms);
void handle_signin(session *s, const pusher_msg *m);

void session_subscription_error(session *s, const char *channel, size_t channel_len,
                                const char *type, const char *error, int status);

#endif

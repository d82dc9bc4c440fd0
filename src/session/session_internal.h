/* session_internal — what the session's event handlers share. */
#ifndef HARK_SESSION_SESSION_INTERNAL_H
#define HARK_SESSION_SESSION_INTERNAL_H

#include "protocol/pusher_msg.h"
#include "session/session.h"

void handle_subscribe(session *s, const pusher_msg *m);
void handle_unsubscribe(session *s, const pusher_msg *m);
void handle_client_event(session *s, const pusher_msg *m, uint64_t now_ms);
void handle_signin(session *s, const pusher_msg *m);

/* --- chat state (handle_chat.c) --- */
void handle_read(session *s, const pusher_msg *m);
void handle_unread(session *s, const pusher_msg *m);
void handle_typing(session *s, const pusher_msg *m);
/* s (when signed in) subscribed to name: remembered for unread counts. */
void session_note_member(session *s, const char *name, size_t len);

/* --- resume (session_replay.c) --- */

/* After subscription_succeeded: starts replaying name's events after since
 * (or answers hark:resumed recovered:false at once). Takes cached, the
 * cache channel's last event or NULL: dropped when the replay recovers (it
 * carried it, or since is at or after it), else sent after hark:resumed. */
void session_resume(session *s, const char *name, size_t len, const char *since, size_t since_len,
                    bool since_is_string, frame *cached);
/* Without since, on a transport with a position: asks where "now" is in
 * name (as a resume that replays nothing and sends no hark:resumed), and
 * gives it to the transport. */
void session_position(session *s, const char *name, size_t len);
/* A live frame: held back when its channel is being replayed. */
bool session_replay_holds(session *s, frame *f);
/* The subscription to name ended: its replay, if any, is dropped. */
void session_replay_cancel(session *s, const char *name, size_t len);
/* Sends more of the replays whose output was over budget. */
void session_replay_pump_all(session *s);
void session_replay_free_all(session *s);

void session_subscription_error(session *s, const char *channel, size_t channel_len,
                                const char *type, const char *error, int status);

#endif

/* hub_internal — what the hub's files (hub.c, hub_channels.c, hub_group.c,
 * hub_users.c) share; not for other layers. */
#ifndef HARK_HUB_HUB_INTERNAL_H
#define HARK_HUB_HUB_INTERNAL_H

#include <stdlib.h>

#include "hub/hub.h"
#include "util/buf.h"
#include "util/xalloc.h"

enum hub_msg_kind {
    MSG_PUBLISH,        /* fan f out on channel name */
    MSG_PUBLISH_USER,   /* deliver f to connections signed in as name */
    MSG_TERMINATE_USER, /* close connections signed in as name with 4009 */
    MSG_USER_ONLINE,    /* tell watchers of name */
    MSG_USER_OFFLINE,
    MSG_CALL,           /* run call(arg) */
    MSG_PUBLISH_OTHERS, /* fan f out on a channel but not to a user: name is
                         * "<channel>\n<user>" */
};

/* hub.c */
void hub_emit(hub_app *app, const hub_event *ev);

/* This hub's bit in the directory's per-channel worker interest (0 when
 * the group is too large for a 64-bit set: then every worker is sent to). */
static inline uint64_t hub_worker_bit(const hub *h)
{
    return h->num_peers <= 64 ? 1ull << h->peer_index : 0;
}
void hub_send_payload(subscriber *s, const buf *payload);
void hub_broadcast(hub_channel *ch, frame *f, const subscriber *except);

/* hub_group.c: kind runs on this hub now and on every other hub through its
 * inbox; the excluded connection is named by socket id (it may live on any
 * worker). */
void hub_group_send_except_id(hub_app *app, uint8_t kind, const char *name, size_t len, frame *f,
                              const char *except_id);
void hub_group_send(hub_app *app, uint8_t kind, const char *name, size_t len, frame *f,
                    const subscriber *except);
void hub_group_publish_payload(hub_app *app, const char *channel, size_t len, const buf *payload,
                               const subscriber *except);
void hub_local_deliver(hub *h, uint8_t kind, size_t app_idx, const char *name, size_t len, frame *f,
                       const subscriber *except);
void hub_msg_free(hub_msg *m);

/* hub_channels.c */
void hub_channel_free(hub_channel *ch);
/* Removes subscription i of s, with its presence and webhook effects. */
void hub_unsubscribe_slot(subscriber *s, uint32_t i);

/* hub_typing.c: the subscription of s in slot ends. */
void hub_typing_left(subscriber *s, const sub_slot *slot);

/* hub_users.c */
void hub_user_release(hub_app *app, hub_user *u);
void hub_notify_watchers(hub_user *u, bool online);
void hub_user_detach(subscriber *s);

#endif

/* session_replay — resume on subscribe: a pusher:subscribe with "since"
 * gets the channel's kept events after that id, then hark:resumed, then
 * live events, with no gap and no duplicate.
 *
 * The subscription is made first, so every event sequenced after the
 * history thread answers reaches this session live. Until the answer
 * arrives, live copies of the channel's kept events are held back; the
 * answer says up to which sequence number it replays, and held copies at
 * or below it are dropped as duplicates. The replay is sent as fast as the
 * transport takes it (half of max_output_bytes unsent at most, the rest at
 * the next tick); held copies are bounded by a quarter of max_output_bytes,
 * beyond which the resume is answered recovered:false rather than grow, so
 * a resume alone never makes its client a slow consumer. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/session_internal.h"
#include "util/json_write.h"
#include "util/xalloc.h"

struct session_replay {
    session_replay *next;
    uint64_t stream;
    char *channel;
    size_t channel_len;
    frame **held; /* live copies waiting for the replay */
    uint32_t num_held, cap_held;
    size_t held_bytes;
    bool overflow; /* held copies went over their bound: not recovered */
    bool answered;
    bool recovered;
    char *reason;
    frame **replay; /* the answer's events, sent from `sent` on */
    uint32_t num_replay, sent;
    uint64_t upto;
};

static void replay_free(session_replay *r)
{
    for (uint32_t i = 0; i < r->num_held; i++)
        frame_unref(r->held[i]);
    for (uint32_t i = r->sent; i < r->num_replay; i++)
        frame_unref(r->replay[i]);
    free(r->held);
    free(r->replay);
    free(r->reason);
    free(r->channel);
    free(r);
}

static session_replay *find(session *s, const char *name, size_t len)
{
    for (session_replay *r = s->replays; r; r = r->next)
        if (r->channel_len == len && memcmp(r->channel, name, len) == 0)
            return r;
    return NULL;
}

static void unlink_replay(session *s, session_replay *r)
{
    for (session_replay **p = &s->replays; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

static void send_resumed(session *s, const char *name, size_t len, bool recovered, uint32_t count,
                         const char *reason)
{
    buf data;
    buf_init(&data);
    buf_printf(&data, "{\"recovered\":%s,\"count\":%" PRIu32, recovered ? "true" : "false",
               recovered ? count : 0);
    if (!recovered) {
        buf_append_str(&data, ",\"reason\":");
        json_write_string(&data, reason, strlen(reason));
    }
    buf_append_char(&data, '}');
    buf b;
    buf_init(&b);
    pusher_encode_string_data(&b, PUSHER_LIT("hark:resumed"), name, len, data.data, data.len);
    session_send_text(s, b.data, b.len);
    buf_free(&b);
    buf_free(&data);
}

/* Sends what the transport takes of an answered replay; when all of it
 * is out: hark:resumed and the held live copies, and the replay ends. */
static void pump(session *s, session_replay *r)
{
    size_t budget = s->hub->cfg->max_output_bytes / 2;
    while (r->sent < r->num_replay && !s->closed) {
        if (s->transport->unsent(s) > budget)
            return; /* the rest at the next tick */
        frame *f = r->replay[r->sent++];
        s->transport->send(s, f);
        frame_unref(f);
    }
    if (s->closed)
        return;
    send_resumed(s, r->channel, r->channel_len, r->recovered, r->num_replay, r->reason);
    for (uint32_t i = 0; i < r->num_held; i++) {
        frame *f = r->held[i];
        /* recovered: what the replay carried is a duplicate; not recovered:
         * every held copy is a live event, as without since */
        if (!r->recovered || f->seq > r->upto)
            s->transport->send(s, f);
    }
    unlink_replay(s, r);
    replay_free(r);
}

void session_replay_pump_all(session *s)
{
    session_replay *next;
    for (session_replay *r = s->replays; r; r = next) {
        next = r->next;
        if (r->answered)
            pump(s, r);
    }
}

bool session_replay_holds(session *s, frame *f)
{
    for (session_replay *r = s->replays; r; r = r->next) {
        if (r->stream != f->stream)
            continue;
        if (r->overflow)
            return true; /* dropped: the resume will say recovered:false */
        /* a quarter: sent on top of at most half unsent when the replay ends */
        size_t bound = s->hub->cfg->max_output_bytes / 4;
        if (r->held_bytes + f->len > bound) {
            for (uint32_t i = 0; i < r->num_held; i++)
                frame_unref(r->held[i]);
            r->num_held = 0;
            r->held_bytes = 0;
            r->overflow = true;
            return true;
        }
        if (r->num_held == r->cap_held) {
            r->cap_held = r->cap_held ? r->cap_held * 2 : 16;
            r->held = xrealloc(r->held, r->cap_held * sizeof(*r->held));
        }
        r->held[r->num_held++] = frame_ref(f);
        r->held_bytes += f->len;
        return true;
    }
    return false;
}

void session_replay_cancel(session *s, const char *name, size_t len)
{
    session_replay *r = find(s, name, len);
    if (r) {
        unlink_replay(s, r);
        replay_free(r);
    }
}

void session_replay_free_all(session *s)
{
    while (s->replays) {
        session_replay *r = s->replays;
        s->replays = r->next;
        replay_free(r);
    }
}

/* The history thread's answer, on this worker. */
static void on_resumed(hub *h, const history_resumed *res)
{
    hub_app *app = &h->apps[res->app];
    subscriber *sub = hub_find_socket(app, res->socket_id, strlen(res->socket_id));
    if (!sub)
        return; /* gone meanwhile */
    session *s = (session *)sub;
    session_replay *r = find(s, res->channel, res->channel_len);
    if (!r || r->answered)
        return; /* unsubscribed meanwhile */
    r->answered = true;
    r->recovered = res->recovered && !r->overflow;
    r->upto = res->upto;
    if (r->recovered) {
        r->replay = xcalloc(res->count ? res->count : 1, sizeof(*r->replay));
        for (uint32_t i = 0; i < res->count; i++)
            r->replay[i] = frame_ref(res->frames[i]);
        r->num_replay = res->count;
    } else {
        r->reason =
            xstrdup(r->overflow ? "too many live events arrived during the replay" : res->reason);
    }
    pump(s, r);
}

void session_resume(session *s, const char *name, size_t len, const char *since, size_t since_len,
                    bool since_is_string)
{
    const hk_app *app = s->sub.app->cfg;
    const char *why = NULL;
    if (!since_is_string)
        why = "since: must be a string (an event id)";
    else if (!s->history || !history_rule(app, name, len))
        why = "this channel's events are not kept (see the app's history rules)";
    else if (find(s, name, len))
        why = "a resume of this channel is already in progress";
    if (why) {
        send_resumed(s, name, len, false, 0, why);
        return;
    }
    session_replay *r = xcalloc(1, sizeof(*r));
    r->channel = xmemdup(name, len);
    r->channel_len = len;
    r->stream = frame_stream(name, len);
    r->next = s->replays;
    s->replays = r;
    history_resume(s->history, s->hub, s->sub.app->index, name, len, since, since_len,
                   app->max_replay, s->sub.socket_id, on_resumed);
}

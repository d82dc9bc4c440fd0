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
 * the next tick). Bounds: one resume per connection is asked of the
 * history thread at a time (the others wait their turn, in order; quiet
 * ones, below, bring nothing back and are all asked at once), so a client
 * holds at most one answer (at most max_replay events, and the server at
 * most HISTORY_REPLAY_BUDGET bytes of answers in all); held copies are
 * bounded by a quarter of max_output_bytes per connection, beyond which
 * the resume they belong to answers recovered:false rather than grow (also
 * when that happens while its replay is still being sent), so resuming
 * alone never makes a client a slow consumer.
 *
 * A transport that keeps positions (SSE) has every kept channel it
 * subscribes to without since go the same way from "now" (quiet: nothing
 * replayed, no hark:resumed), so it learns where it is with no gap before
 * the first event. */
#include <inttypes.h>
#include <stdatomic.h>
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
    bool overflow;   /* held copies went over their bound: not recovered */
    bool requested;  /* asked of the history thread (one replay per session at a time) */
    uint64_t ticket; /* of that request: an answer to an earlier one is not this one's */
    bool answered;
    bool recovered;
    char *reason;
    frame **replay; /* the answer's events, sent from `sent` on */
    uint32_t num_replay, sent;
    size_t replay_bytes; /* of the answer's events not yet sent (the server's budget) */
    uint64_t upto;
    char since[HISTORY_ID_MAX + 1];
    size_t since_len;
    bool quiet;                        /* session_position: no since, no hark:resumed */
    char position[HISTORY_ID_MAX + 1]; /* the answer's, when it has one */
    /* a kept cache channel's last event, from before the subscription: not
     * one of the held copies (nothing arrived live, so it never counts
     * against their bound); dropped when the answer recovers (the replay
     * carries it, or since is at or after it), else sent after hark:resumed */
    frame *cached;
};

static void drop_held(session *s, session_replay *r)
{
    for (uint32_t i = 0; i < r->num_held; i++)
        frame_unref(r->held[i]);
    r->num_held = 0;
    s->replay_held -= r->held_bytes;
    r->held_bytes = 0;
}

static void replay_free(session *s, session_replay *r)
{
    drop_held(s, r);
    if (r->cached)
        frame_unref(r->cached);
    for (uint32_t i = r->sent; i < r->num_replay; i++)
        frame_unref(r->replay[i]);
    if (r->replay_bytes)
        history_replay_release(s->history, r->replay_bytes);
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

static void on_resumed(hub *h, const history_resumed *res);

static void ask(session *s, session_replay *r)
{
    static _Atomic uint64_t tickets;
    r->requested = true;
    r->ticket = atomic_fetch_add(&tickets, 1) + 1;
    history_resume(s->history, s->hub, s->sub.app->index, r->channel, r->channel_len,
                   r->quiet ? NULL : r->since, r->since_len, s->transport->position != NULL,
                   s->sub.app->cfg->max_replay, s->sub.socket_id, r->ticket, on_resumed);
}

/* Asks the history thread for the first replay, unless it is asked
 * already. Replays are listed in the order asked and leave the list once
 * sent, so the first is the one in progress: asked, or answered and still
 * being sent. One the client is not reading stays there, and asking for
 * the next beside it would double what is held. Quiet ones (positions)
 * bring no events back, so they are all asked at once: a stream of many
 * channels does not hold the last one's live events through the others'. */
static void request_next(session *s)
{
    bool replay_first = true;
    for (session_replay *r = s->replays; r; r = r->next) {
        if (!r->quiet) {
            if (!replay_first)
                continue;
            replay_first = false;
        }
        if (!r->requested)
            ask(s, r);
    }
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
        r->replay_bytes -= f->len;
        history_replay_release(s->history, f->len);
        s->transport->send(s, f);
        frame_unref(f);
    }
    if (s->closed)
        return;
    if (r->overflow && r->recovered) {
        /* live copies were dropped while the replay was being sent */
        r->recovered = false;
        free(r->reason);
        r->reason = xstrdup("too many live events arrived during the replay");
    }
    if (!r->quiet || !r->recovered) /* a quiet one that failed says so too */
        send_resumed(s, r->channel, r->channel_len, r->recovered, r->num_replay, r->reason);
    uint64_t cached_seq = 0; /* held copies up to it: the same event, sent */
    if (r->cached) {         /* only here when nothing was replayed */
        s->transport->send(s, r->cached);
        cached_seq = r->cached->seq;
    }
    /* The held live copies, in order: at or below upto, the replay carried
     * them when it recovered (duplicates); a quiet one replays nothing, so
     * they are sent. The position (for a transport that keeps one) goes
     * right before the first copy above upto, so it never moves back. */
    bool dropped = r->recovered && !r->quiet;
    bool placed = !r->position[0] || !s->transport->position;
    for (uint32_t i = 0; i < r->num_held; i++) {
        frame *f = r->held[i];
        bool after = f->seq > r->upto;
        if (after && !placed) {
            s->transport->position(s, r->channel, r->channel_len, r->position);
            placed = true;
        }
        if ((after || !dropped) && f->seq > cached_seq)
            s->transport->send(s, f);
    }
    if (!placed)
        s->transport->position(s, r->channel, r->channel_len, r->position);
    unlink_replay(s, r);
    replay_free(s, r);
    request_next(s);
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
        /* a quarter: sent on top of at most half unsent when a replay ends */
        size_t bound = s->hub->cfg->max_output_bytes / 4;
        if (s->replay_held + f->len > bound) {
            drop_held(s, r);
            r->overflow = true;
            return true;
        }
        if (r->num_held == r->cap_held) {
            r->cap_held = r->cap_held ? r->cap_held * 2 : 16;
            r->held = xrealloc(r->held, r->cap_held * sizeof(frame *));
        }
        r->held[r->num_held++] = frame_ref(f);
        r->held_bytes += f->len;
        s->replay_held += f->len;
        return true;
    }
    return false;
}

void session_replay_cancel(session *s, const char *name, size_t len)
{
    session_replay *r = find(s, name, len);
    if (r) {
        unlink_replay(s, r);
        replay_free(s, r);
        request_next(s);
    }
}

void session_replay_free_all(session *s)
{
    while (s->replays) {
        session_replay *r = s->replays;
        s->replays = r->next;
        replay_free(s, r);
    }
}

/* The history thread's answer, on this worker. */
static void on_resumed(hub *h, const history_resumed *res)
{
    hub_app *app = &h->apps[res->app];
    subscriber *sub = hub_find_socket(app, res->socket_id, strlen(res->socket_id));
    if (!sub) {
        history_replay_release(res->hs, res->bytes); /* gone meanwhile */
        return;
    }
    session *s = (session *)sub;
    session_replay *r = find(s, res->channel, res->channel_len);
    if (!r || r->answered || !r->requested || r->ticket != res->ticket) {
        /* unsubscribed meanwhile (a later subscription of the channel has
         * not asked yet, or asked again with its own since) */
        history_replay_release(s->history, res->bytes);
        return;
    }
    r->answered = true;
    r->recovered = res->recovered && !r->overflow;
    if (r->recovered && r->cached) { /* the replay carries it, or since is at or after it */
        frame_unref(r->cached);
        r->cached = NULL;
    }
    r->upto = res->upto;
    if (res->position)
        snprintf(r->position, sizeof(r->position), "%s", res->position);
    if (r->recovered) {
        r->replay = xcalloc(res->count ? res->count : 1, sizeof(frame *));
        for (uint32_t i = 0; i < res->count; i++)
            r->replay[i] = frame_ref(res->frames[i]);
        r->num_replay = res->count;
        r->replay_bytes = res->bytes;
    } else {
        history_replay_release(s->history, res->bytes);
        r->reason =
            xstrdup(r->overflow ? "too many live events arrived during the replay" : res->reason);
    }
    pump(s, r);
}

static void add_replay(session *s, session_replay *r)
{
    session_replay **tail = &s->replays; /* answered in the order asked */
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
    request_next(s);
}

static session_replay *replay_new(const char *name, size_t len)
{
    session_replay *r = xcalloc(1, sizeof(*r));
    r->channel = xmemdup(name, len);
    r->channel_len = len;
    r->stream = frame_stream(name, len);
    return r;
}

void session_position(session *s, const char *name, size_t len)
{
    if (!s->transport->position || !s->history || !history_rule(s->sub.app->cfg, name, len) ||
        find(s, name, len))
        return;
    session_replay *r = replay_new(name, len);
    r->quiet = true;
    add_replay(s, r);
}

void session_resume(session *s, const char *name, size_t len, const char *since, size_t since_len,
                    bool since_is_string, frame *cached)
{
    const hk_app *app = s->sub.app->cfg;
    const char *why = NULL;
    if (!since_is_string)
        why = "since: must be a string (an event id)";
    else if (!s->history || !history_rule(app, name, len))
        why = "this channel's events are not kept (see the app's history rules)";
    else if (find(s, name, len))
        why = "a resume of this channel is already in progress";
    if (!why && since_len > HISTORY_ID_MAX)
        why = "since: not an event id of this server";
    if (why) {
        send_resumed(s, name, len, false, 0, why);
        if (cached) {
            s->sub.ops->send(&s->sub, cached);
            frame_unref(cached);
        }
        return;
    }
    session_replay *r = replay_new(name, len);
    memcpy(r->since, since, since_len);
    r->since_len = since_len;
    r->cached = cached;
    add_replay(s, r);
}

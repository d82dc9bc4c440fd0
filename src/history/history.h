/* history — events kept per channel, their ids, resume and paging.
 *
 * One thread owns the store (store/store.h): it takes requests in the
 * order they were made, writes each batch of appends in one transaction
 * (group commit), and only after the commit delivers the events live
 * (with their ids) through the hubs' inboxes and answers the requester on
 * its own worker (hub_post). Being the one sequencer of every kept
 * channel, it hands every worker a channel's events in id order; a resume
 * request is answered in that same order, so "everything up to id N" is
 * exact (see docs/design.md, History).
 *
 * Ids: "<epoch>.<tag>.<seq>": the channel's epoch (8 characters, new when
 * its history is new), a tag of the app and channel (8 hex digits), and
 * the sequence number (at least 10 digits, zero-padded so ids of one
 * epoch sort as strings too). */
#ifndef HARK_HISTORY_HISTORY_H
#define HARK_HISTORY_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "hub/hub.h"
#include "util/buf.h"
#include "util/frame.h"

#define HISTORY_ID_MAX 64

typedef struct history history;

/* What each worker offers the layers above it (its worker data). */
typedef struct worker_services {
    hub *hub;
    history *history;
} worker_services;

/* Opens the store (data_dir/history.sqlite3) and starts the thread. NULL
 * with why in err. */
history *history_start(const hk_config *cfg, char *err, size_t cap);
/* Finishes what is queued (its answers are posted), stops, closes the store. */
void history_stop(history *hs);

/* Whether id is an event id of app's channel name (its form and tag). */
bool history_id_belongs(const char *id, size_t id_len, const char *app_id, const char *name,
                        size_t len);

/* The rule that keeps name's events for app, or NULL when they are not kept. */
const hk_history_rule *history_rule(const hk_app *app, const char *name, size_t len);

/* --- publishing ------------------------------------------------------------- */

typedef struct history_event {
    const char *channel; /* kept by the app's rules */
    size_t channel_len;
    const char *event;
    size_t event_len;
    const char *data_json; /* the data as delivered: JSON text ("\"…\"" for a string) */
    size_t data_len;
    const char *user_id; /* NULL: none */
    size_t user_id_len;
    const char *except_socket_id; /* not delivered to this connection; NULL: none */
} history_event;

typedef struct history_published {
    size_t count;
    bool stored;       /* false: the store failed; the events went out live, without ids */
    const char *error; /* why, when not stored */
    const char (*ids)[HISTORY_ID_MAX + 1]; /* per event, when stored */
} history_published;

/* Runs on the requester's hub thread (h NULL: cancelled at shutdown). */
typedef void (*history_published_fn)(hub *h, void *ctx, const history_published *r);

/* Keeps app's events (copied) in order, delivers each live after the
 * commit (through from's group of hubs), then calls done on from's thread
 * (done may be NULL). */
void history_publish(history *hs, hub *from, size_t app, const history_event *events, size_t n,
                     history_published_fn done, void *ctx);

/* --- resume ----------------------------------------------------------------- */

/* Bytes of replayed events the whole server may hold in sessions at once
 * (read but not yet handed to a transport); a resume beyond it answers
 * recovered:false. */
#define HISTORY_REPLAY_BUDGET ((size_t)256 << 20)

typedef struct history_resumed {
    history *hs;
    size_t app;
    const char *channel;
    size_t channel_len;
    const char *socket_id; /* who asked */
    bool recovered;
    uint32_t count;       /* events replayed */
    const char *reason;   /* when not recovered */
    frame **frames;       /* the replayed events, as delivered live (borrowed) */
    size_t bytes;         /* their size, counted in the server's replay budget until
                           * the session calls history_replay_release */
    uint64_t upto;        /* newest seq replayed or known: live copies at or below are duplicates */
    const char *position; /* asked for: the id of upto, where the subscriber now is */
    uint64_t ticket;      /* the request's, as given */
} history_resumed;

typedef void (*history_resumed_fn)(hub *h, const history_resumed *r);

/* The events of a kept channel after since, for the connection socket_id
 * that has just subscribed on from's worker; done runs on from's thread
 * (its frames are borrowed for the call) with the caller's ticket, which
 * tells this answer from one to an earlier request for the same channel.
 * since NULL: from now (no events, only the position; the channel is made
 * if it has no history yet, so that its position has an epoch).
 * want_position: the position comes with every answer but one from a
 * failed batch, recovered or not (the channel made as for since NULL). */
void history_resume(history *hs, hub *from, size_t app, const char *channel, size_t len,
                    const char *since, size_t since_len, bool want_position, uint32_t max_replay,
                    const char *socket_id, uint64_t ticket, history_resumed_fn done);

/* For /metrics (any thread). */
typedef struct history_stats {
    uint64_t events_stored;     /* counter */
    uint64_t write_failures;    /* batches rolled back */
    uint64_t replay_bytes;      /* gauge: answers held by sessions (HISTORY_REPLAY_BUDGET) */
    uint64_t unread_statements; /* store statements run for unread counts */
    uint64_t notes_dropped;     /* "was subscribed" notes over HISTORY_NOTES_MAX */
    uint64_t poll_statements;   /* store statements run for polls */
    uint64_t polls_waiting;     /* gauge: long polls parked until an event */
} history_stats;
history_stats history_get_stats(history *hs);

/* The session sent (or dropped) bytes of a replay it was answered with. */
void history_replay_release(history *hs, size_t bytes);

/* --- paging (REST) ------------------------------------------------------------ */

enum history_from { HISTORY_NEWEST = 0, HISTORY_OLDEST, HISTORY_AFTER, HISTORY_BEFORE };

typedef struct history_page_query {
    enum history_from from;
    const char *id; /* HISTORY_AFTER / HISTORY_BEFORE */
    size_t id_len;
    uint32_t limit; /* 1-1000 */
} history_page_query;

typedef struct history_page {
    int status; /* 200, 400 (an id of another history), 503 */
    const char *error;
    const buf *json; /* 200: {"events":[…],"next":…} */
} history_page;

typedef void (*history_page_fn)(hub *h, void *ctx, const history_page *r);

/* Checks the query's id against the channel (malformed or of another
 * channel: returns false with why in err, nothing queued); else queues it. */
bool history_page_get(history *hs, hub *from, size_t app, const char *channel, size_t len,
                      const history_page_query *q, history_page_fn done, void *ctx, char *err,
                      size_t cap);

/* --- read state (history_read_state.c) ------------------------------------------ */

typedef struct history_read_result {
    int status;        /* 200, 400 (the id is refused), 503 */
    const char *error; /* when not 200 */
    bool moved;        /* 200: the cursor moved (the receipt went out) */
} history_read_result;
typedef void (*history_read_fn)(hub *h, void *ctx, const history_read_result *r);

/* Read and unread requests waiting at once, server-wide: past it they are
 * refused (try again) rather than queued. */
#define HISTORY_CHAT_MAX 65536

/* Moves user's read cursor on a kept channel to id (NULL: the newest
 * event; none: nothing happens) when that is forward. A malformed id, or
 * one of another channel, is refused at once (400, why in err), as is a
 * request over HISTORY_CHAT_MAX (503). Else it is queued (0); after the
 * commit, when the cursor moved, every subscriber but except_socket_id
 * gets {"event":"hark:read","channel","data":"{\"user_id\",\"id\"}"},
 * then done runs on from's thread. */
int history_mark_read(history *hs, hub *from, size_t app, const char *user, size_t user_len,
                      const char *channel, size_t channel_len, const char *id, size_t id_len,
                      const char *except_socket_id, history_read_fn done, void *ctx, char *err,
                      size_t cap);

/* Remembers (durably, without an answer) that user was subscribed to a
 * kept channel while signed in: it counts among the user's channels for
 * unread. At most HISTORY_NOTES_MAX wait at once; more are dropped and
 * counted (history_stats). */
#define HISTORY_NOTES_MAX 65536
void history_note_member(history *hs, size_t app, const char *user, size_t user_len,
                         const char *channel, size_t channel_len);

typedef struct history_unread_result {
    int status; /* 200 or 503 */
    const char *error;
    const buf *json; /* 200: {"channels":{"<name>":{"unread","last_id","read_id"}}} */
} history_unread_result;
typedef void (*history_unread_fn)(hub *h, void *ctx, const history_unread_result *r);

/* user's unread counts on the given (valid) channels, or, with
 * num_channels 0 and channels NULL, on the user's channels and its
 * #server-to-user- channel; one store statement. done runs on from's
 * thread. false (nothing queued) over HISTORY_CHAT_MAX. */
bool history_unread(history *hs, hub *from, size_t app, const char *user, size_t user_len,
                    const char *const *channels, const size_t *channel_lens, size_t num_channels,
                    history_unread_fn done, void *ctx);

/* --- polls (history_poll.c) ------------------------------------------------------- */

typedef struct history_poll_channel {
    const char *name; /* a kept channel */
    size_t len;
    const char *since; /* its last id known to the client; NULL: from now on */
    size_t since_len;
} history_poll_channel;

typedef struct history_poll_query {
    const history_poll_channel *channels;
    size_t num_channels;
    const char *user; /* signed in: with unread counts; NULL: none */
    size_t user_len;
    uint32_t wait_ms; /* nothing new: wait this long for an event (0: answer at once) */
    uint32_t limit;   /* events per channel per answer */
} history_poll_query;

typedef struct history_poll_result {
    int status; /* 200, 400, 503 */
    const char *error;
    const buf *json; /* 200: {"events":[…],"since":"…","channels":{…}} */
} history_poll_result;
typedef void (*history_poll_fn)(hub *h, void *ctx, const history_poll_result *r);

/* The events of the channels after their ids, in one store statement; with
 * wait_ms and nothing new, the poll waits on the history thread without a
 * statement until one of its channels gets an event (then one statement)
 * or the time is up (an answer without events, without a statement). An id
 * malformed or of another channel: false, why in err, nothing queued. */
bool history_poll(history *hs, hub *from, size_t app, const history_poll_query *q,
                  history_poll_fn done, void *ctx, char *err, size_t cap);

#endif

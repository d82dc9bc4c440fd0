/* webhook_internal — the pure parts of the webhook module (payloads,
 * filters, backoff, grace holds, journal records, dead letters), apart from
 * the delivery thread so unit tests and fuzz targets can reach them, and
 * then the delivery thread's state shared by the files that make it up.
 * Not part of the module's interface. */
#ifndef HARK_WEBHOOK_WEBHOOK_INTERNAL_H
#define HARK_WEBHOOK_WEBHOOK_INTERNAL_H

#include "util/buf.h"
#include "util/xalloc.h"
#include "webhook/webhook.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- webhook_event.c ------------------------------------------------------ */

/* Appends one event object as Pusher sends it (spec §9.2), compact, keys in
 * Pusher's order. client_event data is always a JSON string: a string the
 * client sent is kept, any other value is carried as its JSON text.
 * Returns false (nothing appended) for an unknown kind or missing channel. */
bool wh_event_encode(buf *out, const webhook_event *ev);

/* Whether target hook wants kind on channel (event_types and filter). */
bool wh_hook_matches(const hk_webhook *hook, enum webhook_kind kind, const char *channel);

/* {"time_ms":T,"events":[e0,e1,...]} with each event's text as given. */
void wh_body(buf *out, int64_t time_ms, const char *const *events, const size_t *lens, size_t n);

/* Delay before retry number `retry` (1 = first retry): base doubled per
 * retry, capped, then "equal jitter" — half fixed, half random from rnd —
 * so a receiver that failed for everyone is not hit by all at once. */
uint64_t wh_backoff_ms(uint32_t base_ms, uint32_t max_ms, unsigned retry, uint32_t rnd);

/* What to do after one attempt. */
enum wh_outcome { WH_OK, WH_RETRY, WH_FAIL };
/* curl_code is a CURLcode (0 = a response arrived with HTTP status). */
enum wh_outcome wh_classify(int curl_code, long status);

int64_t wh_now_ms(void); /* wall clock, Unix ms */

/* Makes dir and its parents (mode 0700 for new ones). 0 or -errno. */
int wh_mkdirs(const char *dir);

/* ---- webhook_grace.c ------------------------------------------------------ */

/* Held channel_vacated / member_removed events, by key, in deadline order
 * (the delay is one constant, so arrival order is deadline order). */
typedef struct wh_hold {
    char *key;
    uint64_t due_ms;
    struct wh_hold *hnext;       /* bucket chain */
    struct wh_hold *prev, *next; /* deadline order */
    void *data;                  /* the owner's: the items held */
} wh_hold;

typedef struct wh_grace {
    wh_hold **buckets;
    size_t nbuckets, count;
    wh_hold *head, *tail;
} wh_grace;

void wh_grace_init(wh_grace *g);
/* Frees the map; holds still in it are freed too (their data is not). */
void wh_grace_free(wh_grace *g, void (*free_data)(void *data, void *ctx), void *ctx);
/* The key of a vacated/removed event and of the occupied/added that cancels
 * it: "app\x1fV\x1fchannel" or "app\x1fR\x1fchannel\x1fuser". */
char *wh_grace_key(size_t app_idx, bool member, const char *channel, const char *user_id);
/* Adds a hold (takes ownership of key); due_ms must not be earlier than
 * the tail's. Returns the hold. */
wh_hold *wh_grace_put(wh_grace *g, char *key, uint64_t due_ms, void *data);
/* Removes and returns the hold with key, or NULL. The caller frees it with
 * wh_hold_free. */
wh_hold *wh_grace_take(wh_grace *g, const char *key);
/* Removes and returns the earliest hold if due at now_ms (or any when
 * now_ms is UINT64_MAX), else NULL. */
wh_hold *wh_grace_pop_due(wh_grace *g, uint64_t now_ms);
void wh_hold_free(wh_hold *h);

/* ---- webhook_journal.c ----------------------------------------------------- */

/* The journal is an append-only file of lines, each a JSON object:
 *   {"s":SEQ,"t":TIME_MS,"app":"APP_ID","url":"URL","e":"EVENT JSON TEXT"}
 *       an event accepted for one target (app, url);
 *   {"c":[SEQ,...]}
 *       those events were delivered or dead-lettered.
 * Records are written with write(2) before the events can be sent, so they
 * survive the process being killed (the kernel holds them); fdatasync runs on
 * stop and on compaction. */
typedef struct wh_jrec {
    uint64_t seq;
    int64_t time_ms;
    const char *app_id, *url, *event; /* borrowed for the callback */
    size_t event_len;
} wh_jrec;

void wh_journal_add(buf *out, const wh_jrec *r);
void wh_journal_done(buf *out, const uint64_t *seqs, size_t n);

/* Replays a journal's bytes: on_live is called, in file order, for every
 * event record not completed later in the file. Lines that do not parse (a
 * torn last write after a kill) are skipped and counted in *bad. Returns the
 * largest sequence number seen. */
uint64_t wh_journal_replay(const char *data, size_t len, void (*on_live)(const wh_jrec *, void *),
                           void *ctx, size_t *bad);

/* ---- webhook_dead.c -------------------------------------------------------- */

/* One dead letter: a batch that could not be delivered, with everything
 * needed to send it again. Stored as data_dir/webhooks/dead/ID.json. */
typedef struct wh_dead {
    char *id; /* file name without .json */
    char *app_id;
    char *url;
    char *body; /* the exact payload, re-signed with the app's secret on replay */
    size_t body_len;
    int64_t failed_at_ms;
    unsigned attempts;
    unsigned events;
    char *error;
} wh_dead;

/* "data_dir/webhooks" and its dead/ folder; the caller frees. */
char *wh_dir(const char *data_dir);
char *wh_dead_dir(const char *data_dir);

/* Writes a dead letter durably (temp file, fsync, rename); fills d->id when
 * NULL. 0 or -errno. */
int wh_dead_write(const char *dead_dir, wh_dead *d);
/* Reads one by id; 0, -ENOENT or -EINVAL. */
int wh_dead_read(const char *dead_dir, const char *id, wh_dead *d);
/* All ids, sorted (oldest first); *n set. The caller frees each and the array. */
char **wh_dead_list(const char *dead_dir, size_t *n);
int wh_dead_remove(const char *dead_dir, const char *id);
void wh_dead_free(wh_dead *d);

/* One blocking POST with the Pusher headers (for replay): the HTTP status,
 * or -1 with the reason in err. */
long wh_post_blocking(const char *url, const char *key, const char *secret, const char *body,
                      size_t body_len, const hk_webhook *hook, long timeout_ms, char *err,
                      size_t err_cap);

/* The request headers every webhook carries (the caller frees with
 * curl_slist_free_all): Content-Type, X-Pusher-Key, X-Pusher-Signature,
 * an empty Expect and the hook's own headers. */
struct curl_slist *wh_headers(const char *key, const char *secret, const char *body,
                              size_t body_len, const hk_webhook *hook);

/* ---- the delivery thread ---------------------------------------------------- */

/* Its state, shared by the files that make it up:
 *   webhook.c              start, drain and stop; the thread's loop
 *   webhook_queue.c        emit, the hand-off list, grace holds, per-target
 *                          queues and batches
 *   webhook_delivery.c     libcurl multi on the loop: requests, retries,
 *                          dead letters
 *   webhook_journal_file.c the journal on disk: appends, compaction, replay
 *                          on start
 * struct webhooks says which fields the thread owns and what the lock
 * guards. */

typedef struct wh_target wh_target;

typedef struct wh_item {
    struct wh_item *prev, *next; /* every live item, for journal rewrites */
    struct wh_item *qnext;       /* the target's queue */
    wh_target *t;
    uint64_t seq;
    int64_t time_ms;
    size_t len;
    char json[];
} wh_item;

typedef struct wh_batch {
    struct wh_batch *next; /* ready queue, retry list or in-flight list */
    wh_target *t;
    wh_item **items;
    size_t n;
    char *body;
    size_t body_len;
    unsigned attempts;
    uint64_t due_ms;
    CURL *easy;
    struct curl_slist *hdrs;
    char err[CURL_ERROR_SIZE];
} wh_batch;

struct wh_target {
    webhooks *w;
    size_t app_idx;
    const hk_app *app;
    const hk_webhook *hook;
    wh_item *qhead, *qtail;
    size_t qlen;
    uv_timer_t batch_timer;
    wh_batch *ready_head, *ready_tail;
    unsigned inflight;
};

/* A raw event from the hub, encoded, waiting for the thread. */
typedef struct wh_in {
    struct wh_in *next;
    size_t app_idx;
    enum webhook_kind kind;
    int64_t time_ms;
    char *channel, *user_id;
    size_t len;
    char json[];
} wh_in;

/* Items of one held vacated/removed event, one per matching target. */
typedef struct wh_held {
    size_t n;
    wh_item *items[];
} wh_held;

typedef struct wh_app_stats {
    _Atomic uint64_t sent, failed, retried, dead, dropped, queued;
} wh_app_stats;

typedef struct wh_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    webhooks *w;
} wh_sock;

struct webhooks {
    const hk_config *cfg;
    bool active; /* a thread runs */
    uint32_t *interest;
    wh_app_stats *stats;
    _Atomic uint64_t inmem; /* hand-off entries + live items, against webhook_max_queue */

    uv_mutex_t lock; /* guards the hand-off list and the two flags below */
    wh_in *in_head, *in_tail;
    bool stopping, closed;

    /* Everything below belongs to the thread once it runs. */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t grace_timer, retry_timer, curl_timer, stop_timer;
    CURLM *multi;
    wh_target *targets;
    size_t ntargets;
    size_t *app_first, *app_count; /* targets of app i: app_first[i] .. + app_count[i] */
    wh_grace grace;
    wh_batch *retry_list, *flying;
    wh_item *live, *live_tail; /* oldest first */
    size_t nlive;
    bool draining, closing;
    uint32_t rng;

    int jfd, lockfd;
    char *dir, *jpath, *dead_dir;
    buf jbuf;
    uint64_t jsize, jbase, next_seq; /* jbase: size right after the last rewrite */
    bool jerr_logged;
};

/* webhook.c */
wh_app_stats *wh_stats_of(webhooks *w, size_t app_idx);
/* Ends the thread's work once a drain has nothing left in memory. */
void wh_maybe_finish(webhooks *w);

/* webhook_queue.c */
wh_item *wh_item_new(webhooks *w, wh_target *t, const char *json, size_t len, int64_t time_ms);
/* Forgets an item in memory; done says whether it is settled (the journal
 * then gets a completion record from the caller) or stays owed on disk. */
void wh_item_free(webhooks *w, wh_item *it, bool done);
void wh_batch_free(webhooks *w, wh_batch *b, bool done);
void wh_ready_push(wh_target *t, wh_batch *b);
/* Appends an item to the target's queue, nothing more. */
void wh_queue_push(wh_target *t, wh_item *it);
/* Forms batches: full ones always, the last partial one when all. */
void wh_target_flush(wh_target *t, bool all);
void wh_on_batch_timer(uv_timer_t *h);
void wh_held_release(webhooks *w, wh_hold *h);
void wh_drain_inbox(webhooks *w);

/* webhook_delivery.c */
void wh_on_sock_closed(uv_handle_t *h);
int wh_on_curl_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp);
int wh_on_curl_timeout(CURLM *multi, long timeout_ms, void *userp);
/* Flushes the journal, then starts the target's ready batches up to its
 * in-flight limit. */
void wh_pump(wh_target *t);
/* Detaches a batch from curl and the in-flight list. */
void wh_transfer_end(webhooks *w, wh_batch *b);

/* webhook_journal_file.c */
/* Opens the journal, takes back what it still owes, and writes it anew
 * with only that. Runs before the thread starts. */
void wh_jfile_open(webhooks *w);
/* Writes what is buffered. Called before any request goes out, so an event
 * is on disk before a receiver can see it. */
void wh_jfile_flush(webhooks *w);
void wh_jfile_add_item(webhooks *w, const wh_item *it);
/* Records that items are done (delivered or dead-lettered). */
void wh_jfile_done(webhooks *w, wh_item **items, size_t n);
/* Trims the file when nothing is owed any more, or rewrites it once it is
 * large and mostly completed records. */
void wh_jfile_maybe_compact(webhooks *w);

#endif

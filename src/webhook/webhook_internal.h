/* webhook_internal — the pure parts of the webhook module (payloads,
 * filters, backoff, grace holds, journal records, dead letters), apart from
 * the delivery thread in webhook.c so unit tests and fuzz targets can reach
 * them. Not part of the module's interface. */
#ifndef HARK_WEBHOOK_WEBHOOK_INTERNAL_H
#define HARK_WEBHOOK_WEBHOOK_INTERNAL_H

#include "util/buf.h"
#include "webhook/webhook.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif

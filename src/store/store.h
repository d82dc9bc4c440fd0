/* store — where history is kept: channels (each with its epoch and the
 * newest sequence number it issued) and their events.
 *
 * A small synchronous interface (heads, append, range, trim) behind a table
 * of operations, so a PostgreSQL store for clusters can sit beside the
 * SQLite one (store_sqlite.c). Only the history thread calls it: nothing
 * here may run on an event loop. Every call returns 0 on success and -1 on
 * a storage error (store_error says why). */
#ifndef HARK_STORE_STORE_H
#define HARK_STORE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_EPOCH_LEN 8 /* characters of [A-Za-z0-9] */

typedef struct store store;

typedef struct store_channel {
    int64_t key;                     /* the store's own key for the channel */
    char epoch[STORE_EPOCH_LEN + 1]; /* changes when the channel's history is new */
    uint64_t last_seq;               /* newest sequence number issued, 0 = none */
} store_channel;

typedef struct store_event {
    uint64_t seq;
    int64_t published_at_ms; /* Unix time */
    const char *event;
    size_t event_len;
    const char *data;
    size_t data_len;
    const char *user_id; /* NULL: none */
    size_t user_id_len;
} store_event;

/* Called for each event of a range, in the order asked; strings are
 * borrowed for the call. Return false to stop. */
typedef bool (*store_event_fn)(void *ctx, const store_event *ev);

/* One channel of an unread query. epoch is NULL when the channel has no
 * history at all; seqs are 0 when there is none. */
typedef struct store_unread {
    const char *name;
    size_t name_len;
    const char *epoch;
    uint64_t read_seq; /* the user's cursor */
    uint64_t last_seq; /* the newest retained event */
    uint64_t unread;   /* retained events after the cursor the user did not send */
} store_unread;
typedef void (*store_unread_fn)(void *ctx, const store_unread *u);

/* One row of a poll: a channel's summary, or one of its events. */
typedef struct store_poll_row {
    bool is_event;
    const char *name;
    size_t name_len;
    const char *epoch; /* NULL: the channel has no history */
    /* summary */
    uint64_t first_seq, last_seq; /* retained, 0 = none */
    bool has_read;                /* asked for a user, and the user has a cursor */
    uint64_t read_seq, unread;    /* unread: when asked for a user */
    /* event */
    store_event ev;
} store_poll_row;
typedef void (*store_poll_fn)(void *ctx, const store_poll_row *row);

typedef struct store_ops {
    int (*begin)(store *st);
    int (*commit)(store *st);
    void (*rollback)(store *st);
    /* The channel of app (id) and name; with create, one is made (a fresh
     * epoch, last_seq 0) when there is none. Returns 1 when absent. */
    int (*head)(store *st, const char *app, const char *name, size_t len, bool create,
                store_channel *out);
    /* Adds ev (its seq above ch->last_seq) and records it as the newest. */
    int (*append)(store *st, const store_channel *ch, const store_event *ev);
    /* Events with after < seq <= upto published at or after min_ms,
     * ascending (or descending), at most limit. */
    int (*range)(store *st, const store_channel *ch, uint64_t after, uint64_t upto, int64_t min_ms,
                 uint32_t limit, bool descending, store_event_fn fn, void *ctx);
    /* Forgets events with seq <= upto or published before older_than_ms;
     * at most limit rows; *removed says how many went. */
    int (*trim)(store *st, const store_channel *ch, uint64_t upto, int64_t older_than_ms,
                uint32_t limit, uint32_t *removed);
    /* Uses up the next sequence number of app's channel name (every
     * channel when name is NULL) without an event: what was delivered but
     * not stored leaves a gap there, which a resume reports. Channels that
     * do not exist are left alone. */
    int (*skip_seq)(store *st, const char *app, const char *name, size_t len);
    /* Calls fn for each channel with retained events, from after_key on,
     * at most limit (for the background trim). */
    int (*channels)(store *st, int64_t after_key, uint32_t limit,
                    void (*fn)(void *ctx, int64_t key, const char *app, const char *name,
                               size_t len),
                    void *ctx);
    /* Moves the read cursor of app's user on the channel (its key) to seq
     * when that is beyond the stored one; seq 0 only remembers that the
     * user was subscribed there. *moved: the cursor moved. */
    int (*read_set)(store *st, const char *app, const char *user, size_t user_len,
                    int64_t channel_key, uint64_t seq, bool *moved);
    /* Unread counts of app's user, in one statement: for each channel of
     * names_json (a JSON array of names) or, when NULL, every channel the
     * user has a cursor on plus own_channel. fn is called per channel. */
    int (*unread)(store *st, const char *app, const char *user, size_t user_len,
                  const char *names_json, const char *own_channel, store_unread_fn fn, void *ctx);
    /* A poll, in one statement: for each [name, after] of asked_json, a
     * summary row (and, with user, that user's cursor and unread count),
     * then at most limit events with seq > after per channel, ascending. */
    int (*poll)(store *st, const char *app, const char *asked_json, const char *user,
                size_t user_len, uint32_t limit, store_poll_fn fn, void *ctx);
    /* Between transactions, on the writing thread: housekeeping the store
     * asked for after a commit (SQLite: bounding its WAL). Short, but may
     * wait for the disk. */
    void (*maintain)(store *st);
    const char *(*error)(store *st);
    void (*close)(store *st);
} store_ops;

struct store {
    const store_ops *ops;
    _Atomic uint64_t unread_statements; /* statements run for unread queries (/metrics) */
    _Atomic uint64_t poll_statements;   /* statements run for polls (/metrics) */
};

/* SQLite in WAL mode at path (created, migrated to the current schema).
 * NULL with why in err. */
store *store_sqlite_open(const char *path, char *err, size_t cap);
/* The SQL of the SQLite store's unread query (tests check its plan). */
extern const char store_sqlite_unread_sql[];
extern const char store_sqlite_poll_sql[];

#endif

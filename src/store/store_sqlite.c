/* store_sqlite — the embedded store: one SQLite file in WAL mode under
 * data_dir, prepared statements only, a schema version (PRAGMA
 * user_version) migrated at open.
 *
 * One connection, on the history thread, in EXCLUSIVE locking mode: hark
 * is the file's only user, so a transaction takes no file locks and the
 * WAL's index lives in the heap instead of a shared -shm file (a commit
 * costs about a third less). Another process cannot open the file while
 * hark runs.
 *
 * synchronous=NORMAL: a commit is in the WAL (the kernel's page cache)
 * before it returns, so it survives the process being killed; a power
 * failure may lose the last commits, as with any WAL database without
 * fsync per commit.
 *
 * The only fsyncs are a checkpoint's (copying the WAL into the database).
 * SQLite would run one on the committing thread every 1,000 pages; here
 * the writer checkpoints itself between two transactions once the WAL
 * holds WAL_RESET_FRAMES pages (op_maintain), and the next commit starts
 * the WAL over, so it stays near that size (and below journal_size_limit,
 * so the file is overwritten, never cut and grown again). A checkpoint
 * copies each page changed since the last one, and appends keep changing
 * the same newest page of each channel: a checkpoint of 64 MiB took about
 * as long as one of 16 MiB (25 ms), so the larger WAL stops the writer a
 * quarter as often. The checkpoint's first fsync would write the whole
 * WAL to the disk; a wal_flusher syncs it ahead (wal_flusher.h).
 *
 * A commit's WAL frames go to the kernel in one pwrite (wal_batch.h), not
 * two per frame.
 *
 * The page cache is 16 MiB: the newest page of about 3,000 channels, where
 * appends go (with SQLite's 2 MB, every other append read a page back). */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "store/store.h"
#include "store/wal_batch.h"
#include "store/wal_flusher.h"
#include "util/xalloc.h"

#define SCHEMA_VERSION 2
#define WAL_RESET_FRAMES 16384 /* 64 MiB of 4 KiB pages */

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_HEAD,
    ST_CREATE,
    ST_INSERT,
    ST_SET_LAST,
    ST_SKIP,
    ST_SKIP_ALL,
    ST_RANGE_ASC,
    ST_RANGE_DESC,
    ST_TRIM,
    ST_CHANNELS,
    ST_READ_SET,
    ST_UNREAD,
    ST_POLL,
    ST_COUNT,
};

/* One statement for every channel asked (?3, a JSON array) or, without
 * a list, the user's channels and their own #server-to-user- (?4):
 * per channel two index lookups (channels by name, the cursor) and two
 * range reads of the events' primary key (the newest; the rows after
 * the cursor, to leave out the user's own). */
const char store_sqlite_unread_sql[] =
    "WITH names(name) AS ("
    "  SELECT value FROM json_each(?3) WHERE ?3 IS NOT NULL"
    "  UNION SELECT c.name FROM reads r JOIN channels c ON c.key = r.channel"
    "    WHERE ?3 IS NULL AND r.app = ?1 AND r.user = ?2"
    "  UNION SELECT ?4 WHERE ?3 IS NULL) "
    "SELECT n.name, c.epoch, coalesce(r.seq, 0),"
    "  coalesce((SELECT max(e.seq) FROM events e WHERE e.channel = c.key), 0),"
    "  (SELECT count(*) FROM events e WHERE e.channel = c.key AND e.seq > coalesce(r.seq, 0)"
    "     AND e.user_id IS NOT ?2) "
    "FROM names n LEFT JOIN channels c ON c.app = ?1 AND c.name = n.name "
    "LEFT JOIN reads r ON r.app = ?1 AND r.user = ?2 AND r.channel = c.key";

/* A poll: the channels asked with the seq each is read after (?2, a JSON
 * array of [name, after]); per channel a summary (newest and oldest
 * retained seq, and with a user ?3 the cursor and the unread count), then
 * the events after `after`, at most ?4 per channel. Every read is an index
 * lookup or a range of a primary key. */
const char store_sqlite_poll_sql[] =
    "WITH asked(name, after) AS ("
    "  SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2)),"
    " ch AS (SELECT a.name, a.after, c.key, c.epoch FROM asked a"
    "  LEFT JOIN channels c ON c.app = ?1 AND c.name = a.name) "
    "SELECT 0, ch.name, ch.epoch,"
    "  coalesce((SELECT max(e.seq) FROM events e WHERE e.channel = ch.key), 0),"
    "  coalesce((SELECT min(e.seq) FROM events e WHERE e.channel = ch.key), 0),"
    "  (SELECT r.seq FROM reads r WHERE ?3 IS NOT NULL AND r.app = ?1 AND r.user = ?3"
    "     AND r.channel = ch.key),"
    "  CASE WHEN ?3 IS NULL THEN NULL ELSE (SELECT count(*) FROM events e"
    "    WHERE e.channel = ch.key AND e.user_id IS NOT ?3 AND e.seq > coalesce((SELECT r.seq"
    "      FROM reads r WHERE r.app = ?1 AND r.user = ?3 AND r.channel = ch.key), 0)) END,"
    "  NULL, NULL, NULL FROM ch "
    "UNION ALL SELECT * FROM (SELECT 1, name, epoch, seq, published_at_ms, NULL, NULL, event,"
    "  data, user_id FROM (SELECT ch.name, ch.epoch, e.seq, e.published_at_ms, e.event, e.data,"
    "  e.user_id, row_number() OVER (PARTITION BY ch.key ORDER BY e.seq) AS n"
    "  FROM ch JOIN events e ON e.channel = ch.key AND e.seq > ch.after) WHERE n <= ?4)";

/* The newest sequence number of the channel whose key is `key`: the newest
 * event's, or (once age has removed every event, or a gap followed it) what
 * the channel row remembers. Appends do not write the row (one page less
 * per commit); a trim that may remove the newest event records it there
 * first, and a gap goes there. */
#define NEWEST_SEQ(key)                                                                            \
    "max(last_seq, coalesce((SELECT max(seq) FROM events WHERE channel = " key "), 0))"

static const char *const sql_text[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_HEAD] = "SELECT key, epoch, " NEWEST_SEQ("channels.key") " FROM channels "
                                                                 "WHERE app = ?1 AND name = ?2",
    [ST_CREATE] = "INSERT INTO channels(app, name, epoch, last_seq) VALUES (?1, ?2, ?3, 0)",
    [ST_INSERT] = "INSERT INTO events(channel, seq, published_at_ms, event, data, user_id) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_SET_LAST] = "UPDATE channels SET last_seq = " NEWEST_SEQ("?1") " WHERE key = ?1",
    /* a number no event will have: a resume across it finds a gap */
    [ST_SKIP] =
        "UPDATE channels SET last_seq = " NEWEST_SEQ("channels.key") " + 1 "
                                                                     "WHERE app = ?1 AND name = ?2",
    [ST_SKIP_ALL] = "UPDATE channels SET last_seq = " NEWEST_SEQ("channels.key") " + 1",
    [ST_RANGE_ASC] = "SELECT seq, published_at_ms, event, data, user_id FROM events "
                     "WHERE channel = ?1 AND seq > ?2 AND seq <= ?3 AND published_at_ms >= ?4 "
                     "ORDER BY seq ASC LIMIT ?5",
    [ST_RANGE_DESC] = "SELECT seq, published_at_ms, event, data, user_id FROM events "
                      "WHERE channel = ?1 AND seq > ?2 AND seq <= ?3 AND published_at_ms >= ?4 "
                      "ORDER BY seq DESC LIMIT ?5",
    [ST_TRIM] = "DELETE FROM events WHERE channel = ?1 AND seq IN (SELECT seq FROM events "
                "WHERE channel = ?1 AND (seq <= ?2 OR published_at_ms < ?3) ORDER BY seq LIMIT ?4)",
    [ST_CHANNELS] = "SELECT key, app, name FROM channels WHERE key > ?1 ORDER BY key LIMIT ?2",
    /* a cursor only moves forward; seq 0 only remembers the user was there */
    [ST_READ_SET] = "INSERT INTO reads(app, user, channel, seq) VALUES (?1, ?2, ?3, ?4) "
                    "ON CONFLICT(app, user, channel) DO UPDATE SET seq = excluded.seq "
                    "WHERE excluded.seq > reads.seq",
    [ST_UNREAD] = store_sqlite_unread_sql,
    [ST_POLL] = store_sqlite_poll_sql,
};

static const char *const schema_v1 = "CREATE TABLE channels ("
                                     "  key INTEGER PRIMARY KEY,"
                                     "  app TEXT NOT NULL,"
                                     "  name TEXT NOT NULL,"
                                     "  epoch TEXT NOT NULL,"
                                     "  last_seq INTEGER NOT NULL,"
                                     "  UNIQUE (app, name));"
                                     "CREATE TABLE events ("
                                     "  channel INTEGER NOT NULL,"
                                     "  seq INTEGER NOT NULL,"
                                     "  published_at_ms INTEGER NOT NULL,"
                                     "  event TEXT NOT NULL,"
                                     "  data TEXT NOT NULL,"
                                     "  user_id TEXT,"
                                     "  PRIMARY KEY (channel, seq)) WITHOUT ROWID;";

/* Read cursors: per app, user and channel, the newest seq read (0: none
 * yet, the user was only subscribed while signed in). */
static const char *const schema_v2 = "CREATE TABLE reads ("
                                     "  app TEXT NOT NULL,"
                                     "  user TEXT NOT NULL,"
                                     "  channel INTEGER NOT NULL,"
                                     "  seq INTEGER NOT NULL,"
                                     "  PRIMARY KEY (app, user, channel)) WITHOUT ROWID;";

typedef struct sqlite_store {
    store base;
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char error[256];
    char path[4096];
    wal_flusher *flusher; /* NULL until the first connection */
    int wal_frames;       /* the WAL's length after the last commit */
    bool wal_full;        /* past WAL_RESET_FRAMES: op_maintain checkpoints */
} sqlite_store;

static sqlite_store *as_sqlite(store *st)
{
    return (sqlite_store *)st;
}

static int fail(sqlite_store *s, const char *what)
{
    snprintf(s->error, sizeof(s->error), "%s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

/* Runs a statement without rows to completion; resets it. */
static int run(sqlite_store *s, int which)
{
    sqlite3_stmt *q = s->st[which];
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? 0 : fail(s, sql_text[which]);
}

static int connect_db(sqlite_store *s);
static void disconnect_db(sqlite_store *s);

static int op_begin(store *st)
{
    sqlite_store *s = as_sqlite(st);
    if (!s->db && connect_db(s) != 0) /* a reopen that failed: try again */
        return -1;
    return run(s, ST_BEGIN);
}

static int op_commit(store *st)
{
    sqlite_store *s = as_sqlite(st);
    if (run(s, ST_COMMIT) != 0)
        return -1;
    /* wal_batch writes a commit out before SQLite sees it done; should a
     * SQLite write its frames otherwise, what is left goes out here, before
     * anyone is told the events are stored */
    if (wal_batch_pending(s->db) > 0 && wal_batch_flush(s->db) != SQLITE_OK) {
        /* SQLite counts the transaction as committed, the file does not
         * have it: a new connection reads the file again (and finds the
         * WAL ending before this transaction) */
        disconnect_db(s);
        snprintf(s->error, sizeof(s->error), "writing the WAL failed");
        return -1;
    }
    return 0;
}

static void op_rollback(store *st)
{
    sqlite_store *s = as_sqlite(st);
    if (s->db && !sqlite3_get_autocommit(s->db))
        run(s, ST_ROLLBACK);
}

static void new_epoch(char out[STORE_EPOCH_LEN + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t r[STORE_EPOCH_LEN];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        abort(); /* the kernel's generator does not fail for 8 bytes */
    for (size_t i = 0; i < STORE_EPOCH_LEN; i++)
        out[i] = alphabet[r[i] % 62];
    out[STORE_EPOCH_LEN] = '\0';
}

static int op_head(store *st, const char *app, const char *name, size_t len, bool create,
                   store_channel *out)
{
    sqlite_store *s = as_sqlite(st);
    sqlite3_stmt *q = s->st[ST_HEAD];
    sqlite3_bind_text(q, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, name, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        out->key = sqlite3_column_int64(q, 0);
        snprintf(out->epoch, sizeof(out->epoch), "%s", (const char *)sqlite3_column_text(q, 1));
        out->last_seq = (uint64_t)sqlite3_column_int64(q, 2);
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return fail(s, "reading a channel");
    if (!create)
        return 1;
    q = s->st[ST_CREATE];
    new_epoch(out->epoch);
    sqlite3_bind_text(q, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, name, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, out->epoch, -1, SQLITE_STATIC);
    if (run(s, ST_CREATE) != 0)
        return -1;
    out->key = sqlite3_last_insert_rowid(s->db);
    out->last_seq = 0;
    return 0;
}

static int op_append(store *st, const store_channel *ch, const store_event *ev)
{
    sqlite_store *s = as_sqlite(st);
    sqlite3_stmt *q = s->st[ST_INSERT];
    sqlite3_bind_int64(q, 1, ch->key);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)ev->seq);
    sqlite3_bind_int64(q, 3, ev->published_at_ms);
    sqlite3_bind_text(q, 4, ev->event, (int)ev->event_len, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, ev->data, (int)ev->data_len, SQLITE_STATIC);
    if (ev->user_id)
        sqlite3_bind_text(q, 6, ev->user_id, (int)ev->user_id_len, SQLITE_STATIC);
    return run(s, ST_INSERT);
}

static int op_range(store *st, const store_channel *ch, uint64_t after, uint64_t upto,
                    int64_t min_ms, uint32_t limit, bool descending, store_event_fn fn, void *ctx)
{
    sqlite_store *s = as_sqlite(st);
    sqlite3_stmt *q = s->st[descending ? ST_RANGE_DESC : ST_RANGE_ASC];
    sqlite3_bind_int64(q, 1, ch->key);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)after);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)(upto > INT64_MAX ? INT64_MAX : upto));
    sqlite3_bind_int64(q, 4, min_ms);
    sqlite3_bind_int64(q, 5, limit);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_event ev = {
            .seq = (uint64_t)sqlite3_column_int64(q, 0),
            .published_at_ms = sqlite3_column_int64(q, 1),
            .event = (const char *)sqlite3_column_text(q, 2),
            .event_len = (size_t)sqlite3_column_bytes(q, 2),
            .data = (const char *)sqlite3_column_text(q, 3),
            .data_len = (size_t)sqlite3_column_bytes(q, 3),
        };
        if (sqlite3_column_type(q, 4) != SQLITE_NULL) {
            ev.user_id = (const char *)sqlite3_column_text(q, 4);
            ev.user_id_len = (size_t)sqlite3_column_bytes(q, 4);
        }
        if (!fn(ctx, &ev)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? 0 : fail(s, "reading events");
}

static int op_trim(store *st, const store_channel *ch, uint64_t upto, int64_t older_than_ms,
                   uint32_t limit, uint32_t *removed)
{
    sqlite_store *s = as_sqlite(st);
    sqlite3_stmt *q;
    if (older_than_ms > 0) { /* age may take the newest event: remember its number */
        q = s->st[ST_SET_LAST];
        sqlite3_bind_int64(q, 1, ch->key);
        if (run(s, ST_SET_LAST) != 0)
            return -1;
    }
    q = s->st[ST_TRIM];
    sqlite3_bind_int64(q, 1, ch->key);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)upto);
    sqlite3_bind_int64(q, 3, older_than_ms);
    sqlite3_bind_int64(q, 4, limit);
    if (run(s, ST_TRIM) != 0)
        return -1;
    *removed = (uint32_t)sqlite3_changes(s->db);
    return 0;
}

static int op_channels(store *st, int64_t after_key, uint32_t limit,
                       void (*fn)(void *ctx, int64_t key, const char *app, const char *name,
                                  size_t len),
                       void *ctx)
{
    sqlite_store *s = as_sqlite(st);
    sqlite3_stmt *q = s->st[ST_CHANNELS];
    sqlite3_bind_int64(q, 1, after_key);
    sqlite3_bind_int64(q, 2, limit);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        fn(ctx, sqlite3_column_int64(q, 0), (const char *)sqlite3_column_text(q, 1),
           (const char *)sqlite3_column_text(q, 2), (size_t)sqlite3_column_bytes(q, 2));
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? 0 : fail(s, "listing channels");
}

static int op_read_set(store *st, const char *app, const char *user, size_t user_len,
                       int64_t channel_key, uint64_t seq, bool *moved)
{
    sqlite_store *s = as_sqlite(st);
    sqlite3_stmt *q = s->st[ST_READ_SET];
    sqlite3_bind_text(q, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, user, (int)user_len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, channel_key);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)seq);
    if (run(s, ST_READ_SET) != 0)
        return -1;
    *moved = seq > 0 && sqlite3_changes(s->db) > 0;
    return 0;
}

static int op_unread(store *st, const char *app, const char *user, size_t user_len,
                     const char *names_json, const char *own_channel, store_unread_fn fn, void *ctx)
{
    sqlite_store *s = as_sqlite(st);
    sqlite3_stmt *q = s->st[ST_UNREAD];
    sqlite3_bind_text(q, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, user, (int)user_len, SQLITE_STATIC);
    if (names_json)
        sqlite3_bind_text(q, 3, names_json, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 3);
    sqlite3_bind_text(q, 4, own_channel, -1, SQLITE_STATIC);
    atomic_fetch_add(&s->base.unread_statements, 1);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_unread u = {
            .name = (const char *)sqlite3_column_text(q, 0),
            .name_len = (size_t)sqlite3_column_bytes(q, 0),
            .epoch = (const char *)sqlite3_column_text(q, 1),
            .read_seq = (uint64_t)sqlite3_column_int64(q, 2),
            .last_seq = (uint64_t)sqlite3_column_int64(q, 3),
            .unread = (uint64_t)sqlite3_column_int64(q, 4),
        };
        if (u.name)
            fn(ctx, &u);
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? 0 : fail(s, "counting unread events");
}

static int op_poll(store *st, const char *app, const char *asked_json, const char *user,
                   size_t user_len, uint32_t limit, store_poll_fn fn, void *ctx)
{
    sqlite_store *s = as_sqlite(st);
    sqlite3_stmt *q = s->st[ST_POLL];
    sqlite3_bind_text(q, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, asked_json, -1, SQLITE_STATIC);
    if (user)
        sqlite3_bind_text(q, 3, user, (int)user_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 3);
    sqlite3_bind_int64(q, 4, limit);
    atomic_fetch_add(&s->base.poll_statements, 1);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_poll_row r = {
            .is_event = sqlite3_column_int(q, 0) == 1,
            .name = (const char *)sqlite3_column_text(q, 1),
            .name_len = (size_t)sqlite3_column_bytes(q, 1),
            .epoch = (const char *)sqlite3_column_text(q, 2),
        };
        if (!r.name)
            continue;
        if (r.is_event) {
            r.ev = (store_event){
                .seq = (uint64_t)sqlite3_column_int64(q, 3),
                .published_at_ms = sqlite3_column_int64(q, 4),
                .event = (const char *)sqlite3_column_text(q, 7),
                .event_len = (size_t)sqlite3_column_bytes(q, 7),
                .data = (const char *)sqlite3_column_text(q, 8),
                .data_len = (size_t)sqlite3_column_bytes(q, 8),
                .user_id = (const char *)sqlite3_column_text(q, 9),
                .user_id_len = (size_t)sqlite3_column_bytes(q, 9),
            };
        } else {
            r.last_seq = (uint64_t)sqlite3_column_int64(q, 3);
            r.first_seq = (uint64_t)sqlite3_column_int64(q, 4);
            r.has_read = sqlite3_column_type(q, 5) != SQLITE_NULL;
            r.read_seq = (uint64_t)sqlite3_column_int64(q, 5);
            r.unread = (uint64_t)sqlite3_column_int64(q, 6);
        }
        fn(ctx, &r);
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc == SQLITE_DONE ? 0 : fail(s, "polling");
}

static const char *op_error(store *st)
{
    return as_sqlite(st)->error;
}

/* After each commit on the connection, with the WAL's length (which
 * starts over after a checkpoint). */
static int wal_committed(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    sqlite_store *s = arg;
    unsigned added = (unsigned)(frames >= s->wal_frames ? frames - s->wal_frames : frames);
    s->wal_frames = frames;
    s->wal_full = frames >= WAL_RESET_FRAMES;
    if (s->flusher)
        wal_flusher_committed(s->flusher, added);
    return SQLITE_OK;
}

static void op_maintain(store *st)
{
    sqlite_store *s = as_sqlite(st);
    if (!s->db || !s->wal_full || !sqlite3_get_autocommit(s->db))
        return;
    s->wal_full = false;
    /* copies every frame (the connection is the file's only user), so the
     * next commit starts the WAL over; on failure the next commit asks again */
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

static void op_close(store *st)
{
    sqlite_store *s = as_sqlite(st);
    wal_flusher_stop(s->flusher);
    s->flusher = NULL;
    disconnect_db(s);
    free(s);
}

static int op_skip_seq(store *st, const char *app, const char *name, size_t len)
{
    sqlite_store *s = as_sqlite(st);
    if (!name)
        return run(s, ST_SKIP_ALL);
    sqlite3_stmt *q = s->st[ST_SKIP];
    sqlite3_bind_text(q, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, name, (int)len, SQLITE_STATIC);
    return run(s, ST_SKIP);
}

static const store_ops sqlite_ops = {
    .begin = op_begin,
    .commit = op_commit,
    .rollback = op_rollback,
    .head = op_head,
    .append = op_append,
    .range = op_range,
    .trim = op_trim,
    .skip_seq = op_skip_seq,
    .channels = op_channels,
    .read_set = op_read_set,
    .unread = op_unread,
    .poll = op_poll,
    .maintain = op_maintain,
    .error = op_error,
    .close = op_close,
};

static int exec(sqlite_store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(s->error, sizeof(s->error), "%s", msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -1;
}

static int schema_version(sqlite_store *s)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
        return fail(s, "reading the schema version");
    int v = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
    sqlite3_finalize(q);
    return v;
}

/* Brings the file to SCHEMA_VERSION, one step per version, each in its own
 * transaction. A file from a newer hark is refused rather than guessed at. */
static int migrate(sqlite_store *s)
{
    int v = schema_version(s);
    if (v < 0)
        return -1;
    if (v > SCHEMA_VERSION) {
        snprintf(s->error, sizeof(s->error), "schema version %d is newer than this hark knows (%d)",
                 v, SCHEMA_VERSION);
        return -1;
    }
    if (v < 1) {
        if (exec(s, "BEGIN") || exec(s, schema_v1) || exec(s, "PRAGMA user_version = 1") ||
            exec(s, "COMMIT")) {
            exec(s, "ROLLBACK");
            return -1;
        }
    }
    if (v < 2) {
        if (exec(s, "BEGIN") || exec(s, schema_v2) || exec(s, "PRAGMA user_version = 2") ||
            exec(s, "COMMIT")) {
            exec(s, "ROLLBACK");
            return -1;
        }
    }
    return 0;
}

static void disconnect_db(sqlite_store *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
        s->st[i] = NULL;
    }
    sqlite3_close(s->db);
    s->db = NULL;
    s->wal_frames = 0;
    s->wal_full = false;
    if (s->flusher)
        wal_flusher_reopened(s->flusher);
}

/* Opens the file (s->path), set up as described at the top. */
static int connect_db(sqlite_store *s)
{
    int rc = sqlite3_open_v2(s->path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             WAL_BATCH_VFS);
    if (rc != SQLITE_OK) {
        snprintf(s->error, sizeof(s->error), "%s",
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        disconnect_db(s);
        return -1;
    }
    sqlite3_busy_timeout(s->db, 5000);
    /* EXCLUSIVE before WAL: then the WAL's index is kept in the heap */
    if (exec(s, "PRAGMA locking_mode = EXCLUSIVE") || exec(s, "PRAGMA journal_mode = WAL") ||
        exec(s, "PRAGMA synchronous = NORMAL") || exec(s, "PRAGMA wal_autocheckpoint = 0") ||
        exec(s, "PRAGMA cache_size = -16384") || exec(s, "PRAGMA journal_size_limit = 100663296") ||
        migrate(s)) {
        disconnect_db(s);
        return -1;
    }
    sqlite3_wal_hook(s->db, wal_committed, s);
    for (int i = 0; i < ST_COUNT; i++)
        if (sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            fail(s, sql_text[i]);
            disconnect_db(s);
            return -1;
        }
    return 0;
}

store *store_sqlite_open(const char *path, char *err, size_t cap)
{
    if (strlen(path) >= sizeof(((sqlite_store *)NULL)->path)) {
        snprintf(err, cap, "%s: the path is too long", path);
        return NULL;
    }
    sqlite_store *s = xcalloc(1, sizeof(*s));
    s->base.ops = &sqlite_ops;
    snprintf(s->path, sizeof(s->path), "%s", path);
    int rc = wal_batch_register();
    if (rc != SQLITE_OK) {
        snprintf(s->error, sizeof(s->error), "%s", sqlite3_errstr(rc));
        goto failed;
    }
    if (connect_db(s) != 0)
        goto failed;
    /* the WAL by the name SQLite gave it (a link in the path resolved) */
    const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->db, "main"));
    s->flusher = wal ? wal_flusher_start(wal) : NULL;
    if (!s->flusher) {
        snprintf(s->error, sizeof(s->error), "cannot start the WAL flusher");
        goto failed;
    }
    return &s->base;
failed:
    snprintf(err, cap, "%s: %s", path, s->error);
    op_close(&s->base);
    return NULL;
}

/* store (SQLite): channel heads survive reopening, ranges in both
 * directions with limits and an age floor, trims by count and by age, a
 * file from a newer schema is refused, read cursors only move forward,
 * unread counts come from one statement that reads by index only, the
 * WAL stays bounded under a steady stream of commits, the store holds
 * its file exclusively, and skips leave gaps that outlive the file's
 * reopening. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    store *st;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hark-store-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/history.sqlite3", fx->dir);
    char err[256];
    fx->st = store_sqlite_open(fx->path, err, sizeof(err));
    assert_non_null(fx->st);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    if (fx->st)
        fx->st->ops->close(fx->st);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void append_n(store *st, store_channel *ch, uint64_t n, int64_t at_ms)
{
    assert_int_equal(st->ops->begin(st), 0);
    for (uint64_t i = 0; i < n; i++) {
        char data[32];
        int len = snprintf(data, sizeof(data), "\"e%llu\"", (unsigned long long)(ch->last_seq + 1));
        store_event ev = {.seq = ch->last_seq + 1,
                          .published_at_ms = at_ms,
                          .event = "ev",
                          .event_len = 2,
                          .data = data,
                          .data_len = (size_t)len};
        assert_int_equal(st->ops->append(st, ch, &ev), 0);
        ch->last_seq = ev.seq;
    }
    assert_int_equal(st->ops->commit(st), 0);
}

typedef struct seen {
    uint64_t seqs[64];
    size_t n;
} seen;

static bool collect(void *ctx, const store_event *ev)
{
    seen *s = ctx;
    s->seqs[s->n++] = ev->seq;
    return true;
}

static void heads_survive_reopening(void **state)
{
    fixture *fx = *state;
    store *st = fx->st;
    store_channel ch, again;
    assert_int_equal(st->ops->head(st, "app", "chat", 4, false, &ch), 1); /* absent */
    assert_int_equal(st->ops->begin(st), 0);
    assert_int_equal(st->ops->head(st, "app", "chat", 4, true, &ch), 0);
    assert_int_equal(st->ops->commit(st), 0);
    assert_int_equal(ch.last_seq, 0);
    assert_int_equal(strlen(ch.epoch), STORE_EPOCH_LEN);
    append_n(st, &ch, 5, 1000);
    st->ops->close(st);
    char err[256];
    fx->st = st = store_sqlite_open(fx->path, err, sizeof(err));
    assert_non_null(st);
    assert_int_equal(st->ops->head(st, "app", "chat", 4, false, &again), 0);
    assert_string_equal(again.epoch, ch.epoch);
    assert_int_equal(again.last_seq, 5);
    /* another app's channel of the same name is another channel */
    assert_int_equal(st->ops->head(st, "app2", "chat", 4, false, &again), 1);
}

/* skip uses up a number no event has (the gap of events delivered but not
 * stored), for one channel or for all; it survives reopening, appends
 * continue after it, and a channel that does not exist stays absent. */
static void skips_leave_gaps(void **state)
{
    fixture *fx = *state;
    store *st = fx->st;
    store_channel a, b, got;
    assert_int_equal(st->ops->begin(st), 0);
    assert_int_equal(st->ops->head(st, "app", "a", 1, true, &a), 0);
    assert_int_equal(st->ops->head(st, "app", "b", 1, true, &b), 0);
    assert_int_equal(st->ops->commit(st), 0);
    append_n(st, &a, 2, 1000);
    append_n(st, &b, 2, 1000);
    assert_int_equal(st->ops->begin(st), 0);
    assert_int_equal(st->ops->skip_seq(st, "app", "a", 1), 0);
    assert_int_equal(st->ops->skip_seq(st, "app", "nobody", 6), 0);
    assert_int_equal(st->ops->commit(st), 0);
    assert_int_equal(st->ops->head(st, "app", "a", 1, false, &got), 0);
    assert_int_equal(got.last_seq, 3);
    assert_int_equal(st->ops->head(st, "app", "b", 1, false, &got), 0);
    assert_int_equal(got.last_seq, 2);
    assert_int_equal(st->ops->head(st, "app", "nobody", 6, false, &got), 1);
    a.last_seq = 3;
    append_n(st, &a, 1, 1000); /* seq 4 */
    assert_int_equal(st->ops->begin(st), 0);
    assert_int_equal(st->ops->skip_seq(st, "app", NULL, 0), 0); /* every channel */
    assert_int_equal(st->ops->commit(st), 0);
    st->ops->close(st);
    char err[256];
    fx->st = st = store_sqlite_open(fx->path, err, sizeof(err));
    assert_non_null(st);
    assert_int_equal(st->ops->head(st, "app", "a", 1, false, &got), 0);
    assert_int_equal(got.last_seq, 5);
    assert_int_equal(st->ops->head(st, "app", "b", 1, false, &got), 0);
    assert_int_equal(got.last_seq, 3);
    seen s = {0};
    assert_int_equal(st->ops->range(st, &got, 0, got.last_seq, 0, 64, false, collect, &s), 0);
    assert_int_equal(s.n, 2); /* b's events 1 and 2; 3 is the gap */
    assert_int_equal(s.seqs[1], 2);
}

static void ranges_and_trims(void **state)
{
    fixture *fx = *state;
    store *st = fx->st;
    store_channel ch;
    assert_int_equal(st->ops->begin(st), 0);
    assert_int_equal(st->ops->head(st, "app", "c", 1, true, &ch), 0);
    assert_int_equal(st->ops->commit(st), 0);
    append_n(st, &ch, 10, 1000); /* seq 1-10 at t=1000 */
    append_n(st, &ch, 10, 5000); /* seq 11-20 at t=5000 */

    seen s = {0};
    assert_int_equal(st->ops->range(st, &ch, 3, 20, 0, 4, false, collect, &s), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.seqs[0], 4);
    assert_int_equal(s.seqs[3], 7);
    s.n = 0;
    assert_int_equal(st->ops->range(st, &ch, 0, 15, 0, 3, true, collect, &s), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.seqs[0], 15);
    assert_int_equal(s.seqs[2], 13);
    s.n = 0; /* the age floor hides the older ten */
    assert_int_equal(st->ops->range(st, &ch, 0, 20, 2000, 64, false, collect, &s), 0);
    assert_int_equal(s.n, 10);
    assert_int_equal(s.seqs[0], 11);

    uint32_t removed;
    assert_int_equal(st->ops->begin(st), 0);
    assert_int_equal(st->ops->trim(st, &ch, 5, 0, 1000, &removed), 0); /* by count */
    assert_int_equal(removed, 5);
    assert_int_equal(st->ops->trim(st, &ch, 0, 2000, 3, &removed), 0); /* by age, 3 at most */
    assert_int_equal(removed, 3);
    assert_int_equal(st->ops->trim(st, &ch, 0, 2000, 1000, &removed), 0);
    assert_int_equal(removed, 2);
    assert_int_equal(st->ops->commit(st), 0);
    s.n = 0;
    assert_int_equal(st->ops->range(st, &ch, 0, 20, 0, 64, false, collect, &s), 0);
    assert_int_equal(s.n, 10);
    assert_int_equal(s.seqs[0], 11);
}

static void a_newer_schema_is_refused(void **state)
{
    fixture *fx = *state;
    fx->st->ops->close(fx->st);
    fx->st = NULL;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    assert_null(store_sqlite_open(fx->path, err, sizeof(err)));
    assert_non_null(strstr(err, "schema version 99"));
}

/* Appends n events by author (NULL: none) to ch. */
static void append_by(store *st, store_channel *ch, uint64_t n, const char *author)
{
    assert_int_equal(st->ops->begin(st), 0);
    for (uint64_t i = 0; i < n; i++) {
        store_event ev = {.seq = ch->last_seq + 1,
                          .published_at_ms = 1000,
                          .event = "m",
                          .event_len = 1,
                          .data = "\"x\"",
                          .data_len = 3,
                          .user_id = author,
                          .user_id_len = author ? strlen(author) : 0};
        assert_int_equal(st->ops->append(st, ch, &ev), 0);
        ch->last_seq = ev.seq;
    }
    assert_int_equal(st->ops->commit(st), 0);
}

static store_channel make_channel(store *st, const char *name)
{
    store_channel ch;
    assert_int_equal(st->ops->begin(st), 0);
    assert_int_equal(st->ops->head(st, "app", name, strlen(name), true, &ch), 0);
    assert_int_equal(st->ops->commit(st), 0);
    return ch;
}

static bool move(store *st, const char *user, const store_channel *ch, uint64_t seq)
{
    bool moved = false;
    assert_int_equal(st->ops->begin(st), 0);
    assert_int_equal(st->ops->read_set(st, "app", user, strlen(user), ch->key, seq, &moved), 0);
    assert_int_equal(st->ops->commit(st), 0);
    return moved;
}

typedef struct unread_rows {
    char names[8][32];
    store_unread rows[8];
    size_t n;
} unread_rows;

static void collect_unread(void *ctx, const store_unread *u)
{
    unread_rows *r = ctx;
    assert_true(r->n < 8);
    snprintf(r->names[r->n], sizeof(r->names[0]), "%.*s", (int)u->name_len, u->name);
    r->rows[r->n] = *u;
    r->rows[r->n].name = r->names[r->n];
    r->rows[r->n].epoch = NULL; /* borrowed for the call only */
    r->n++;
}

static const store_unread *row_of(const unread_rows *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->names[i], name) == 0)
            return &r->rows[i];
    return NULL;
}

static void read_cursors_and_unread_counts(void **state)
{
    fixture *fx = *state;
    store *st = fx->st;
    store_channel a = make_channel(st, "private-a"), b = make_channel(st, "private-b");
    append_by(st, &a, 3, "bob");   /* 1-3 */
    append_by(st, &a, 2, "alice"); /* 4-5: her own */
    append_by(st, &a, 2, NULL);    /* 6-7: the app's */
    append_by(st, &b, 4, "bob");

    assert_true(move(st, "alice", &a, 3));
    assert_false(move(st, "alice", &a, 2)); /* backwards: stays */
    assert_false(move(st, "alice", &a, 3)); /* again: no move */
    assert_true(move(st, "alice", &a, 4));
    assert_false(move(st, "alice", &b, 0)); /* only "was subscribed" */

    uint64_t before = atomic_load(&st->unread_statements);
    unread_rows r = {0};
    assert_int_equal(
        st->ops->unread(st, "app", "alice", 5, NULL, "#server-to-user-alice", collect_unread, &r),
        0);
    assert_int_equal(r.n, 3); /* her two channels and her own */
    const store_unread *ra = row_of(&r, "private-a"), *rb = row_of(&r, "private-b");
    assert_non_null(ra);
    assert_int_equal(ra->read_seq, 4);
    assert_int_equal(ra->last_seq, 7);
    assert_int_equal(ra->unread, 2); /* 6 and 7; 5 is hers */
    assert_non_null(rb);
    assert_int_equal(rb->read_seq, 0);
    assert_int_equal(rb->unread, 4);
    const store_unread *own = row_of(&r, "#server-to-user-alice");
    assert_non_null(own);
    assert_int_equal(own->last_seq, 0);

    memset(&r, 0, sizeof(r)); /* the channels asked, one unknown, one twice */
    assert_int_equal(st->ops->unread(st, "app", "bob", 3,
                                     "[\"private-a\",\"private-zzz\",\"private-a\"]", "",
                                     collect_unread, &r),
                     0);
    assert_int_equal(r.n, 2);
    assert_int_equal(row_of(&r, "private-a")->unread, 4); /* 4-7: not his */
    assert_int_equal(row_of(&r, "private-zzz")->last_seq, 0);
    assert_int_equal(atomic_load(&st->unread_statements) - before, 2);

    /* cursors survive reopening */
    st->ops->close(st);
    char err[256];
    fx->st = st = store_sqlite_open(fx->path, err, sizeof(err));
    assert_non_null(st);
    memset(&r, 0, sizeof(r));
    assert_int_equal(
        st->ops->unread(st, "app", "alice", 5, NULL, "#server-to-user-alice", collect_unread, &r),
        0);
    assert_int_equal(row_of(&r, "private-a")->read_seq, 4);
}

/* The unread statement reads every table through an index: no step of its
 * plan scans channels, reads or events whole. */
static void unread_reads_by_index_only(void **state)
{
    fixture *fx = *state;
    fx->st->ops->close(fx->st); /* the store holds the file exclusively */
    fx->st = NULL;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    char sql[2048];
    snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", store_sqlite_unread_sql);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    int steps = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(q, 3);
        steps++;
        if (strncmp(detail, "SCAN ", 5) == 0) /* only the list of names may be walked */
            assert_true(strstr(detail, "json_each") || strcmp(detail, "SCAN n") == 0 ||
                        strstr(detail, "CONSTANT"));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    assert_true(steps > 3);
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Commit after commit, as the history thread does (maintain between
 * transactions): 40,000 commits write at least 40,000 WAL frames (160 MiB
 * of 4 KiB pages), yet the WAL stays near its 16,384-frame bound, and the
 * events reach the database file. Before the bound, the WAL only grew, and
 * the checkpoint connection had never opened it, so nothing was copied. */
static void wal_stays_bounded(void **state)
{
    fixture *fx = *state;
    store *st = fx->st;
    store_channel chans[64];
    for (int i = 0; i < 64; i++) {
        char name[32];
        int len = snprintf(name, sizeof(name), "wal-%d", i);
        assert_int_equal(st->ops->head(st, "app", name, (size_t)len, true, &chans[i]), 0);
    }
    for (int i = 0; i < 40000; i++) {
        append_n(st, &chans[i % 64], 1, 1000);
        st->ops->maintain(st);
    }
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", fx->path);
    long long wal_bytes = file_size(wal), db_bytes = file_size(fx->path);
    assert_true(wal_bytes > 0);
    assert_true(wal_bytes < 72LL * 1024 * 1024); /* 16,384 frames and a little */
    assert_true(db_bytes > 64LL * 1024);         /* the checkpoints copied the events */
    seen s = {0};
    assert_int_equal(st->ops->range(st, &chans[5], 180, 190, 0, 64, false, collect, &s), 0);
    assert_int_equal(s.n, 10); /* channel 5 got commits 5, 69, ...: 625 events */
    assert_int_equal(s.seqs[9], 190);
}

/* The store is the file's only user: another connection cannot read it
 * while the store is open (no file locks per transaction, no -shm file),
 * and can once it is closed. */
static void the_file_is_held_exclusively(void **state)
{
    fixture *fx = *state;
    store_channel ch;
    assert_int_equal(fx->st->ops->head(fx->st, "app", "excl", 4, true, &ch), 0);
    append_n(fx->st, &ch, 3, 1000);
    char shm[160];
    snprintf(shm, sizeof(shm), "%s-shm", fx->path);
    assert_int_equal(access(shm, F_OK), -1);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM events", NULL, NULL, NULL),
                     SQLITE_BUSY);
    fx->st->ops->close(fx->st);
    fx->st = NULL;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 3);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(heads_survive_reopening, setup, teardown),
        cmocka_unit_test_setup_teardown(skips_leave_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(ranges_and_trims, setup, teardown),
        cmocka_unit_test_setup_teardown(a_newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(read_cursors_and_unread_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(unread_reads_by_index_only, setup, teardown),
        cmocka_unit_test_setup_teardown(wal_stays_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(the_file_is_held_exclusively, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* wal_batch (the VFS that writes a commit's WAL frames at once): nothing
 * is left gathered once a COMMIT returns, with commits of one page, of
 * more than the VFS holds and of more than the page cache holds; every
 * commit is in the file when the process leaves right after it without
 * closing (what kill -9 leaves); a checkpoint copies every commit; and a
 * write that fails (a full disk) fails its commit and leaves the file
 * sound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/wal_batch.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/hark-walbatch-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/t.sqlite3", fx->dir);
    assert_int_equal(wal_batch_register(), SQLITE_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static sqlite3 *open_batched(const char *path)
{
    sqlite3 *db;
    assert_int_equal(
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, WAL_BATCH_VFS),
        SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL;"
                                  "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;"
                                  "CREATE TABLE IF NOT EXISTS t (k INTEGER, seq INTEGER, v TEXT,"
                                  " PRIMARY KEY (k, seq)) WITHOUT ROWID",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    return db;
}

/* One transaction: rows for keys [0, keys), each with a value of len bytes,
 * so that each key's rows sit on pages of their own. */
static void commit_rows(sqlite3 *db, int round, int keys, int len)
{
    char *v = malloc((size_t)len + 1);
    memset(v, 'a' + round % 26, (size_t)len);
    v[len] = '\0';
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2, ?3)", -1, &q, NULL),
                     SQLITE_OK);
    for (int k = 0; k < keys; k++) {
        sqlite3_bind_int(q, 1, k * 1000);
        sqlite3_bind_int(q, 2, round);
        sqlite3_bind_text(q, 3, v, len, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_DONE);
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    free(v);
}

static int count_rows(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static void nothing_is_left_after_a_commit(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = open_batched(fx->path);
    for (int round = 0; round < 200; round++) {
        /* one page, then many, then more than the VFS holds at once */
        int keys = round % 3 == 0 ? 1 : round % 3 == 1 ? 40 : 120;
        commit_rows(db, round, keys, 1000);
        assert_int_equal(wal_batch_pending(db), 0);
    }
    sqlite3_close(db);
    assert_int_equal(count_rows(fx->path), (1 + 40 + 120) * 66 + 1 + 40);
}

/* The child commits and leaves without closing anything: only what the
 * kernel was given survives it. */
static void commits_survive_the_process_dying(void **state)
{
    fixture *fx = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *db = open_batched(fx->path);
        for (int round = 0; round < 50; round++)
            commit_rows(db, round, 7, 300);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(count_rows(fx->path), 50 * 7);
}

/* A checkpoint copies every commit, and the WAL starts over after it. */
static void a_checkpoint_copies_every_commit(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = open_batched(fx->path);
    for (int round = 0; round < 30; round++)
        commit_rows(db, round, 20, 500);
    int log = -1, copied = -1;
    assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied),
                     SQLITE_OK);
    assert_true(log > 0);
    assert_int_equal(copied, log);
    commit_rows(db, 30, 20, 500); /* starts the WAL over */
    sqlite3_close(db);
    assert_int_equal(count_rows(fx->path), 31 * 20);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* A transaction larger than the page cache writes frames before its
 * commit, then rewrites them in place and redoes their checksums: none of
 * that may stay gathered. */
static void a_transaction_larger_than_the_cache_leaves_nothing(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = open_batched(fx->path);
    exec_ok(db, "PRAGMA cache_size = 10");
    for (int round = 0; round < 6; round++) {
        commit_rows(db, round, 200, 1000); /* about 60 pages */
        assert_int_equal(wal_batch_pending(db), 0);
        commit_rows(db, 100 + round, 1, 10);
        assert_int_equal(wal_batch_pending(db), 0);
    }
    sqlite3_close(db);
    assert_int_equal(count_rows(fx->path), 6 * 201);
}

static void file_size_limit(long long bytes)
{
    struct rlimit r;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &r), 0);
    r.rlim_cur = bytes < 0 ? r.rlim_max : (rlim_t)bytes;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &r), 0);
}

static long long size_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The disk fills up: a commit of 31 pages fails (its last frame's header
 * is gathered, its page no longer fits, writing out what is gathered
 * fails), then a commit of one page fails with room for a frame's header
 * but not its page. Neither may count as committed, and once there is room
 * again the file is sound. */
static void a_failed_write_fails_the_commit(void **state)
{
    fixture *fx = *state;
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", fx->path);
    signal(SIGXFSZ, SIG_IGN);
    sqlite3 *db = open_batched(fx->path);
    exec_ok(db, "CREATE TABLE b (k INTEGER PRIMARY KEY, v BLOB);"
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100)"
                " INSERT INTO b SELECT x, zeroblob(3000) FROM c");
    file_size_limit(size_of(wal));
    exec_ok(db, "BEGIN IMMEDIATE; UPDATE b SET v = randomblob(3000) WHERE k <= 31");
    assert_int_not_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    if (!sqlite3_get_autocommit(db))
        exec_ok(db, "ROLLBACK");
    assert_int_equal(wal_batch_pending(db), 0);
    file_size_limit(size_of(wal) + 24);
    exec_ok(db, "BEGIN IMMEDIATE; UPDATE b SET v = x'01' WHERE k = 50");
    assert_int_not_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    if (!sqlite3_get_autocommit(db))
        exec_ok(db, "ROLLBACK");
    file_size_limit(-1);
    exec_ok(db, "UPDATE b SET v = x'02' WHERE k = 60");
    sqlite3_close(db);
    signal(SIGXFSZ, SIG_DFL);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT sum(v = zeroblob(3000)), sum(v = x'02'),"
                                        " sum(v = x'01') FROM b",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 99); /* the failed commits left nothing */
    assert_int_equal(sqlite3_column_int(q, 1), 1);
    assert_int_equal(sqlite3_column_int(q, 2), 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nothing_is_left_after_a_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(commits_survive_the_process_dying, setup, teardown),
        cmocka_unit_test_setup_teardown(a_checkpoint_copies_every_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(a_transaction_larger_than_the_cache_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_failed_write_fails_the_commit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

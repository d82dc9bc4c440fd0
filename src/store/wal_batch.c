/* wal_batch — one pwrite per commit for the WAL (see wal_batch.h).
 *
 * SQLite (3.40, WAL, synchronous=NORMAL) writes a commit as, per frame, a
 * 24-byte header then the page, at increasing offsets; the commit frame's
 * header carries the database size after the commit (bytes 4..7, nonzero
 * only there). A transaction larger than the page cache writes some
 * frames early, and at its commit rewrites them in place and redoes their
 * headers' checksums: those writes land below the frontier and go straight
 * through. The unit test test_wal_batch checks that nothing is left
 * gathered after a commit, in both cases; the store also writes out
 * anything left after each COMMIT, and reopens its connection if that
 * fails. */
#include "store/wal_batch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_HEADER 24

typedef struct wal_file {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, right after this struct */
    unsigned char *buf; /* WAL_BATCH_MAX bytes */
    size_t len;         /* gathered bytes, to be written at off */
    sqlite3_int64 off;
    /* where new frames go: past every byte written since the WAL started
     * over (a write below it rewrites a frame of this transaction) */
    sqlite3_int64 frontier;
    sqlite3_int64 commit_page; /* the commit frame's page is written here; -1: none */
} wal_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs batch_vfs;
static const sqlite3_io_methods wal_methods;

static int write_out(wal_file *w)
{
    if (w->len == 0)
        return SQLITE_OK;
    int rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len, w->off);
    w->len = 0; /* on failure SQLite fails the commit and writes its frames again */
    return rc;
}

static int wal_close(sqlite3_file *f)
{
    wal_file *w = (wal_file *)f;
    write_out(w);
    free(w->buf);
    w->buf = NULL;
    return w->real->pMethods->xClose(w->real);
}

static int wal_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 off)
{
    wal_file *w = (wal_file *)f;
    int rc = write_out(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, out, amt, off);
}

/* Only new frames are gathered: the WAL's header (offset 0: the WAL starts
 * over), or a write at or past the frontier that continues what is
 * gathered or starts afresh. Anything else (a frame of this transaction
 * rewritten in place, its header's checksums redone) is written through,
 * after what is gathered, so nothing but a new frame ever waits here, and
 * the commit frame's page writes everything out before it returns. */
static int wal_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 off)
{
    wal_file *w = (wal_file *)f;
    size_t n = (size_t)amt;
    bool commit = off == w->commit_page;
    w->commit_page = -1;
    if (off == 0)
        w->frontier = 0; /* the WAL's header: it starts over */
    bool fresh = off >= w->frontier;
    if (off + (sqlite3_int64)n > w->frontier)
        w->frontier = off + (sqlite3_int64)n;
    if (fresh && w->len > 0 && off == w->off + (sqlite3_int64)w->len &&
        w->len + n <= WAL_BATCH_MAX) {
        memcpy(w->buf + w->len, data, n);
        w->len += n;
    } else {
        int rc = write_out(w);
        if (rc != SQLITE_OK)
            return rc;
        if (!fresh || n > WAL_BATCH_MAX)
            return w->real->pMethods->xWrite(w->real, data, amt, off);
        memcpy(w->buf, data, n);
        w->len = n;
        w->off = off;
    }
    if (commit)
        return write_out(w);
    if (n == FRAME_HEADER) {
        const unsigned char *h = data;
        if ((h[4] | h[5] | h[6] | h[7]) != 0) /* the database's size after a commit */
            w->commit_page = off + FRAME_HEADER;
    }
    return SQLITE_OK;
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    wal_file *w = (wal_file *)f;
    int rc = write_out(w);
    if (size < w->frontier)
        w->frontier = size;
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
    wal_file *w = (wal_file *)f;
    int rc = write_out(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    wal_file *w = (wal_file *)f;
    int rc = write_out(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wal_lock(sqlite3_file *f, int level)
{
    sqlite3_file *r = ((wal_file *)f)->real;
    return r->pMethods->xLock(r, level);
}

static int wal_unlock(sqlite3_file *f, int level)
{
    sqlite3_file *r = ((wal_file *)f)->real;
    return r->pMethods->xUnlock(r, level);
}

static int wal_check_reserved(sqlite3_file *f, int *out)
{
    sqlite3_file *r = ((wal_file *)f)->real;
    return r->pMethods->xCheckReservedLock(r, out);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg)
{
    sqlite3_file *r = ((wal_file *)f)->real;
    return r->pMethods->xFileControl(r, op, arg);
}

static int wal_sector_size(sqlite3_file *f)
{
    sqlite3_file *r = ((wal_file *)f)->real;
    return r->pMethods->xSectorSize(r);
}

static int wal_device(sqlite3_file *f)
{
    sqlite3_file *r = ((wal_file *)f)->real;
    return r->pMethods->xDeviceCharacteristics(r);
}

/* Version 1: a WAL file has no shared memory or memory map of its own. */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = wal_sector_size,
    .xDeviceCharacteristics = wal_device,
};

/* Every file but the WAL is the default VFS's own, in place. */
static int batch_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                      int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return real_vfs->xOpen(real_vfs, name, f, flags, out_flags);
    wal_file *w = (wal_file *)f;
    memset(w, 0, sizeof(*w));
    w->real = (sqlite3_file *)(w + 1);
    w->commit_page = -1;
    int rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out_flags);
    if (rc != SQLITE_OK)
        return rc;
    w->buf = malloc(WAL_BATCH_MAX);
    if (!w->buf) {
        w->real->pMethods->xClose(w->real);
        return SQLITE_NOMEM;
    }
    w->base.pMethods = &wal_methods;
    return SQLITE_OK;
}

static int batch_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int batch_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int batch_full_pathname(sqlite3_vfs *vfs, const char *name, int cap, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, cap, out);
}

static void *batch_dl_open(sqlite3_vfs *vfs, const char *path)
{
    (void)vfs;
    return real_vfs->xDlOpen(real_vfs, path);
}

static void batch_dl_error(sqlite3_vfs *vfs, int cap, char *out)
{
    (void)vfs;
    real_vfs->xDlError(real_vfs, cap, out);
}

static void (*batch_dl_sym(sqlite3_vfs *vfs, void *lib, const char *sym))(void)
{
    (void)vfs;
    return real_vfs->xDlSym(real_vfs, lib, sym);
}

static void batch_dl_close(sqlite3_vfs *vfs, void *lib)
{
    (void)vfs;
    real_vfs->xDlClose(real_vfs, lib);
}

static int batch_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int batch_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}

static int batch_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int batch_last_error(sqlite3_vfs *vfs, int cap, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, cap, out) : 0;
}

static int batch_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    if (real_vfs->iVersion >= 2 && real_vfs->xCurrentTimeInt64)
        return real_vfs->xCurrentTimeInt64(real_vfs, out);
    double day;
    int rc = real_vfs->xCurrentTime(real_vfs, &day);
    *out = (sqlite3_int64)(day * 86400000.0);
    return rc;
}

static int registered = SQLITE_ERROR;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void do_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs)
        return;
    batch_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(wal_file) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = WAL_BATCH_VFS,
        .xOpen = batch_open,
        .xDelete = batch_delete,
        .xAccess = batch_access,
        .xFullPathname = batch_full_pathname,
        .xDlOpen = batch_dl_open,
        .xDlError = batch_dl_error,
        .xDlSym = batch_dl_sym,
        .xDlClose = batch_dl_close,
        .xRandomness = batch_randomness,
        .xSleep = batch_sleep,
        .xCurrentTime = batch_current_time,
        .xGetLastError = batch_last_error,
        .xCurrentTimeInt64 = batch_current_time64,
    };
    registered = sqlite3_vfs_register(&batch_vfs, 0);
}

int wal_batch_register(void)
{
    pthread_once(&once, do_register);
    return registered;
}

static wal_file *wal_of(sqlite3 *db)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK || !f ||
        f->pMethods != &wal_methods)
        return NULL;
    return (wal_file *)f;
}

size_t wal_batch_pending(sqlite3 *db)
{
    wal_file *w = wal_of(db);
    return w ? w->len : 0;
}

int wal_batch_flush(sqlite3 *db)
{
    wal_file *w = wal_of(db);
    return w ? write_out(w) : SQLITE_OK;
}

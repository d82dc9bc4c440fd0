/* wal_batch — a SQLite VFS ("hark-wal-batch") that writes each commit's
 * WAL frames with one pwrite instead of two per frame.
 *
 * SQLite writes a WAL frame as its 24-byte header and then its page, each
 * a pwrite of its own; a commit that touches k pages (one per channel
 * appended to) costs 2k system calls. This VFS passes every file through
 * to the default VFS except the WAL, whose writes it gathers while they
 * follow one another in the file and hands to the kernel in one pwrite
 * when the commit frame's page is written (the header says which frame
 * commits), before that write returns: a commit is in the kernel when
 * SQLite sees it done, and a failed write fails the commit, as before.
 * Anything else on the WAL (a read, a write elsewhere, sync, truncate,
 * size, close) first writes out what is gathered. At most WAL_BATCH_MAX
 * bytes are held per file. */
#ifndef HARK_STORE_WAL_BATCH_H
#define HARK_STORE_WAL_BATCH_H

#include <sqlite3.h>
#include <stddef.h>

#define WAL_BATCH_VFS "hark-wal-batch"
/* below 128 KiB: the unix VFS writes at most 0x1ffff bytes per call */
#define WAL_BATCH_MAX (124 * 1024)

/* Registers the VFS (once; not as the default). SQLITE_OK or an error. */
int wal_batch_register(void);

/* Bytes gathered and not yet written for the WAL of db's main database
 * (0 when it has no WAL open through this VFS). */
size_t wal_batch_pending(sqlite3 *db);

/* Writes out what is gathered for db's WAL. SQLITE_OK or an I/O error. */
int wal_batch_flush(sqlite3 *db);

#endif

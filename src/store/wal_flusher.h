/* wal_flusher — a thread that fdatasyncs a WAL file ahead of its
 * checkpoint.
 *
 * A SQLite checkpoint first fsyncs the WAL, which would write everything
 * committed since the last one (about 40 ms for 16 MiB here) while the
 * writer waits. The flusher syncs the file by a descriptor of its own
 * after every WAL_FLUSH_FRAMES pages committed, and at most WAL_FLUSH_MS
 * after a commit, so the checkpoint finds little to write. It only starts
 * the disk early: the order of syncs that keeps the file sound is still
 * SQLite's. */
#ifndef HARK_STORE_WAL_FLUSHER_H
#define HARK_STORE_WAL_FLUSHER_H

#define WAL_FLUSH_FRAMES 256 /* 1 MiB of 4 KiB pages */
#define WAL_FLUSH_MS 200

typedef struct wal_flusher wal_flusher;

/* Starts the thread for the WAL at wal_path (opened when first needed).
 * NULL when the thread cannot start. */
wal_flusher *wal_flusher_start(const char *wal_path);

/* After a commit (the writer's thread): frames pages were added. */
void wal_flusher_committed(wal_flusher *f, unsigned frames);

/* The writer reopened its connection: the file may be a new one. */
void wal_flusher_reopened(wal_flusher *f);

/* Stops the thread and closes its descriptor. NULL is ignored. */
void wal_flusher_stop(wal_flusher *f);

#endif

/* wal_flusher — see wal_flusher.h. */
#include "store/wal_flusher.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/xalloc.h"

struct wal_flusher {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    bool stop;
    atomic_uint unflushed; /* pages committed since the last fdatasync */
    atomic_bool reopened;  /* open the file again before the next sync */
    int fd;                /* the thread's own; -1 until opened */
    char path[];
};

static void *flusher_main(void *arg)
{
    wal_flusher *f = arg;
    pthread_mutex_lock(&f->lock);
    while (!f->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        /* with a tv_nsec of a second or more the wait fails at once (EINVAL)
         * and this loop would spin holding the lock */
        until.tv_sec += WAL_FLUSH_MS / 1000;
        until.tv_nsec += (WAL_FLUSH_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        /* a signal sent while it synced is not lost: the count says so */
        if (atomic_load(&f->unflushed) < WAL_FLUSH_FRAMES)
            pthread_cond_timedwait(&f->wake, &f->lock, &until);
        if (f->stop || atomic_exchange(&f->unflushed, 0) == 0)
            continue;
        pthread_mutex_unlock(&f->lock);
        if (atomic_exchange(&f->reopened, false) && f->fd >= 0) {
            close(f->fd);
            f->fd = -1;
        }
        if (f->fd < 0)
            f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (f->fd >= 0)
            fdatasync(f->fd);
        pthread_mutex_lock(&f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

wal_flusher *wal_flusher_start(const char *wal_path)
{
    size_t len = strlen(wal_path);
    wal_flusher *f = xcalloc(1, sizeof(*f) + len + 1);
    memcpy(f->path, wal_path, len + 1);
    f->fd = -1;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&f->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&f->thread, NULL, flusher_main, f) != 0) {
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->wake);
        free(f);
        return NULL;
    }
    return f;
}

void wal_flusher_committed(wal_flusher *f, unsigned frames)
{
    unsigned before = atomic_fetch_add(&f->unflushed, frames);
    if (before / WAL_FLUSH_FRAMES != (before + frames) / WAL_FLUSH_FRAMES) {
        pthread_mutex_lock(&f->lock);
        pthread_cond_signal(&f->wake);
        pthread_mutex_unlock(&f->lock);
    }
}

void wal_flusher_reopened(wal_flusher *f)
{
    atomic_store(&f->reopened, true);
}

void wal_flusher_stop(wal_flusher *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);
    if (f->fd >= 0)
        close(f->fd);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->wake);
    free(f);
}

/* webhook_journal_file — the journal on disk (data_dir/webhooks/journal):
 * records appended before any request can carry an event, completion
 * records after, compaction, and on start the replay that takes back what
 * is still owed (events for targets no longer configured become dead
 * letters). The record format is in webhook_journal.c. */
#include "webhook/webhook_internal.h"

#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Rewrite the journal once it is this large and mostly completed records. */
#define JOURNAL_COMPACT_BYTES (16u << 20)

static int write_fd(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Writes what is buffered. Called before any request goes out, so an event
 * is on disk before a receiver can see it. */
void wh_jfile_flush(webhooks *w)
{
    if (w->jbuf.len == 0)
        return;
    if (w->jfd >= 0) {
        int rc = write_fd(w->jfd, w->jbuf.data, w->jbuf.len);
        if (rc == 0) {
            w->jsize += w->jbuf.len;
            w->jerr_logged = false;
        } else if (!w->jerr_logged) {
            w->jerr_logged = true;
            log_error("webhooks: cannot write %s: %s; queued events are in memory only", w->jpath,
                      strerror(-rc));
        }
    }
    buf_reset(&w->jbuf);
}

static void add_record(buf *out, const wh_item *it)
{
    wh_jrec r = {.seq = it->seq,
                 .time_ms = it->time_ms,
                 .app_id = it->t->app->id,
                 .url = it->t->hook->url,
                 .event = it->json,
                 .event_len = it->len};
    wh_journal_add(out, &r);
}

void wh_jfile_add_item(webhooks *w, const wh_item *it)
{
    if (w->jfd < 0)
        return;
    add_record(&w->jbuf, it);
}

/* Replaces the journal with one holding only the live items. */
static int journal_rewrite(webhooks *w)
{
    size_t n = strlen(w->jpath) + 5;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp", w->jpath);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : 0;
    buf b;
    buf_init(&b);
    for (wh_item *it = w->live; rc == 0 && it; it = it->next) {
        add_record(&b, it);
        if (b.len > 65536) {
            rc = write_fd(fd, b.data, b.len);
            buf_reset(&b);
        }
    }
    uint64_t size = 0;
    if (rc == 0)
        rc = write_fd(fd, b.data, b.len);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (fd >= 0) {
        struct stat st;
        if (rc == 0 && fstat(fd, &st) == 0)
            size = (uint64_t)st.st_size;
        close(fd);
    }
    if (rc == 0 && rename(tmp, w->jpath) != 0)
        rc = -errno;
    if (rc == 0) {
        int nfd = open(w->jpath, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (nfd < 0) {
            rc = -errno;
        } else {
            if (w->jfd >= 0)
                close(w->jfd);
            w->jfd = nfd;
            w->jsize = w->jbase = size;
        }
    } else {
        unlink(tmp);
    }
    buf_free(&b);
    free(tmp);
    return rc;
}

/* Records that items are done (delivered or dead-lettered) and trims the
 * file when nothing is owed any more. */
void wh_jfile_done(webhooks *w, wh_item **items, size_t n)
{
    if (w->jfd < 0 || n == 0)
        return;
    uint64_t *seqs = xmalloc(n * sizeof *seqs);
    for (size_t i = 0; i < n; i++)
        seqs[i] = items[i]->seq;
    wh_journal_done(&w->jbuf, seqs, n);
    free(seqs);
}

void wh_jfile_maybe_compact(webhooks *w)
{
    if (w->jfd < 0)
        return;
    if (w->nlive == 0 && w->jsize + w->jbuf.len > 0) {
        buf_reset(&w->jbuf); /* only completions could be buffered: nothing is owed */
        if (ftruncate(w->jfd, 0) == 0)
            w->jsize = w->jbase = 0;
    } else if (w->jsize > JOURNAL_COMPACT_BYTES && w->jsize > 2 * w->jbase) {
        /* Mostly completed records by now; live ones alone never trigger it. */
        wh_jfile_flush(w);
        int rc = journal_rewrite(w);
        if (rc)
            log_error("webhooks: cannot compact %s: %s", w->jpath, strerror(-rc));
    }
}

/* ---- recovery on start ------------------------------------------------------- */

static wh_target *find_target(webhooks *w, const char *app_id, const char *url)
{
    for (size_t i = 0; i < w->ntargets; i++)
        if (strcmp(w->targets[i].app->id, app_id) == 0 && strcmp(w->targets[i].hook->url, url) == 0)
            return &w->targets[i];
    return NULL;
}

/* Records of targets no longer configured, grouped into dead letters. */
typedef struct orphan {
    char *app_id, *url;
    buf events;
    unsigned n;
} orphan;

typedef struct recovery {
    webhooks *w;
    orphan *orphans;
    size_t norphans;
    size_t recovered;
} recovery;

static void on_recovered(const wh_jrec *r, void *ctx)
{
    recovery *rc = ctx;
    webhooks *w = rc->w;
    wh_target *t = find_target(w, r->app_id, r->url);
    if (t) {
        wh_queue_push(t, wh_item_new(w, t, r->event, r->event_len, r->time_ms));
        rc->recovered++;
        return;
    }
    orphan *o = NULL;
    for (size_t i = 0; i < rc->norphans; i++)
        if (strcmp(rc->orphans[i].app_id, r->app_id) == 0 &&
            strcmp(rc->orphans[i].url, r->url) == 0)
            o = &rc->orphans[i];
    if (!o) {
        orphan *p = realloc(rc->orphans, (rc->norphans + 1) * sizeof *p);
        if (!p)
            abort();
        rc->orphans = p;
        o = &p[rc->norphans++];
        o->app_id = xstrdup(r->app_id);
        o->url = xstrdup(r->url);
        buf_init(&o->events);
        o->n = 0;
    }
    if (o->n)
        buf_append_char(&o->events, ',');
    buf_append(&o->events, r->event, r->event_len);
    o->n++;
}

/* Opens the journal, takes back what it still owes, and writes it anew
 * with only that. Runs before the thread starts. */
void wh_jfile_open(webhooks *w)
{
    w->jfd = -1;
    w->lockfd = -1;
    int rc = wh_mkdirs(w->dir);
    if (rc) {
        log_error("webhooks: cannot create %s: %s; webhooks are not journaled", w->dir,
                  strerror(-rc));
        return;
    }
    size_t n = strlen(w->dir) + 8;
    char *lockpath = xmalloc(n);
    snprintf(lockpath, n, "%s/lock", w->dir);
    w->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (w->lockfd < 0 || flock(w->lockfd, LOCK_EX | LOCK_NB) != 0) {
        log_error("webhooks: %s is in use by another hark (or cannot be opened: %s); webhooks "
                  "are not journaled",
                  lockpath, strerror(errno));
        if (w->lockfd >= 0)
            close(w->lockfd);
        w->lockfd = -1;
        free(lockpath);
        return;
    }
    free(lockpath);

    buf old;
    buf_init(&old);
    int fd = open(w->jpath, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char chunk[65536];
        ssize_t k;
        while ((k = read(fd, chunk, sizeof chunk)) > 0)
            buf_append(&old, chunk, (size_t)k);
        close(fd);
    }
    recovery r = {.w = w};
    size_t bad = 0;
    if (old.len)
        wh_journal_replay(old.data, old.len, on_recovered, &r, &bad);
    buf_free(&old);
    if (bad)
        log_warn("webhooks: skipped %zu unreadable journal line(s) in %s (a write cut short)", bad,
                 w->jpath);
    for (size_t i = 0; i < r.norphans; i++) {
        orphan *o = &r.orphans[i];
        buf body;
        buf_init(&body);
        buf_printf(&body, "{\"time_ms\":%lld,\"events\":[", (long long)wh_now_ms());
        buf_append(&body, o->events.data, o->events.len);
        buf_append_str(&body, "]}");
        wh_dead d = {.app_id = o->app_id,
                     .url = o->url,
                     .body = body.data,
                     .body_len = body.len,
                     .failed_at_ms = wh_now_ms(),
                     .events = o->n,
                     .error = "webhook no longer configured"};
        int drc = wh_dead_write(w->dead_dir, &d);
        if (drc == 0)
            log_warn("webhooks: %u journaled event(s) for app %s to %s, no longer configured, "
                     "dead-lettered as %s",
                     o->n, o->app_id, o->url, d.id);
        else
            log_error("webhooks: lost %u event(s) for app %s to %s: cannot dead-letter: %s", o->n,
                      o->app_id, o->url, strerror(-drc));
        free(d.id);
        buf_free(&body);
        buf_free(&o->events);
        free(o->app_id);
        free(o->url);
    }
    free(r.orphans);
    if (r.recovered)
        log_info("webhooks: %zu undelivered event(s) taken back from %s", r.recovered, w->jpath);
    rc = journal_rewrite(w);
    if (rc) {
        log_error("webhooks: cannot write %s: %s; webhooks are not journaled", w->jpath,
                  strerror(-rc));
        if (w->jfd >= 0)
            close(w->jfd);
        w->jfd = -1;
    }
}

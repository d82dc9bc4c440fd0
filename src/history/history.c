#include "history/history.h"

#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history/history_internal.h"
#include "protocol/pusher_msg.h"
#include "util/log.h"
#include "util/xalloc.h"

#define BATCH_MAX 4096      /* requests written in one transaction at most */
#define TRIM_EVERY_MS 10000 /* age retention: one pass over the channels */
#define TRIM_CHANNELS 256   /* channels per maintenance step */
#define TRIM_ROWS 1000      /* rows deleted per channel per step */
#define GAPS_RETRY_MS 1000  /* idle: how often gaps waiting for the store are tried */

int64_t history_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t history_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void job_free(job *j)
{
    for (size_t i = 0; i < j->num_events; i++) {
        job_event *e = &j->events[i];
        free(e->channel);
        free(e->event);
        free(e->data);
        free(e->user_id);
    }
    free(j->events);
    free(j->ids);
    free(j->channel);
    free(j->user);
    free(j->names_json);
    for (size_t i = 0; i < j->num_poll; i++)
        free(j->poll[i].name);
    free(j->poll);
    for (size_t i = 0; i < j->num_frames; i++)
        frame_unref(j->frames[i]);
    free(j->frames);
    buf_free(&j->json);
    free(j);
}

void history_enqueue(history *hs, job *j)
{
    j->hs = hs;
    pthread_mutex_lock(&hs->lock);
    if (hs->tail)
        hs->tail->next = j;
    else
        hs->head = j;
    hs->tail = j;
    pthread_mutex_unlock(&hs->lock);
    /* after the unlock: the thread woken inside it would block on the lock */
    pthread_cond_signal(&hs->wake);
}

/* --- the channel cache ------------------------------------------------------- */

static void forget_channels(history *hs)
{
    history_wake_all(hs); /* waiting polls point at the entries */
    for (size_t i = 0; i < hs->channels.cap; i++)
        if (hs->channels.slots[i].key)
            free(hs->channels.slots[i].value);
    strmap_free(&hs->channels);
    strmap_init(&hs->channels);
}

chan_entry *history_channel(history *hs, size_t app, const char *name, size_t len, bool create,
                            int *rc)
{
    char prefix[24];
    int plen = snprintf(prefix, sizeof(prefix), "%zu:", app);
    size_t klen = (size_t)plen + len;
    char *key = xmalloc(klen);
    memcpy(key, prefix, (size_t)plen);
    memcpy(key + plen, name, len);
    chan_entry *e = strmap_get(&hs->channels, key, klen);
    free(key);
    *rc = 0;
    if (e)
        return e;
    store_channel ch;
    const char *app_id = hs->cfg->apps[app].id;
    *rc = hs->st->ops->head(hs->st, app_id, name, len, create, &ch);
    if (*rc != 0)
        return NULL;
    e = xmalloc(sizeof(*e) + klen);
    e->ch = ch;
    e->tag = history_tag(app_id, name, len);
    e->max_events = 0;
    e->appended = false;
    e->waiters = NULL;
    e->key_len = (uint32_t)klen;
    memcpy(e->key, prefix, (size_t)plen);
    memcpy(e->key + plen, name, len);
    strmap_put(&hs->channels, e->key, klen, e);
    return e;
}

/* --- publishing -------------------------------------------------------------- */

void history_publish(history *hs, hub *from, size_t app, const history_event *events, size_t n,
                     history_published_fn done, void *ctx)
{
    job *j = xcalloc(1, sizeof(*j));
    j->kind = JOB_PUBLISH;
    j->from = from;
    j->app = app;
    j->published = done;
    j->ctx = ctx;
    j->events = xcalloc(n ? n : 1, sizeof(*j->events));
    j->ids = xcalloc(n ? n : 1, sizeof(*j->ids));
    j->num_events = n;
    const hk_app *a = &hs->cfg->apps[app];
    for (size_t i = 0; i < n; i++) {
        const history_event *in = &events[i];
        job_event *e = &j->events[i];
        e->channel = xmemdup(in->channel, in->channel_len);
        e->channel_len = in->channel_len;
        e->event = xmemdup(in->event, in->event_len);
        e->event_len = in->event_len;
        e->data = xmemdup(in->data_json, in->data_len);
        e->data_len = in->data_len;
        if (in->user_id) {
            e->user_id = xmemdup(in->user_id, in->user_id_len);
            e->user_id_len = in->user_id_len;
        }
        if (in->except_socket_id)
            snprintf(e->except, sizeof(e->except), "%s", in->except_socket_id);
        const hk_history_rule *rule = history_rule(a, in->channel, in->channel_len);
        e->max_events = rule ? rule->max_events : HK_HISTORY_DEFAULT_EVENTS;
        e->max_age_s = rule ? rule->max_age_s : HK_HISTORY_DEFAULT_AGE_S;
    }
    history_enqueue(hs, j);
}

/* Inside the batch's transaction. */
static int write_events(history *hs, job *j)
{
    int64_t now = history_now_ms();
    for (size_t i = 0; i < j->num_events; i++) {
        job_event *e = &j->events[i];
        int rc;
        chan_entry *c = history_channel(hs, j->app, e->channel, e->channel_len, true, &rc);
        if (!c)
            return -1;
        store_event ev = {.seq = c->ch.last_seq + 1,
                          .published_at_ms = now,
                          .event = e->event,
                          .event_len = e->event_len,
                          .data = e->data,
                          .data_len = e->data_len,
                          .user_id = e->user_id,
                          .user_id_len = e->user_id_len};
        if (hs->st->ops->append(hs->st, &c->ch, &ev) != 0)
            return -1;
        c->ch.last_seq = ev.seq;
        c->max_events = e->max_events;
        if (c->waiters)
            history_wake_waiters(hs, c); /* they run after this commit */
        if (!c->appended) {
            c->appended = true;
            if (hs->num_touched == hs->cap_touched) {
                hs->cap_touched = hs->cap_touched ? hs->cap_touched * 2 : 64;
                hs->touched = xrealloc(hs->touched, hs->cap_touched * sizeof(chan_entry *));
            }
            hs->touched[hs->num_touched++] = c;
        }
        e->seq = ev.seq;
        memcpy(e->epoch, c->ch.epoch, sizeof(e->epoch));
        e->tag = c->tag;
        history_id_format(j->ids[i], c->ch.epoch, c->tag, ev.seq);
    }
    return 0;
}

/* max_events: what the batch's appends pushed out. */
static int trim_by_count(history *hs)
{
    int rc = 0;
    for (size_t i = 0; i < hs->num_touched; i++) {
        chan_entry *c = hs->touched[i];
        c->appended = false;
        if (rc != 0 || c->ch.last_seq <= c->max_events)
            continue;
        uint32_t removed;
        rc = hs->st->ops->trim(hs->st, &c->ch, c->ch.last_seq - c->max_events, 0, TRIM_ROWS,
                               &removed);
    }
    hs->num_touched = 0;
    return rc;
}

/* The answer to a publish, on the requester's worker. */
typedef struct publish_answer {
    history_published_fn fn;
    void *ctx;
    size_t count;
    bool failed;
    char (*ids)[HISTORY_ID_MAX + 1];
    char message[200];
} publish_answer;

static void published_call(hub *h, void *arg)
{
    publish_answer *a = arg;
    if (h) {
        history_published r = {.count = a->count,
                               .stored = !a->failed,
                               .error = a->failed ? a->message : NULL,
                               .ids = (const char(*)[HISTORY_ID_MAX + 1]) a->ids};
        a->fn(h, a->ctx, &r);
    } else {
        a->fn(NULL, a->ctx, NULL);
    }
    free(a->ids);
    free(a);
}

/* After the commit: the answer first (so a client waiting for it can send
 * its next event while this one is fanned out), then each event live, with
 * its id when stored. */
static void deliver_published(job *j)
{
    if (j->published) {
        publish_answer *a = xmalloc(sizeof(*a));
        *a = (publish_answer){.fn = j->published,
                              .ctx = j->ctx,
                              .count = j->num_events,
                              .failed = j->failed,
                              .ids = j->ids};
        memcpy(a->message, j->message, sizeof(a->message));
        j->ids = NULL;
        hub_post_reply(j->from, published_call, a);
    }
    for (size_t i = 0; i < j->num_events; i++) {
        job_event *e = &j->events[i];
        buf b;
        frame_buf_init(&b);
        buf_reserve(&b, e->data_len + e->channel_len + e->event_len + 96);
        char id[HISTORY_ID_MAX + 1];
        size_t id_len = 0;
        if (!j->failed)
            id_len = history_id_format(id, e->epoch, e->tag, e->seq);
        if (j->failed)
            pusher_encode_raw_data(&b, e->event, e->event_len, e->channel, e->channel_len, e->data,
                                   e->data_len, e->user_id, e->user_id_len);
        else
            pusher_encode_stored(&b, e->event, e->event_len, e->channel, e->channel_len, e->data,
                                 e->data_len, e->user_id, e->user_id_len, id, id_len);
        frame *f = frame_buf_take(&b);
        if (!j->failed) {
            f->seq = e->seq;
            f->stream = frame_stream(e->channel, e->channel_len);
        }
        hub_publish_posted(j->from, j->app, e->channel, e->channel_len, f,
                           e->except[0] ? e->except : NULL);
        frame_unref(f);
    }
    job_free(j);
}

/* --- the thread -------------------------------------------------------------- */

static void fail_batch(history *hs, job *batch, const char *why)
{
    log_warn("history: %s", why);
    for (job *j = batch; j; j = j->next) {
        j->failed = true;
        snprintf(j->message, sizeof(j->message), "History storage failed: %.150s", why);
        if (j->kind == JOB_PUBLISH) /* they still go out live, without ids */
            for (size_t i = 0; i < j->num_events; i++)
                history_gaps_note(hs, j->app, j->events[i].channel, j->events[i].channel_len);
    }
    hs->st->ops->rollback(hs->st);
    hs->num_touched = 0;
    forget_channels(hs); /* their heads may have moved in the rolled-back writes */
}

static void run_batch(history *hs, job *batch)
{
    /* history_cache_channels: past it, forget them all (reloaded as needed) */
    if (hs->channels.count > hs->cfg->history_cache_channels)
        forget_channels(hs);
    store *st = hs->st;
    int rc = st->ops->begin(st);
    bool gaps = rc == 0 && history_gaps_pending(hs);
    if (gaps) {
        forget_channels(hs); /* their heads move */
        rc = history_gaps_write(hs);
    }
    for (job *j = batch; j && rc == 0; j = j->next) {
        switch (j->kind) {
        case JOB_PUBLISH:
            rc = write_events(hs, j);
            break;
        case JOB_RESUME:
            history_run_resume(hs, j);
            break;
        case JOB_PAGE:
            history_run_page(hs, j);
            break;
        case JOB_READ:
            rc = history_run_read(hs, j);
            break;
        case JOB_NOTE:
            rc = history_run_note(hs, j);
            break;
        case JOB_UNREAD:
            history_run_unread(hs, j);
            break;
        case JOB_POLL:
            history_run_poll(hs, j);
            break;
        }
    }
    if (rc == 0)
        rc = trim_by_count(hs);
    if (rc == 0)
        rc = st->ops->commit(st);
    if (rc != 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", st->ops->error(st));
        fail_batch(hs, batch, why);
        atomic_fetch_add(&hs->write_failures, 1);
    } else {
        if (gaps)
            history_gaps_clear(hs);
        uint64_t n = 0;
        for (job *j = batch; j; j = j->next)
            n += j->kind == JOB_PUBLISH ? j->num_events : 0;
        atomic_fetch_add(&hs->events_stored, n);
    }
    job *next;
    for (job *j = batch; j; j = next) {
        next = j->next;
        j->next = NULL;
        switch (j->kind) {
        case JOB_PUBLISH:
            deliver_published(j);
            break;
        case JOB_RESUME:
            history_answer_resume(j);
            break;
        case JOB_PAGE:
            history_answer_page(j);
            break;
        case JOB_READ:
            history_answer_read(j);
            break;
        case JOB_NOTE:
            atomic_fetch_sub(&hs->notes_queued, 1);
            job_free(j);
            break;
        case JOB_UNREAD:
            history_answer_unread(j);
            break;
        case JOB_POLL:
            history_answer_poll(j);
            break;
        }
    }
    history_requeue_woken(hs);
    /* after the answers, so that none waits for it */
    if (st->ops->maintain)
        st->ops->maintain(st);
}

typedef struct trim_ctx {
    history *hs;
    int64_t keys[TRIM_CHANNELS];
    char *names[TRIM_CHANNELS];
    size_t lens[TRIM_CHANNELS];
    size_t apps[TRIM_CHANNELS];
    size_t n;
} trim_ctx;

static void collect_channel(void *arg, int64_t key, const char *app_id, const char *name,
                            size_t len)
{
    trim_ctx *t = arg;
    size_t app = SIZE_MAX;
    for (size_t i = 0; i < t->hs->cfg->num_apps; i++)
        if (strcmp(t->hs->cfg->apps[i].id, app_id) == 0)
            app = i;
    t->keys[t->n] = key;
    t->names[t->n] = xmemdup(name, len);
    t->lens[t->n] = len;
    t->apps[t->n] = app;
    t->n++;
}

/* Age retention, a few channels per step so the thread never stops long:
 * events older than their rule's max_age_s (or of a channel no rule keeps
 * any more) go. */
static void trim_by_age(history *hs)
{
    trim_ctx t = {.hs = hs};
    store *st = hs->st;
    if (st->ops->begin(st) != 0 ||
        st->ops->channels(st, hs->trim_cursor, TRIM_CHANNELS, collect_channel, &t) != 0) {
        st->ops->rollback(st);
        return;
    }
    int64_t now = history_now_ms();
    int rc = 0;
    for (size_t i = 0; i < t.n && rc == 0; i++) {
        store_channel ch = {.key = t.keys[i]};
        const hk_history_rule *rule =
            t.apps[i] == SIZE_MAX ? NULL
                                  : history_rule(&hs->cfg->apps[t.apps[i]], t.names[i], t.lens[i]);
        int64_t cutoff = rule ? now - (int64_t)rule->max_age_s * 1000 : INT64_MAX;
        uint32_t removed;
        rc = st->ops->trim(st, &ch, 0, cutoff, TRIM_ROWS, &removed);
    }
    if (rc == 0 && st->ops->commit(st) == 0)
        hs->trim_cursor = t.n < TRIM_CHANNELS ? 0 : t.keys[t.n - 1];
    else
        st->ops->rollback(st);
    if (st->ops->maintain) /* deletes grow the WAL too, also when nothing is published */
        st->ops->maintain(st);
    for (size_t i = 0; i < t.n; i++)
        free(t.names[i]);
    if (t.n < TRIM_CHANNELS)
        hs->next_trim_ms = history_mono_ms() + TRIM_EVERY_MS;
}

/* The gaps waiting for a commit (storage failed and nothing has been
 * committed since), in a transaction of their own: the thread is idle, or
 * stopping (then the cache is left as it is, nobody reads it again). */
static void write_pending_gaps(history *hs, bool stopping)
{
    store *st = hs->st;
    if (!history_gaps_pending(hs))
        return;
    if (st->ops->begin(st) != 0) {
        st->ops->rollback(st);
        return;
    }
    if (!stopping && hs->channels.count > 0) {
        forget_channels(hs); /* their heads move */
        history_requeue_woken(hs);
    }
    if (history_gaps_write(hs) == 0 && st->ops->commit(st) == 0)
        history_gaps_clear(hs);
    else
        st->ops->rollback(st);
}

static void *history_main(void *arg)
{
    history *hs = arg;
    pthread_mutex_lock(&hs->lock);
    for (;;) {
        while (!hs->head && !hs->stopping) {
            uint64_t now = history_mono_ms();
            pthread_mutex_unlock(&hs->lock);
            uint64_t next_poll = history_expire_polls(hs, now);
            pthread_mutex_lock(&hs->lock);
            if (hs->head || hs->stopping)
                break;
            if (now >= hs->next_trim_ms) {
                pthread_mutex_unlock(&hs->lock);
                trim_by_age(hs);
                pthread_mutex_lock(&hs->lock);
                continue;
            }
            if (history_gaps_pending(hs) && now >= hs->next_gaps_ms) {
                /* storage failed: record the gaps once it works, even if
                 * nothing else is written before hark stops */
                hs->next_gaps_ms = now + GAPS_RETRY_MS;
                pthread_mutex_unlock(&hs->lock);
                write_pending_gaps(hs, false);
                pthread_mutex_lock(&hs->lock);
                continue;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            uint64_t until_ms = hs->next_trim_ms;
            if (history_gaps_pending(hs) && hs->next_gaps_ms < until_ms)
                until_ms = hs->next_gaps_ms;
            if (next_poll && next_poll < until_ms)
                until_ms = next_poll;
            uint64_t wait = until_ms > now ? until_ms - now : 0;
            until.tv_sec += (time_t)(wait / 1000);
            until.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&hs->wake, &hs->lock, &until);
        }
        if (!hs->head && hs->stopping)
            break;
        /* up to BATCH_MAX requests, oldest first, in one transaction */
        job *batch = hs->head, *last = batch;
        for (size_t n = 1; n < BATCH_MAX && last->next; n++)
            last = last->next;
        hs->head = last->next;
        if (!hs->head)
            hs->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&hs->lock);
        run_batch(hs, batch);
        pthread_mutex_lock(&hs->lock);
    }
    pthread_mutex_unlock(&hs->lock);
    write_pending_gaps(hs, true);
    history_expire_polls(hs, UINT64_MAX); /* stopping: waiting polls are answered now */
    return NULL;
}

history *history_start(const hk_config *cfg, char *err, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/history.sqlite3", cfg->data_dir);
    store *st = store_sqlite_open(path, err, cap);
    if (!st)
        return NULL;
    history *hs = xcalloc(1, sizeof(*hs));
    hs->cfg = cfg;
    hs->st = st;
    strmap_init(&hs->channels);
    strmap_init(&hs->gaps);
    pthread_mutex_init(&hs->lock, NULL);
    pthread_cond_init(&hs->wake, NULL);
    hs->next_trim_ms = history_mono_ms() + TRIM_EVERY_MS;
    if (pthread_create(&hs->thread, NULL, history_main, hs) != 0) {
        snprintf(err, cap, "cannot start the history thread: %s", strerror(errno));
        st->ops->close(st);
        free(hs);
        return NULL;
    }
    return hs;
}

history_stats history_get_stats(history *hs)
{
    return (history_stats){.events_stored = atomic_load(&hs->events_stored),
                           .write_failures = atomic_load(&hs->write_failures),
                           .replay_bytes = atomic_load(&hs->replay_bytes),
                           .unread_statements = atomic_load(&hs->st->unread_statements),
                           .notes_dropped = atomic_load(&hs->notes_dropped),
                           .poll_statements = atomic_load(&hs->st->poll_statements),
                           .polls_waiting = atomic_load(&hs->num_parked)};
}

void history_stop(history *hs)
{
    if (!hs)
        return;
    pthread_mutex_lock(&hs->lock);
    hs->stopping = true;
    pthread_cond_signal(&hs->wake);
    pthread_mutex_unlock(&hs->lock);
    pthread_join(hs->thread, NULL);
    forget_channels(hs);
    strmap_free(&hs->channels);
    history_gaps_clear(hs);
    strmap_free(&hs->gaps);
    free(hs->touched);
    hs->st->ops->close(hs->st);
    pthread_mutex_destroy(&hs->lock);
    pthread_cond_destroy(&hs->wake);
    free(hs);
}

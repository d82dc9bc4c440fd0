/* history_poll — "what is new on these channels since these ids", for
 * clients that poll (transport/poll_transport.c). One store statement per
 * answer, whatever the number of channels; a long poll with nothing new
 * waits here, on its channels' waiter lists, without any statement until
 * one of them gets an event or its time is up. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history/history_internal.h"
#include "util/json_write.h"
#include "util/xalloc.h"

bool history_poll(history *hs, hub *from, size_t app, const history_poll_query *q,
                  history_poll_fn done, void *ctx, char *err, size_t cap)
{
    const hk_app *a = &hs->cfg->apps[app];
    job *j = xcalloc(1, sizeof(*j));
    j->poll = xcalloc(q->num_channels ? q->num_channels : 1, sizeof(*j->poll));
    j->num_poll = q->num_channels;
    for (size_t i = 0; i < q->num_channels; i++) {
        const history_poll_channel *in = &q->channels[i];
        poll_channel *pc = &j->poll[i];
        pc->name = xmemdup(in->name, in->len);
        pc->len = in->len;
        pc->job = j;
        if (in->since) {
            const char *why =
                history_id_check(in->since, in->since_len, a->id, in->name, in->len, &pc->since);
            if (why) {
                snprintf(err, cap, "since: %.*s: %s", (int)(in->len > 100 ? 100 : in->len),
                         in->name, why);
                job_free(j);
                return false;
            }
            pc->has_since = true;
        }
    }
    j->kind = JOB_POLL;
    j->from = from;
    j->app = app;
    if (q->user) {
        j->user = xmemdup(q->user, q->user_len);
        j->user_len = q->user_len;
    }
    j->limit = q->limit;
    j->deadline_ms = q->wait_ms ? history_mono_ms() + q->wait_ms : 0;
    j->polled = done;
    j->ctx = ctx;
    buf_init(&j->json);
    history_enqueue(hs, j);
    return true;
}

/* ---- waiting ----------------------------------------------------------------- */

static void park(history *hs, job *j)
{
    for (size_t i = 0; i < j->num_poll; i++) {
        poll_channel *pc = &j->poll[i];
        chan_entry *c = pc->entry;
        pc->wprev = NULL;
        pc->wnext = c->waiters;
        if (c->waiters)
            c->waiters->wprev = pc;
        c->waiters = pc;
    }
    j->parked = true;
    j->pprev = NULL;
    j->pnext = hs->parked;
    if (hs->parked)
        hs->parked->pprev = j;
    hs->parked = j;
    atomic_fetch_add(&hs->num_parked, 1);
}

static void unpark(history *hs, job *j)
{
    for (size_t i = 0; i < j->num_poll; i++) {
        poll_channel *pc = &j->poll[i];
        if (pc->wprev)
            pc->wprev->wnext = pc->wnext;
        else if (pc->entry)
            pc->entry->waiters = pc->wnext;
        if (pc->wnext)
            pc->wnext->wprev = pc->wprev;
        pc->wprev = pc->wnext = NULL;
        pc->entry = NULL;
    }
    if (j->pprev)
        j->pprev->pnext = j->pnext;
    else
        hs->parked = j->pnext;
    if (j->pnext)
        j->pnext->pprev = j->pprev;
    j->pprev = j->pnext = NULL;
    j->parked = false;
    atomic_fetch_sub(&hs->num_parked, 1);
}

/* Off the waiter lists and onto the woken list: the job may still be in
 * the batch being run, whose chain must stay as it is until answered. */
static void wake(history *hs, job *j)
{
    unpark(hs, j);
    j->woken = true;
    j->pnext = hs->woken;
    hs->woken = j;
}

void history_wake_waiters(history *hs, chan_entry *c)
{
    while (c->waiters)
        wake(hs, c->waiters->job);
}

void history_wake_all(history *hs)
{
    while (hs->parked)
        wake(hs, hs->parked);
}

void history_requeue_woken(history *hs)
{
    while (hs->woken) {
        job *j = hs->woken;
        hs->woken = j->pnext;
        j->pnext = NULL;
        j->woken = false;
        j->failed = false; /* of the batch it waited in */
        j->next = NULL;
        history_enqueue(hs, j); /* runs in the next batch, after this commit */
    }
}

/* ---- the answer -------------------------------------------------------------- */

typedef struct poll_ctx {
    history *hs;
    job *j;
    buf events;
    size_t num_events;
    /* per asked channel (same order): what the statement said */
    store_poll_row *sums;
    uint64_t *last_sent;
    uint32_t *count;
    bool *gap;       /* an event's seq was not the one after the previous */
    uint64_t *since; /* where the next poll starts */
} poll_ctx;

static long channel_index(const job *j, const char *name, size_t len)
{
    for (size_t i = 0; i < j->num_poll; i++)
        if (j->poll[i].len == len && memcmp(j->poll[i].name, name, len) == 0)
            return (long)i;
    return -1;
}

static void poll_row(void *arg, const store_poll_row *r)
{
    poll_ctx *p = arg;
    job *j = p->j;
    long i = channel_index(j, r->name, r->name_len);
    if (i < 0)
        return;
    if (!r->is_event) {
        p->sums[i] = *r;
        p->sums[i].name = NULL; /* borrowed for the call only */
        p->sums[i].epoch = NULL;
        return;
    }
    const poll_channel *pc = &j->poll[i];
    chan_entry *c = pc->entry;
    if (r->ev.seq != (p->count[i] ? p->last_sent[i] : pc->after) + 1)
        p->gap[i] = true; /* trimmed, or delivered while the store failed */
    char id[HISTORY_ID_MAX + 1];
    size_t id_len = history_id_format(id, c->ch.epoch, c->tag, r->ev.seq);
    buf *b = &p->events;
    if (p->num_events++)
        buf_append_char(b, ',');
    buf_append_str(b, "{\"channel\":");
    json_write_string(b, pc->name, pc->len);
    buf_append_str(b, ",\"id\":");
    json_write_string(b, id, id_len);
    buf_append_str(b, ",\"event\":");
    json_write_string(b, r->ev.event, r->ev.event_len);
    buf_append_str(b, ",\"data\":");
    buf_append(b, r->ev.data, r->ev.data_len);
    if (r->ev.user_id) {
        buf_append_str(b, ",\"user_id\":");
        json_write_string(b, r->ev.user_id, r->ev.user_id_len);
    }
    buf_append_str(b, ",\"published_at_ms\":");
    buf_append_i64(b, r->ev.published_at_ms);
    buf_append_char(b, '}');
    p->last_sent[i] = r->ev.seq;
    p->count[i]++;
}

static void write_id(buf *b, const chan_entry *c, uint64_t seq)
{
    char id[HISTORY_ID_MAX + 1];
    size_t n = history_id_format(id, c->ch.epoch, c->tag, seq);
    json_write_string(b, id, n);
}

/* {"events":[…],"since":"<id>,…","channels":{name:{last_id,recovered,more[,unread,read_id]}}} */
static void write_answer(job *j, poll_ctx *p)
{
    buf *out = &j->json;
    buf_append_str(out, "{\"events\":[");
    if (p)
        buf_append(out, p->events.data, p->events.len);
    buf_append_str(out, "],\"since\":\"");
    for (size_t i = 0; i < j->num_poll; i++) {
        const poll_channel *pc = &j->poll[i];
        uint64_t at = p ? p->since[i] : pc->after;
        char id[HISTORY_ID_MAX + 1];
        history_id_format(id, pc->entry->ch.epoch, pc->entry->tag, at);
        if (i)
            buf_append_char(out, ',');
        buf_append_str(out, id);
    }
    buf_append_str(out, "\",\"channels\":{");
    for (size_t i = 0; i < j->num_poll; i++) {
        const poll_channel *pc = &j->poll[i];
        const chan_entry *c = pc->entry;
        if (i)
            buf_append_char(out, ',');
        json_write_string(out, pc->name, pc->len);
        buf_append_str(out, ":{\"last_id\":");
        uint64_t last = p ? p->sums[i].last_seq : c->ch.last_seq;
        if (last)
            write_id(out, c, last);
        else
            buf_append_str(out, "null");
        buf_append_str(out, pc->recovered ? ",\"recovered\":true" : ",\"recovered\":false");
        bool more = p && p->count[i] >= j->limit && p->last_sent[i] < p->sums[i].last_seq;
        buf_append_str(out, more ? ",\"more\":true" : ",\"more\":false");
        if (p && j->user) {
            buf_append_str(out, ",\"unread\":");
            buf_append_i64(out, (int64_t)p->sums[i].unread);
            buf_append_str(out, ",\"read_id\":");
            if (p->sums[i].has_read && p->sums[i].read_seq)
                write_id(out, c, p->sums[i].read_seq);
            else
                buf_append_str(out, "null");
        }
        buf_append_char(out, '}');
    }
    buf_append_str(out, "}}");
}

void history_run_poll(history *hs, job *j)
{
    bool fresh = false; /* something to say without waiting */
    for (size_t i = 0; i < j->num_poll; i++) {
        poll_channel *pc = &j->poll[i];
        int rc;
        chan_entry *c = history_channel(hs, j->app, pc->name, pc->len, true, &rc);
        if (!c) {
            j->status = 503;
            snprintf(j->message, sizeof(j->message), "History storage failed: %.150s",
                     hs->st->ops->error(hs->st));
            j->error = j->message;
            return;
        }
        pc->entry = c;
        pc->recovered = true;
        if (!pc->has_since) { /* from now on: the client learns where "now" is */
            pc->after = c->ch.last_seq;
            fresh = true;
        } else if (strcmp(pc->since.epoch, c->ch.epoch) != 0) {
            pc->after = c->ch.last_seq; /* an earlier history: start again from now */
            pc->recovered = false;
            fresh = true;
        } else if (pc->since.seq > c->ch.last_seq) {
            j->status = 400;
            j->error = "since: an id that was never issued on its channel";
            return;
        } else {
            pc->after = pc->since.seq;
            fresh = fresh || c->ch.last_seq > pc->after;
        }
    }
    j->status = 200;
    if (!fresh && j->deadline_ms && !j->expired && history_mono_ms() < j->deadline_ms) {
        park(hs, j); /* no statement until an event or the deadline */
        return;
    }
    buf asked;
    buf_init(&asked);
    buf_append_char(&asked, '[');
    for (size_t i = 0; i < j->num_poll; i++) {
        if (i)
            buf_append_char(&asked, ',');
        buf_append_char(&asked, '[');
        json_write_string(&asked, j->poll[i].name, j->poll[i].len);
        buf_printf(&asked, ",%" PRIu64 "]", j->poll[i].after);
    }
    buf_append_str(&asked, "]");
    buf_append_char(&asked, '\0');
    poll_ctx p = {.hs = hs, .j = j};
    buf_init(&p.events);
    size_t n = j->num_poll ? j->num_poll : 1;
    p.sums = xcalloc(n, sizeof(*p.sums));
    p.last_sent = xcalloc(n, sizeof(*p.last_sent));
    p.count = xcalloc(n, sizeof(*p.count));
    p.gap = xcalloc(n, sizeof(*p.gap));
    p.since = xcalloc(n, sizeof(*p.since));
    int rc = hs->st->ops->poll(hs->st, hs->cfg->apps[j->app].id, asked.data, j->user, j->user_len,
                               j->limit, poll_row, &p);
    if (rc != 0) {
        j->status = 503;
        snprintf(j->message, sizeof(j->message), "History storage failed: %.150s",
                 hs->st->ops->error(hs->st));
        j->error = j->message;
    } else {
        for (size_t i = 0; i < j->num_poll; i++) {
            poll_channel *pc = &j->poll[i];
            uint64_t at = p.count[i] ? p.last_sent[i] : pc->after;
            bool more = p.count[i] >= j->limit && p.last_sent[i] < p.sums[i].last_seq;
            if (p.gap[i])
                pc->recovered = false;
            if (!more && pc->entry->ch.last_seq > at) {
                /* what is missing up to the head is kept nowhere (trimmed
                 * by age, or never stored): say so, and start after it, or
                 * the next poll would find the same at once */
                pc->recovered = false;
                at = pc->entry->ch.last_seq;
            }
            p.since[i] = at;
        }
        write_answer(j, &p);
    }
    buf_free(&asked);
    buf_free(&p.events);
    free(p.sums);
    free(p.last_sent);
    free(p.count);
    free(p.gap);
    free(p.since);
}

static void polled_call(hub *h, void *arg)
{
    job *j = arg;
    if (h) {
        history_poll_result r = {.status = j->failed ? 503 : j->status,
                                 .error = j->failed ? j->message : j->error,
                                 .json = &j->json};
        j->polled(h, j->ctx, &r);
    } else {
        j->polled(NULL, j->ctx, NULL);
    }
    job_free(j);
}

void history_answer_poll(job *j)
{
    if (j->parked || j->woken)
        return; /* waiting: answered when it has run again, or at its deadline */
    hub_post(j->from, polled_call, j);
}

uint64_t history_expire_polls(history *hs, uint64_t now)
{
    uint64_t next = 0;
    job *n;
    for (job *j = hs->parked; j; j = n) {
        n = j->pnext;
        if (j->deadline_ms > now) {
            if (!next || j->deadline_ms < next)
                next = j->deadline_ms;
            continue;
        }
        /* nothing came: the answer says so, from what the thread knows */
        for (size_t i = 0; i < j->num_poll; i++)
            j->poll[i].recovered = true;
        buf_free(&j->json);
        buf_init(&j->json);
        write_answer(j, NULL);
        unpark(hs, j);
        j->expired = true;
        hub_post(j->from, polled_call, j);
    }
    return next;
}

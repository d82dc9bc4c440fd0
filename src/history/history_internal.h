/* history_internal — what the history files share: ids, requests (jobs)
 * and the thread's state. */
#ifndef HARK_HISTORY_HISTORY_INTERNAL_H
#define HARK_HISTORY_HISTORY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "history/history.h"
#include "store/store.h"
#include "util/strmap.h"

/* --- ids (history_id.c) --- */

/* The tag of app and channel in their ids. */
uint32_t history_tag(const char *app_id, const char *name, size_t len);
/* Writes "<epoch>.<tag>.<seq>" (NUL-terminated); returns its length. */
size_t history_id_format(char out[HISTORY_ID_MAX + 1], const char *epoch, uint32_t tag,
                         uint64_t seq);

typedef struct history_id {
    char epoch[STORE_EPOCH_LEN + 1];
    uint32_t tag;
    uint64_t seq;
} history_id;

/* Parses an id; NULL, or why it is not one. */
const char *history_id_parse(const char *s, size_t len, history_id *out);
/* Parses and checks the tag against app and channel: NULL or why not. */
const char *history_id_check(const char *s, size_t len, const char *app_id, const char *name,
                             size_t name_len, history_id *out);

/* --- jobs --- */

enum job_kind { JOB_PUBLISH, JOB_RESUME, JOB_PAGE, JOB_READ, JOB_NOTE, JOB_UNREAD, JOB_POLL };

typedef struct job_event {
    char *channel, *event, *data, *user_id; /* user_id may be NULL */
    size_t channel_len, event_len, data_len, user_id_len;
    char except[32];
    uint32_t max_events, max_age_s;
    uint64_t seq; /* given by the thread, with the channel's epoch and tag */
    char epoch[STORE_EPOCH_LEN + 1];
    uint32_t tag;
} job_event;

struct chan_entry;

/* A channel of a poll; while the poll waits, it is on its channel's
 * waiters list. */
typedef struct poll_channel {
    char *name;
    size_t len;
    bool has_since;
    history_id since;
    uint64_t after; /* the seq events are read after (set by the thread) */
    bool recovered;
    struct job *job;
    struct chan_entry *entry; /* waited on */
    struct poll_channel *wprev, *wnext;
} poll_channel;

typedef struct job {
    enum job_kind kind;
    struct job *next;
    history *hs;
    hub *from;
    size_t app;
    bool failed; /* the batch's transaction failed */
    /* JOB_PUBLISH */
    job_event *events;
    size_t num_events;
    char (*ids)[HISTORY_ID_MAX + 1];
    history_published_fn published;
    void *ctx;
    /* JOB_RESUME and JOB_PAGE: one channel */
    char *channel;
    size_t channel_len;
    history_id since; /* resume: after; page: the query's id */
    uint32_t max_replay;
    uint32_t max_age_s;
    char socket_id[32];
    history_resumed_fn resumed;
    history_resumed result;
    bool from_head;                    /* resume from now: only the position */
    bool want_position;                /* resume: the position also when not recovered */
    char position[HISTORY_ID_MAX + 1]; /* resume: the id of result.upto */
    frame **frames;
    size_t num_frames;
    enum history_from from_where;
    uint32_t limit;
    history_page_fn paged;
    int status;
    const char *error; /* static text, or in message */
    char message[200];
    buf json;
    /* JOB_READ, JOB_NOTE, JOB_UNREAD */
    char *user;
    size_t user_len;
    bool has_id; /* JOB_READ: since holds the id; else the newest */
    bool moved;
    char read_id[HISTORY_ID_MAX + 1];
    char *names_json; /* JOB_UNREAD: the channels asked, NULL: the user's */
    history_read_fn read_done;
    history_unread_fn unread_done;
    /* JOB_POLL */
    poll_channel *poll;
    size_t num_poll;
    uint64_t deadline_ms; /* monotonic; 0: no wait */
    bool parked, expired;
    bool woken;                /* off the waiter lists, to run again (the woken list) */
    struct job *pprev, *pnext; /* the parked list */
    history_poll_fn polled;
} job;

/* A channel the thread knows: its store row and its rule. */
typedef struct chan_entry {
    store_channel ch;
    uint32_t tag;
    uint32_t max_events;   /* of the rule it was last appended under */
    bool appended;         /* in the batch being written (on the touched list) */
    poll_channel *waiters; /* long polls waiting for its next event */
    uint32_t key_len;
    char key[]; /* "<app index>:<name>" */
} chan_entry;

struct history {
    const hk_config *cfg;
    store *st;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    job *head, *tail; /* queued, oldest first */
    bool stopping;
    strmap channels;       /* key → chan_entry, a bounded cache of the store's rows */
    strmap gaps;           /* channels with events delivered but not stored (history_gaps.c) */
    size_t gaps_bytes;     /* what they take: entries, names and table */
    bool gaps_everywhere;  /* too many to list: every channel gets the gap */
    uint64_t next_gaps_ms; /* idle: when to try writing them again (monotonic) */
    chan_entry **touched;  /* appended to in the batch being written */
    size_t num_touched, cap_touched;
    int64_t trim_cursor;
    _Atomic size_t replay_bytes; /* HISTORY_REPLAY_BUDGET: held by sessions */
    _Atomic uint64_t events_stored, write_failures, notes_dropped;
    _Atomic size_t notes_queued; /* JOB_NOTE waiting (HISTORY_NOTES_MAX) */
    _Atomic size_t chat_queued;  /* JOB_READ and JOB_UNREAD waiting (HISTORY_CHAT_MAX) */
    job *parked;                 /* long polls waiting (history_poll.c) */
    job *woken;                  /* long polls to run again after this batch */
    _Atomic size_t num_parked;
    uint64_t next_trim_ms;
};

/* history.c */
void history_enqueue(history *hs, job *j);
/* The channel's entry (loaded, or created when create); NULL when absent
 * (create false) or on a store error (j->failed set by the caller). */
chan_entry *history_channel(history *hs, size_t app, const char *name, size_t len, bool create,
                            int *rc);
int64_t history_now_ms(void);
uint64_t history_mono_ms(void); /* for deadlines */
void job_free(job *j);

/* history_gaps.c: on the thread. A channel whose events went out live
 * without being stored (note); whether any wait to be written; writing
 * them inside the next batch's transaction (0, or -1 on a store error);
 * forgetting them once that batch is committed. */
void history_gaps_note(history *hs, size_t app, const char *name, size_t len);
bool history_gaps_pending(const history *hs);
int history_gaps_write(history *hs);
void history_gaps_clear(history *hs);

/* history_read.c: run on the thread inside the batch's transaction. */
void history_run_resume(history *hs, job *j);
void history_run_page(history *hs, job *j);
/* After the commit: answer on the requester's thread. */
void history_answer_resume(job *j);
void history_answer_page(job *j);

/* history_read_state.c: run inside the batch's transaction; answered after. */
int history_run_read(history *hs, job *j);
int history_run_note(history *hs, job *j);
void history_run_unread(history *hs, job *j);
void history_answer_read(job *j);
void history_answer_unread(job *j);

/* history_poll.c */
void history_run_poll(history *hs, job *j);
void history_answer_poll(job *j);
/* A channel got events in this batch: its waiting polls run again after
 * the commit (requeued). */
void history_wake_waiters(history *hs, struct chan_entry *c);
/* Every waiting poll runs again (the channel cache is being emptied). */
void history_wake_all(history *hs);
/* Queues the woken polls again (after a batch has been answered). */
void history_requeue_woken(history *hs);
/* Answers the polls whose wait is over (no statement); returns the
 * monotonic time of the next deadline, 0 if none. */
uint64_t history_expire_polls(history *hs, uint64_t now_ms);

#endif

/* directory_users — what the directory knows of users across workers:
 * who is signed in and on which connections, and who is typing where. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/directory_internal.h"
#include "util/json_write.h"
#include "util/xalloc.h"

/* A signed-in connection: its socket id is the key, its user the value. */
typedef struct dir_socket {
    uint32_t user_len;
    char socket_id[32];
    char user[];
} dir_socket;

/* A user typing on a channel: who said so last, when it was last relayed
 * (the throttle) and when it ends unless renewed. */
typedef struct dir_typing {
    char socket_id[32];
    uint64_t last_sent_ms;
    uint64_t expires_ms;
    uint32_t key_len;
    char key[]; /* "<channel>\n<user>" */
} dir_typing;

static void free_values(strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            free(m->slots[i].value);
    strmap_free(m);
}

void directory_users_init(dir_app *app)
{
    strmap_init(&app->users);
    strmap_init(&app->sockets);
    strmap_init(&app->typing);
}

void directory_users_free(dir_app *app)
{
    free_values(&app->users);
    free_values(&app->sockets);
    free_values(&app->typing);
}

static void note_socket(dir_app *app, const char *socket_id, const char *id, size_t len, int delta)
{
    size_t slen = strlen(socket_id);
    if (delta > 0) {
        dir_socket *s = xcalloc(1, sizeof(*s) + len + 1);
        snprintf(s->socket_id, sizeof(s->socket_id), "%s", socket_id);
        s->user_len = (uint32_t)len;
        memcpy(s->user, id, len);
        free(strmap_put(&app->sockets, s->socket_id, strlen(s->socket_id), s));
    } else if (delta < 0) {
        free(strmap_remove(&app->sockets, socket_id, slen));
    }
}

uint32_t directory_user_online(directory *d, size_t app_idx, const char *id, size_t len, int delta,
                               const char *socket_id)
{
    dir_app *app = &d->apps[app_idx];
    pthread_mutex_lock(&app->lock);
    if (socket_id)
        note_socket(app, socket_id, id, len, delta);
    dir_user *u = strmap_get(&app->users, id, len);
    if (!u && delta > 0) {
        u = xcalloc(1, sizeof(*u) + len + 1);
        u->id_len = (uint32_t)len;
        memcpy(u->id, id, len);
        strmap_put(&app->users, u->id, len, u);
    }
    uint32_t n = 0;
    if (u) {
        if (delta < 0 && u->conns < (uint32_t)-delta)
            u->conns = 0;
        else
            u->conns = (uint32_t)((int64_t)u->conns + delta);
        n = u->conns;
        if (n == 0) {
            strmap_remove(&app->users, u->id, u->id_len);
            free(u);
        }
    }
    pthread_mutex_unlock(&app->lock);
    return n;
}

size_t directory_socket_user(directory *d, size_t app_idx, const char *socket_id,
                             size_t socket_id_len, char *out, size_t cap)
{
    dir_app *app = &d->apps[app_idx];
    size_t n = 0;
    pthread_mutex_lock(&app->lock);
    dir_socket *s = strmap_get(&app->sockets, socket_id, socket_id_len);
    if (s && s->user_len < cap) {
        n = s->user_len;
        memcpy(out, s->user, n);
    }
    pthread_mutex_unlock(&app->lock);
    if (cap)
        out[n] = '\0';
    return n;
}

static int compare_ids(const dir_user *a, const dir_user *b)
{
    size_t n = a->id_len < b->id_len ? a->id_len : b->id_len;
    int c = memcmp(a->id, b->id, n);
    return c ? c : (a->id_len > b->id_len) - (a->id_len < b->id_len);
}

/* The page is chosen under the lock from one pass over the users: the
 * `limit` smallest ids after the cursor, kept sorted in a small array
 * (insertion, O(users × log limit) compares and at most `limit` moves per
 * insert). Ids are unique, so "after the cursor" pages visit a user online
 * throughout exactly once. */
bool directory_online_page(directory *d, size_t app_idx, const char *after, size_t after_len,
                           uint32_t limit, buf *out, buf *last)
{
    dir_app *app = &d->apps[app_idx];
    dir_user **page = xcalloc((size_t)limit + 1, sizeof(dir_user *));
    size_t n = 0;
    bool more = false;
    pthread_mutex_lock(&app->lock);
    for (size_t i = 0; i < app->users.cap; i++) {
        dir_user *u = app->users.slots[i].value;
        if (!app->users.slots[i].key)
            continue;
        if (after_len) {
            size_t m = u->id_len < after_len ? u->id_len : after_len;
            int c = memcmp(u->id, after, m);
            if (c < 0 || (c == 0 && u->id_len <= after_len))
                continue;
        }
        /* insert in order; the array holds limit + 1 to know "more" */
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (compare_ids(page[mid], u) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > limit)
            continue;
        size_t keep = n < limit + 1 ? n : limit;
        memmove(page + lo + 1, page + lo, (keep - lo) * sizeof(dir_user *));
        page[lo] = u;
        if (n < limit + 1)
            n++;
    }
    more = limit > 0 && n > limit;
    if (more)
        n = limit;
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append_char(out, ',');
        buf_append_str(out, "{\"id\":");
        json_write_string(out, page[i]->id, page[i]->id_len);
        buf_append_str(out, ",\"connections\":");
        buf_append_i64(out, page[i]->conns);
        buf_append_char(out, '}');
    }
    if (more && n > 0)
        buf_append(last, page[n - 1]->id, page[n - 1]->id_len);
    pthread_mutex_unlock(&app->lock);
    free(page);
    return more;
}

/* --- typing ----------------------------------------------------------------- */

static size_t typing_key(char *out, size_t cap, const char *channel, size_t channel_len,
                         const char *user, size_t user_len)
{
    size_t n = channel_len + 1 + user_len;
    if (n > cap)
        return 0;
    memcpy(out, channel, channel_len);
    out[channel_len] = '\n';
    memcpy(out + channel_len + 1, user, user_len);
    return n;
}

enum dir_typing_relay directory_typing(directory *d, size_t app_idx, const dir_typing_signal *sig)
{
    dir_app *app = &d->apps[app_idx];
    char key[2 * HK_MAX_NAME_LENGTH + 2];
    size_t klen = typing_key(key, sizeof(key), sig->channel, sig->channel_len, sig->user_id,
                             sig->user_id_len);
    if (!klen)
        return DIR_TYPING_QUIET;
    uint64_t now = directory_now_ms();
    enum dir_typing_relay relay = DIR_TYPING_QUIET;
    pthread_mutex_lock(&app->lock);
    dir_typing *t = strmap_get(&app->typing, key, klen);
    if (!sig->typing) {
        if (t) {
            strmap_remove(&app->typing, t->key, t->key_len);
            free(t);
            relay = DIR_TYPING_STOP;
        }
    } else {
        if (!t) {
            t = xcalloc(1, sizeof(*t) + klen);
            t->key_len = (uint32_t)klen;
            memcpy(t->key, key, klen);
            strmap_put(&app->typing, t->key, klen, t);
            relay = DIR_TYPING_START;
        } else if (now - t->last_sent_ms >= sig->throttle_ms) {
            relay = DIR_TYPING_START;
        }
        if (relay == DIR_TYPING_START)
            t->last_sent_ms = now;
        t->expires_ms = now + sig->ttl_ms;
        snprintf(t->socket_id, sizeof(t->socket_id), "%s", sig->socket_id);
    }
    pthread_mutex_unlock(&app->lock);
    return relay;
}

bool directory_typing_left(directory *d, size_t app_idx, const char *channel, size_t channel_len,
                           const char *user_id, size_t user_id_len, const char *socket_id)
{
    dir_app *app = &d->apps[app_idx];
    char key[2 * HK_MAX_NAME_LENGTH + 2];
    size_t klen = typing_key(key, sizeof(key), channel, channel_len, user_id, user_id_len);
    if (!klen)
        return false;
    bool ended = false;
    pthread_mutex_lock(&app->lock);
    dir_typing *t = strmap_get(&app->typing, key, klen);
    if (t && strcmp(t->socket_id, socket_id) == 0) {
        strmap_remove(&app->typing, t->key, t->key_len);
        free(t);
        ended = true;
    }
    pthread_mutex_unlock(&app->lock);
    return ended;
}

char **directory_typing_expired(directory *d, size_t app_idx, size_t *n)
{
    dir_app *app = &d->apps[app_idx];
    uint64_t now = directory_now_ms();
    char **out = NULL;
    size_t count = 0, cap = 0;
    pthread_mutex_lock(&app->lock);
    for (;;) {
        dir_typing *dead[64];
        size_t k = 0;
        for (size_t i = 0; i < app->typing.cap && k < 64; i++) {
            dir_typing *t = app->typing.slots[i].value;
            if (app->typing.slots[i].key && t->expires_ms <= now)
                dead[k++] = t;
        }
        for (size_t i = 0; i < k; i++) {
            if (count == cap) {
                cap = cap ? cap * 2 : 16;
                out = xrealloc(out, cap * sizeof(*out));
            }
            char *s = xmalloc(dead[i]->key_len + 1);
            memcpy(s, dead[i]->key, dead[i]->key_len);
            s[dead[i]->key_len] = '\0';
            out[count++] = s;
            strmap_remove(&app->typing, dead[i]->key, dead[i]->key_len);
            free(dead[i]);
        }
        if (k < 64)
            break;
    }
    pthread_mutex_unlock(&app->lock);
    *n = count;
    return out;
}

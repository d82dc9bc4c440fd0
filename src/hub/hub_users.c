/* hub_users — signed-in users: #server-to-user delivery, watchlists and
 * terminate_connections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_internal.h"
#include "protocol/errors.h"
#include "protocol/pusher_msg.h"
#include "util/buf.h"
#include "util/json_write.h"

/* "#server-to-user-<id>" of any valid id is a name the largest name limit
 * allows. */
_Static_assert(sizeof(CHANNEL_USER_PREFIX) - 1 + USER_ID_MAX_LENGTH <= HK_MAX_NAME_LENGTH,
               "user channel names fit HK_MAX_NAME_LENGTH");

hub_user *hub_user_find(hub_app *app, const char *id, size_t len)
{
    return strmap_get(&app->users, id, len);
}

static hub_user *user_get_or_create(hub_app *app, const char *id, size_t len)
{
    hub_user *u = strmap_get(&app->users, id, len);
    if (u)
        return u;
    u = xcalloc(1, sizeof(*u) + len + 1);
    u->id_len = (uint32_t)len;
    memcpy(u->id, id, len);
    strmap_put(&app->users, u->id, len, u);
    return u;
}

void hub_user_release(hub_app *app, hub_user *u)
{
    if (u->num_conns > 0 || u->num_watchers > 0)
        return;
    strmap_remove(&app->users, u->id, u->id_len);
    free(u->conns);
    free(u->watchers);
    free(u);
}

static void push_sub(subscriber ***arr, uint32_t *n, uint32_t *cap, subscriber *s)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 2;
        *arr = xrealloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[(*n)++] = s;
}

static void remove_sub(subscriber **arr, uint32_t *n, const subscriber *s)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (arr[i] == s) {
            arr[i] = arr[--*n];
            return;
        }
    }
}

/* {"event":"pusher_internal:watchlist_events","data":"{\"events\":[...]}"} */
static void send_watchlist_events(subscriber *s, const char *online_ids, size_t online_len,
                                  const char *offline_ids, size_t offline_len)
{
    buf data, payload;
    buf_init(&data);
    buf_init(&payload);
    buf_append_str(&data, "{\"events\":[");
    if (online_ids) {
        buf_append_str(&data, "{\"name\":\"online\",\"user_ids\":[");
        buf_append(&data, online_ids, online_len);
        buf_append_str(&data, "]}");
    }
    if (offline_ids) {
        if (online_ids)
            buf_append_char(&data, ',');
        buf_append_str(&data, "{\"name\":\"offline\",\"user_ids\":[");
        buf_append(&data, offline_ids, offline_len);
        buf_append_str(&data, "]}");
    }
    buf_append_str(&data, "]}");
    pusher_encode_string_data(&payload, PUSHER_LIT("pusher_internal:watchlist_events"), NULL, 0,
                              data.data, data.len);
    hub_send_payload(s, &payload);
    buf_free(&data);
    buf_free(&payload);
}

void hub_notify_watchers(hub_user *u, bool online)
{
    if (u->num_watchers == 0)
        return;
    buf id;
    buf_init(&id);
    json_write_string(&id, u->id, u->id_len);
    for (uint32_t i = 0; i < u->num_watchers; i++) {
        if (online)
            send_watchlist_events(u->watchers[i], id.data, id.len, NULL, 0);
        else
            send_watchlist_events(u->watchers[i], NULL, 0, id.data, id.len);
    }
    buf_free(&id);
}

bool hub_signin(subscriber *s, const char *user_id, size_t len, const char *const *watch_ids,
                const size_t *watch_lens, size_t num_watch)
{
    hub_app *app = s->app;
    hub *h = app->hub;
    if (s->user)
        return s->user->id_len == len && memcmp(s->user->id, user_id, len) == 0;
    hub_user *u = user_get_or_create(app, user_id, len);
    push_sub(&u->conns, &u->num_conns, &u->conns_cap, s);
    s->user = u;
    if (directory_user_online(h->dir, app->index, user_id, len, 1, s->socket_id) == 1)
        hub_group_send(app, MSG_USER_ONLINE, user_id, len, NULL, NULL);

    if (num_watch == 0)
        return true;
    s->watching = xrealloc(NULL, num_watch * sizeof(*s->watching));
    buf online, offline;
    buf_init(&online);
    buf_init(&offline);
    for (size_t i = 0; i < num_watch; i++) {
        hub_user *w = user_get_or_create(app, watch_ids[i], watch_lens[i]);
        bool dup = false;
        for (uint32_t j = 0; j < s->num_watching; j++)
            dup = dup || s->watching[j] == w;
        if (dup)
            continue;
        s->watching[s->num_watching++] = w;
        push_sub(&w->watchers, &w->num_watchers, &w->watchers_cap, s);
        bool is_online = directory_user_online(h->dir, app->index, w->id, w->id_len, 0, NULL) > 0;
        buf *list = is_online ? &online : &offline;
        if (list->len)
            buf_append_char(list, ',');
        json_write_string(list, w->id, w->id_len);
    }
    send_watchlist_events(s, online.len ? online.data : NULL, online.len,
                          offline.len ? offline.data : NULL, offline.len);
    buf_free(&online);
    buf_free(&offline);
    return true;
}

void hub_terminate_user(hub_app *app, const char *id, size_t len)
{
    hub_group_send(app, MSG_TERMINATE_USER, id, len, NULL, NULL);
}

/* Signs s out and drops its watchlist. */
void hub_user_detach(subscriber *s)
{
    hub_app *app = s->app;
    if (s->user) {
        hub_user *u = s->user;
        remove_sub(u->conns, &u->num_conns, s);
        s->user = NULL;
        /* Watchers here hear of it while u (and its id) still exists;
         * released after, it is freed unless someone still watches it. */
        if (directory_user_online(app->hub->dir, app->index, u->id, u->id_len, -1, s->socket_id) ==
            0)
            hub_group_send(app, MSG_USER_OFFLINE, u->id, u->id_len, NULL, NULL);
        hub_user_release(app, u);
    }
    for (uint32_t i = 0; i < s->num_watching; i++) {
        hub_user *w = s->watching[i];
        remove_sub(w->watchers, &w->num_watchers, s);
        hub_user_release(app, w);
    }
    free(s->watching);
    s->watching = NULL;
    s->num_watching = 0;
}

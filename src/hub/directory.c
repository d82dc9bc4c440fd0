#include "hub/directory.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/directory_internal.h"
#include "util/json_write.h"
#include "util/strmap.h"
#include "util/xalloc.h"

uint64_t directory_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

directory *directory_new(const hk_config *cfg)
{
    directory *d = xcalloc(1, sizeof(*d));
    d->num_apps = cfg->num_apps;
    d->apps = xcalloc(cfg->num_apps ? cfg->num_apps : 1, sizeof(*d->apps));
    for (size_t i = 0; i < d->num_apps; i++) {
        strmap_init(&d->apps[i].channels);
        directory_users_init(&d->apps[i]);
        atomic_init(&d->apps[i].connections, 0);
        pthread_mutex_init(&d->apps[i].lock, NULL);
    }
    return d;
}

static void channel_free(dir_channel *ch)
{
    for (size_t i = 0; i < ch->members.cap; i++) {
        if (ch->members.slots[i].key) {
            dir_member *m = ch->members.slots[i].value;
            free(m->info);
            free(m);
        }
    }
    strmap_free(&ch->members);
    if (ch->cached)
        frame_unref(ch->cached);
    free(ch);
}

void directory_free(directory *d)
{
    if (!d)
        return;
    for (size_t a = 0; a < d->num_apps; a++) {
        dir_app *app = &d->apps[a];
        for (size_t i = 0; i < app->channels.cap; i++)
            if (app->channels.slots[i].key)
                channel_free(app->channels.slots[i].value);
        strmap_free(&app->channels);
        directory_users_free(app);
        pthread_mutex_destroy(&app->lock);
    }
    free(d->apps);
    free(d);
}

long directory_connections(directory *d, size_t app)
{
    return atomic_load(&d->apps[app].connections);
}

long directory_add_connection(directory *d, size_t app, long delta)
{
    return atomic_fetch_add(&d->apps[app].connections, delta) + delta;
}

size_t directory_channels(directory *d, size_t app)
{
    pthread_mutex_lock(&d->apps[app].lock);
    size_t n = d->apps[app].occupied;
    pthread_mutex_unlock(&d->apps[app].lock);
    return n;
}

static bool cache_live(const dir_channel *ch, uint64_t now)
{
    return ch->cached && ch->cached_until_ms > now;
}

static dir_channel *channel_get(dir_app *app, const char *name, size_t len, channel_kind kind,
                                bool create)
{
    dir_channel *ch = strmap_get(&app->channels, name, len);
    if (ch || !create)
        return ch;
    ch = xcalloc(1, sizeof(*ch) + len + 1);
    ch->kind = kind;
    ch->name_len = (uint32_t)len;
    memcpy(ch->name, name, len);
    strmap_init(&ch->members);
    strmap_put(&app->channels, ch->name, len, ch);
    return ch;
}

static void channel_release(dir_app *app, dir_channel *ch, uint64_t now)
{
    if (ch->subs > 0 || cache_live(ch, now))
        return;
    strmap_remove(&app->channels, ch->name, ch->name_len);
    channel_free(ch);
}

static void encode_presence(const dir_channel *ch, buf *out)
{
    buf_append_str(out, "{\"presence\":{\"ids\":[");
    bool first = true;
    for (size_t i = 0; i < ch->members.cap; i++) {
        const dir_member *m = ch->members.slots[i].value;
        if (!ch->members.slots[i].key)
            continue;
        if (!first)
            buf_append_char(out, ',');
        first = false;
        json_write_string(out, m->id, m->id_len);
    }
    buf_append_str(out, "],\"hash\":{");
    first = true;
    for (size_t i = 0; i < ch->members.cap; i++) {
        const dir_member *m = ch->members.slots[i].value;
        if (!ch->members.slots[i].key)
            continue;
        if (!first)
            buf_append_char(out, ',');
        first = false;
        json_write_string(out, m->id, m->id_len);
        buf_append_char(out, ':');
        buf_append(out, m->info, m->info_len);
    }
    buf_append_str(out, "},\"count\":");
    buf_append_u64(out, ch->members.count);
    buf_append_str(out, "}}");
}

dir_subscribe_result directory_subscribe(directory *d, size_t app_idx, const char *name, size_t len,
                                         channel_kind kind, const dir_member_join *member,
                                         buf *presence_state, uint64_t worker_bit)
{
    dir_subscribe_result r = {0};
    dir_app *app = &d->apps[app_idx];
    uint64_t now = directory_now_ms();
    pthread_mutex_lock(&app->lock);
    dir_channel *ch = channel_get(app, name, len, kind, true);
    if (member) {
        dir_member *m = strmap_get(&ch->members, member->user_id, member->user_id_len);
        if (!m) {
            if (ch->members.count >= member->max_members) {
                r.refused = true;
                channel_release(app, ch, now);
                pthread_mutex_unlock(&app->lock);
                return r;
            }
            m = xcalloc(1, sizeof(*m) + member->user_id_len + 1);
            m->id_len = (uint32_t)member->user_id_len;
            memcpy(m->id, member->user_id, member->user_id_len);
            m->info = xmalloc(member->user_info_len + 1);
            memcpy(m->info, member->user_info, member->user_info_len);
            m->info[member->user_info_len] = '\0';
            m->info_len = member->user_info_len;
            strmap_put(&ch->members, m->id, m->id_len, m);
            r.new_member = true;
        }
        m->workers++;
    }
    if (ch->subs++ == 0)
        app->occupied++;
    ch->workers |= worker_bit;
    r.total = ch->subs;
    if (presence_state)
        encode_presence(ch, presence_state);
    if (cache_live(ch, now))
        r.cached = frame_ref(ch->cached);
    pthread_mutex_unlock(&app->lock);
    return r;
}

uint32_t directory_unsubscribe(directory *d, size_t app_idx, const char *name, size_t len,
                               const char *member_id, size_t member_id_len, bool *member_removed,
                               uint64_t worker_bit)
{
    dir_app *app = &d->apps[app_idx];
    *member_removed = false;
    pthread_mutex_lock(&app->lock);
    dir_channel *ch = channel_get(app, name, len, (channel_kind){0}, false);
    uint32_t total = 0;
    if (ch) {
        if (member_id) {
            dir_member *m = strmap_get(&ch->members, member_id, member_id_len);
            if (m && --m->workers == 0) {
                strmap_remove(&ch->members, m->id, m->id_len);
                free(m->info);
                free(m);
                *member_removed = true;
            }
        }
        if (ch->subs > 0 && --ch->subs == 0)
            app->occupied--;
        ch->workers &= ~worker_bit;
        total = ch->subs;
        channel_release(app, ch, directory_now_ms());
    }
    pthread_mutex_unlock(&app->lock);
    return total;
}

uint64_t directory_interest(directory *d, size_t app_idx, const char *name, size_t len)
{
    dir_app *app = &d->apps[app_idx];
    pthread_mutex_lock(&app->lock);
    const dir_channel *ch = strmap_get(&app->channels, name, len);
    uint64_t workers = ch ? ch->workers : 0;
    pthread_mutex_unlock(&app->lock);
    return workers;
}

void directory_cache_store(directory *d, size_t app_idx, const char *name, size_t len, frame *f,
                           uint32_t ttl_s)
{
    dir_app *app = &d->apps[app_idx];
    pthread_mutex_lock(&app->lock);
    dir_channel *ch = channel_get(app, name, len, channel_classify(name, len), true);
    if (ch->cached)
        frame_unref(ch->cached);
    ch->cached = frame_ref(f);
    ch->cached_until_ms = directory_now_ms() + (uint64_t)ttl_s * 1000u;
    channel_release(app, ch, directory_now_ms());
    pthread_mutex_unlock(&app->lock);
}

dir_channel_info directory_channel_info(directory *d, size_t app_idx, const char *name, size_t len)
{
    dir_channel_info info = {0};
    dir_app *app = &d->apps[app_idx];
    uint64_t now = directory_now_ms();
    pthread_mutex_lock(&app->lock);
    dir_channel *ch = channel_get(app, name, len, (channel_kind){0}, false);
    if (ch) {
        info.occupied = ch->subs > 0;
        info.subscription_count = ch->subs;
        info.user_count = (uint32_t)ch->members.count;
        if (cache_live(ch, now)) {
            info.cached = frame_ref(ch->cached);
            info.cache_ms_left = ch->cached_until_ms - now;
        }
    }
    pthread_mutex_unlock(&app->lock);
    return info;
}

void directory_list_channels(directory *d, size_t app_idx, const char *prefix, size_t prefix_len,
                             bool user_count, bool subscription_count, buf *out)
{
    dir_app *app = &d->apps[app_idx];
    bool first = true;
    pthread_mutex_lock(&app->lock);
    for (size_t i = 0; i < app->channels.cap; i++) {
        const dir_channel *ch = app->channels.slots[i].value;
        if (!app->channels.slots[i].key || ch->subs == 0 || ch->kind.type == CHANNEL_USER)
            continue;
        if (prefix_len > ch->name_len || memcmp(ch->name, prefix, prefix_len) != 0)
            continue;
        if (!first)
            buf_append_char(out, ',');
        first = false;
        json_write_string(out, ch->name, ch->name_len);
        buf_append_str(out, ":{");
        bool wrote = false;
        if (user_count && ch->kind.type == CHANNEL_PRESENCE) {
            buf_printf(out, "\"user_count\":%zu", ch->members.count);
            wrote = true;
        }
        if (subscription_count)
            buf_printf(out, "%s\"subscription_count\":%u", wrote ? "," : "", ch->subs);
        buf_append_char(out, '}');
    }
    pthread_mutex_unlock(&app->lock);
}

void directory_list_users(directory *d, size_t app_idx, const char *name, size_t len, buf *out)
{
    dir_app *app = &d->apps[app_idx];
    pthread_mutex_lock(&app->lock);
    dir_channel *ch = channel_get(app, name, len, (channel_kind){0}, false);
    bool first = true;
    for (size_t i = 0; ch && i < ch->members.cap; i++) {
        const dir_member *m = ch->members.slots[i].value;
        if (!ch->members.slots[i].key)
            continue;
        buf_append_str(out, first ? "{\"id\":" : ",{\"id\":");
        first = false;
        json_write_string(out, m->id, m->id_len);
        buf_append_char(out, '}');
    }
    pthread_mutex_unlock(&app->lock);
}

void directory_presence_state(directory *d, size_t app_idx, const char *name, size_t len, buf *out)
{
    dir_app *app = &d->apps[app_idx];
    pthread_mutex_lock(&app->lock);
    dir_channel *ch = channel_get(app, name, len, (channel_kind){0}, false);
    if (ch)
        encode_presence(ch, out);
    else
        buf_append_str(out, "{\"presence\":{\"ids\":[],\"hash\":{},\"count\":0}}");
    pthread_mutex_unlock(&app->lock);
}

void directory_sweep(directory *d)
{
    uint64_t now = directory_now_ms();
    for (size_t a = 0; a < d->num_apps; a++) {
        dir_app *app = &d->apps[a];
        pthread_mutex_lock(&app->lock);
        dir_channel *dead[64];
        size_t n;
        do {
            n = 0;
            for (size_t i = 0; i < app->channels.cap && n < 64; i++) {
                dir_channel *ch = app->channels.slots[i].value;
                if (app->channels.slots[i].key && ch->subs == 0 && !cache_live(ch, now))
                    dead[n++] = ch;
            }
            for (size_t i = 0; i < n; i++)
                channel_release(app, dead[i], now);
        } while (n == 64);
        pthread_mutex_unlock(&app->lock);
    }
}

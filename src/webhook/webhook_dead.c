/* webhook_dead — the dead-letter store: one JSON file per batch that ran
 * out of retries (or was refused with a 4xx), kept under
 * data_dir/webhooks/dead/ until `hark webhooks replay` delivers it. Files
 * are written to a temporary name, synced and renamed, so a crash leaves
 * either the whole letter or none. Also the request headers and the one
 * blocking POST that replay uses. */
#include "webhook/webhook_internal.h"

#include "protocol/signature.h"
#include "util/json_write.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

char *wh_dir(const char *data_dir)
{
    return join(data_dir, "webhooks");
}

char *wh_dead_dir(const char *data_dir)
{
    return join(data_dir, "webhooks/dead");
}

/* Ids must stay file names inside the folder. */
static bool id_ok(const char *id)
{
    if (!*id || strlen(id) > 200 || id[0] == '.')
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

static char *path_of(const char *dir, const char *id, const char *ext)
{
    size_t n = strlen(dir) + strlen(id) + strlen(ext) + 2;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s%s", dir, id, ext);
    return p;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int wh_dead_write(const char *dead_dir, wh_dead *d)
{
    static _Atomic unsigned counter;
    int rc = wh_mkdirs(dead_dir);
    if (rc)
        return rc;
    if (!d->id) {
        char id[64];
        /* Zero-padded time first: names sort oldest first. */
        snprintf(id, sizeof id, "%013lld-%d-%u", (long long)d->failed_at_ms, (int)getpid(),
                 atomic_fetch_add(&counter, 1));
        d->id = strdup(id);
        if (!d->id)
            abort();
    }
    buf b;
    buf_init(&b);
    buf_append_str(&b, "{\"app_id\":");
    json_write_cstr(&b, d->app_id);
    buf_append_str(&b, ",\"url\":");
    json_write_cstr(&b, d->url);
    buf_append_str(&b, ",\"failed_at_ms\":");
    buf_append_i64(&b, d->failed_at_ms);
    buf_append_str(&b, ",\"attempts\":");
    buf_append_u64(&b, d->attempts);
    buf_append_str(&b, ",\"events\":");
    buf_append_u64(&b, d->events);
    buf_append_str(&b, ",\"error\":");
    json_write_cstr(&b, d->error ? d->error : "");
    buf_append_str(&b, ",\"body\":");
    json_write_string(&b, d->body, d->body_len);
    buf_append_str(&b, "}\n");

    char *tmp = path_of(dead_dir, d->id, ".json.tmp");
    char *final = path_of(dead_dir, d->id, ".json");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
    } else {
        rc = write_all(fd, b.data, b.len);
        if (rc == 0 && fsync(fd) != 0)
            rc = -errno;
        close(fd);
        if (rc == 0 && rename(tmp, final) != 0)
            rc = -errno;
        if (rc != 0)
            unlink(tmp);
    }
    if (rc == 0) { /* the rename itself must survive a power cut too */
        int dfd = open(dead_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    free(tmp);
    free(final);
    buf_free(&b);
    return rc;
}

static char *dup_str(const json_t *v)
{
    char *p = strdup(json_string_value(v));
    if (!p)
        abort();
    return p;
}

int wh_dead_read(const char *dead_dir, const char *id, wh_dead *d)
{
    memset(d, 0, sizeof *d);
    if (!id_ok(id))
        return -EINVAL;
    char *path = path_of(dead_dir, id, ".json");
    if (access(path, F_OK) != 0) {
        int e = errno;
        free(path);
        return -e;
    }
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    free(path);
    if (!o)
        return -EINVAL;
    json_t *body = json_object_get(o, "body");
    int rc = -EINVAL;
    if (json_is_string(json_object_get(o, "app_id")) && json_is_string(json_object_get(o, "url")) &&
        json_is_string(body)) {
        d->id = strdup(id);
        d->app_id = dup_str(json_object_get(o, "app_id"));
        d->url = dup_str(json_object_get(o, "url"));
        d->body_len = json_string_length(body);
        d->body = malloc(d->body_len + 1);
        if (!d->id || !d->body)
            abort();
        memcpy(d->body, json_string_value(body), d->body_len + 1);
        d->failed_at_ms = (int64_t)json_integer_value(json_object_get(o, "failed_at_ms"));
        d->attempts = (unsigned)json_integer_value(json_object_get(o, "attempts"));
        d->events = (unsigned)json_integer_value(json_object_get(o, "events"));
        json_t *err = json_object_get(o, "error");
        d->error = json_is_string(err) ? dup_str(err) : NULL;
        rc = 0;
    }
    json_decref(o);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **wh_dead_list(const char *dead_dir, size_t *n)
{
    *n = 0;
    DIR *dir = opendir(dead_dir);
    if (!dir)
        return NULL;
    char **ids = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(ids, cap * sizeof *ids);
            if (!p)
                abort();
            ids = p;
        }
        ids[*n] = strndup(e->d_name, len - 5);
        if (!ids[*n])
            abort();
        if (!id_ok(ids[*n])) {
            free(ids[*n]);
            continue;
        }
        (*n)++;
    }
    closedir(dir);
    if (*n)
        qsort(ids, *n, sizeof *ids, cmp_str);
    return ids;
}

int wh_dead_remove(const char *dead_dir, const char *id)
{
    if (!id_ok(id))
        return -EINVAL;
    char *path = path_of(dead_dir, id, ".json");
    int rc = unlink(path) == 0 ? 0 : -errno;
    free(path);
    return rc;
}

void wh_dead_free(wh_dead *d)
{
    free(d->id);
    free(d->app_id);
    free(d->url);
    free(d->body);
    free(d->error);
    memset(d, 0, sizeof *d);
}

static struct curl_slist *append(struct curl_slist *l, const char *line)
{
    struct curl_slist *n = curl_slist_append(l, line);
    if (!n)
        abort();
    return n;
}

struct curl_slist *wh_headers(const char *key, const char *secret, const char *body,
                              size_t body_len, const hk_webhook *hook)
{
    char sig[SIG_HEX_LEN + 1];
    sig_hmac_sha256_hex(secret, strlen(secret), body, body_len, sig);
    /* Exactly "application/json": pusher-http-node refuses a charset. */
    struct curl_slist *l = append(NULL, "Content-Type: application/json");
    buf line;
    buf_init(&line);
    buf_printf(&line, "X-Pusher-Key: %s", key);
    l = append(l, line.data);
    buf_reset(&line);
    buf_printf(&line, "X-Pusher-Signature: %s", sig);
    l = append(l, line.data);
    buf_free(&line);
    /* No "Expect: 100-continue" round trip before larger bodies. */
    l = append(l, "Expect:");
    for (size_t i = 0; hook && i < hook->num_headers; i++)
        l = append(l, hook->headers[i]);
    return l;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

long wh_post_blocking(const char *url, const char *key, const char *secret, const char *body,
                      size_t body_len, const hk_webhook *hook, long timeout_ms, char *err,
                      size_t err_cap)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, err_cap, "curl_easy_init failed");
        return -1;
    }
    struct curl_slist *h = wh_headers(key, secret, body, body_len, hook);
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hark-webhooks/1.0");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, err_cap, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

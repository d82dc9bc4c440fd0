/* config — the settings tables, value checks, load order, help text.
 * The JSON file, environment and flags are read in config_file.c,
 * config_env.c and config_args.c; all of them store through the tables
 * here so a key is checked the same way wherever it comes from. */
#include "config/config_internal.h"

#include "util/cidr.h"
#include "util/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define I32MAX 2147483647LL
#define DAY_MS 86400000LL

#define SRV(name, env, flag, kind, store, field, min, max)                                         \
    {                                                                                              \
        name, env, flag, kind, store, offsetof(hk_config, field), min, max                         \
    }
#define APP(name, kind, store, field, min, max)                                                    \
    {                                                                                              \
        name, NULL, NULL, kind, store, offsetof(hk_app, field), min, max                           \
    }

/* Ranges are generous; they only refuse values that cannot work (a zero
 * port, a negative size) or would overflow where they end up (timeouts
 * beyond a day become negative in pusher-js's millisecond timers). */
const cfg_opt config_server_opts[] = {
    SRV("host", "HARK_HOST", "--host", OPT_STR, ST_INT, host, 0, 0),
    SRV("port", "HARK_PORT", "--port", OPT_INT, ST_INT, port, 1, 65535),
    SRV("data_dir", "HARK_DATA_DIR", "--data-dir", OPT_STR, ST_INT, data_dir, 0, 0),
    SRV("workers", "HARK_WORKERS", "--workers", OPT_INT, ST_U32, workers, 0, 1024),
    SRV("node_id", "HARK_NODE_ID", "--node-id", OPT_INT, ST_U32, node_id, 0, 99999),
    SRV("log_level", "HARK_LOG_LEVEL", "--log-level", OPT_LEVEL, ST_INT, log_level, 0, 0),
    SRV("path_prefix", "HARK_PATH_PREFIX", "--path-prefix", OPT_PREFIX, ST_INT, path_prefix, 0, 0),
    SRV("max_connections", "HARK_MAX_CONNECTIONS", "--max-connections", OPT_INT, ST_LONG,
        max_connections, -1, I32MAX),
    SRV("max_message_bytes", "HARK_MAX_MESSAGE_BYTES", NULL, OPT_INT, ST_SIZE, max_message_bytes, 1,
        I32MAX),
    SRV("max_output_bytes", "HARK_MAX_OUTPUT_BYTES", NULL, OPT_INT, ST_SIZE, max_output_bytes, 1,
        I32MAX),
    SRV("max_request_bytes", "HARK_MAX_REQUEST_BYTES", NULL, OPT_INT, ST_SIZE, max_request_bytes, 1,
        I32MAX),
    SRV("ping_interval_ms", "HARK_PING_INTERVAL_MS", NULL, OPT_INT, ST_U32, ping_interval_ms, 1,
        DAY_MS),
    SRV("pong_timeout_ms", "HARK_PONG_TIMEOUT_MS", NULL, OPT_INT, ST_U32, pong_timeout_ms, 1,
        DAY_MS),
    SRV("http_header_timeout_ms", "HARK_HTTP_HEADER_TIMEOUT_MS", NULL, OPT_INT, ST_U32,
        http_header_timeout_ms, 1, DAY_MS),
    SRV("http_body_timeout_ms", "HARK_HTTP_BODY_TIMEOUT_MS", NULL, OPT_INT, ST_U32,
        http_body_timeout_ms, 1, DAY_MS),
    SRV("http_idle_timeout_ms", "HARK_HTTP_IDLE_TIMEOUT_MS", NULL, OPT_INT, ST_U32,
        http_idle_timeout_ms, 1, DAY_MS),
    SRV("fallback_session_timeout_ms", "HARK_FALLBACK_SESSION_TIMEOUT_MS", NULL, OPT_INT, ST_U32,
        fallback_session_timeout_ms, 1000, DAY_MS),
    SRV("fallback_poll_timeout_ms", "HARK_FALLBACK_POLL_TIMEOUT_MS", NULL, OPT_INT, ST_U32,
        fallback_poll_timeout_ms, 1000, DAY_MS),
    SRV("fallback_heartbeat_ms", "HARK_FALLBACK_HEARTBEAT_MS", NULL, OPT_INT, ST_U32,
        fallback_heartbeat_ms, 1000, DAY_MS),
    SRV("write_timeout_ms", "HARK_WRITE_TIMEOUT_MS", NULL, OPT_INT, ST_U32, write_timeout_ms, 1,
        DAY_MS),
    SRV("max_pending_input_bytes", "HARK_MAX_PENDING_INPUT_BYTES", NULL, OPT_INT, ST_SIZE,
        max_pending_input_bytes, 1, I32MAX),
    SRV("max_connections_per_ip", "HARK_MAX_CONNECTIONS_PER_IP", NULL, OPT_INT, ST_U32,
        max_connections_per_ip, 0, I32MAX),
    SRV("trusted_proxies", "HARK_TRUSTED_PROXIES", NULL, OPT_NETS, ST_INT, trusted_proxies, 0, 0),
    SRV("shutdown_grace_ms", "HARK_SHUTDOWN_GRACE_MS", NULL, OPT_INT, ST_U32, shutdown_grace_ms, 0,
        DAY_MS),
    SRV("webhook_grace_ms", "HARK_WEBHOOK_GRACE_MS", NULL, OPT_INT, ST_U32, webhook_grace_ms, 0,
        DAY_MS),
    SRV("webhook_batch_ms", "HARK_WEBHOOK_BATCH_MS", NULL, OPT_INT, ST_U32, webhook_batch_ms, 0,
        DAY_MS),
    SRV("webhook_batch_max", "HARK_WEBHOOK_BATCH_MAX", NULL, OPT_INT, ST_U32, webhook_batch_max, 1,
        10000),
    SRV("webhook_timeout_ms", "HARK_WEBHOOK_TIMEOUT_MS", NULL, OPT_INT, ST_U32, webhook_timeout_ms,
        1, DAY_MS),
    SRV("webhook_retries", "HARK_WEBHOOK_RETRIES", NULL, OPT_INT, ST_U32, webhook_retries, 0, 1000),
    SRV("webhook_backoff_ms", "HARK_WEBHOOK_BACKOFF_MS", NULL, OPT_INT, ST_U32, webhook_backoff_ms,
        1, DAY_MS),
    SRV("webhook_backoff_max_ms", "HARK_WEBHOOK_BACKOFF_MAX_MS", NULL, OPT_INT, ST_U32,
        webhook_backoff_max_ms, 1, DAY_MS),
    SRV("webhook_max_queue", "HARK_WEBHOOK_MAX_QUEUE", NULL, OPT_INT, ST_U32, webhook_max_queue, 1,
        I32MAX),
    SRV("history_cache_channels", "HARK_HISTORY_CACHE_CHANNELS", NULL, OPT_INT, ST_U32,
        history_cache_channels, 100, 100000000),
};
const size_t config_server_nopts = sizeof config_server_opts / sizeof config_server_opts[0];

const cfg_opt config_app_opts[] = {
    APP("id", OPT_IDENT, ST_INT, id, 0, 0),
    APP("key", OPT_IDENT, ST_INT, key, 0, 0),
    APP("secret", OPT_STR, ST_INT, secret, 0, 0),
    APP("enabled", OPT_BOOL, ST_INT, enabled, 0, 0),
    APP("max_connections", OPT_INT, ST_LONG, max_connections, -1, I32MAX),
    APP("client_events", OPT_BOOL, ST_INT, client_events, 0, 0),
    APP("client_event_rate", OPT_INT, ST_U32, client_event_rate, 0, I32MAX),
    APP("max_payload_bytes", OPT_INT, ST_SIZE, max_payload_bytes, 1, I32MAX),
    APP("max_presence_members", OPT_INT, ST_U32, max_presence_members, 1, I32MAX),
    APP("max_presence_user_bytes", OPT_INT, ST_SIZE, max_presence_user_bytes, 1, I32MAX),
    APP("subscription_count", OPT_BOOL, ST_INT, subscription_count, 0, 0),
    APP("activity_timeout", OPT_INT, ST_U32, activity_timeout, 1, 86400),
    APP("max_channel_name_length", OPT_INT, ST_SIZE, max_channel_name_length, 1,
        HK_MAX_NAME_LENGTH),
    APP("max_event_name_length", OPT_INT, ST_SIZE, max_event_name_length, 1, HK_MAX_NAME_LENGTH),
    APP("max_channels_per_event", OPT_INT, ST_U32, max_channels_per_event, 1, I32MAX),
    APP("max_channels_per_connection", OPT_INT, ST_U32, max_channels_per_connection, 1, I32MAX),
    APP("max_batch_events", OPT_INT, ST_U32, max_batch_events, 1, I32MAX),
    APP("cache_ttl", OPT_INT, ST_U32, cache_ttl, 1, I32MAX),
    APP("user_authentication_required", OPT_BOOL, ST_INT, user_authentication_required, 0, 0),
    APP("user_authentication_timeout", OPT_INT, ST_U32, user_authentication_timeout, 1, 86400),
    APP("max_replay", OPT_INT, ST_U32, max_replay, 0, 1000000),
    APP("max_users_per_event", OPT_INT, ST_U32, max_users_per_event, 1, 1000000),
    APP("typing_throttle_ms", OPT_INT, ST_U32, typing_throttle_ms, 0, 3600000),
    APP("typing_ttl_ms", OPT_INT, ST_U32, typing_ttl_ms, 100, 3600000),
};
const size_t config_app_nopts = sizeof config_app_opts / sizeof config_app_opts[0];

const cfg_opt *config_opt_find(const cfg_opt *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

void config_opt_expect(const cfg_opt *o, char *out, size_t cap)
{
    switch (o->kind) {
    case OPT_STR:
        snprintf(out, cap, "must be a non-empty string");
        break;
    case OPT_IDENT:
        snprintf(out, cap,
                 "must be a non-empty string without '/', '?', '#', spaces or control characters");
        break;
    case OPT_PREFIX:
        snprintf(out, cap, "must be empty or start with '/' and not end with '/'");
        break;
    case OPT_LEVEL:
        snprintf(out, cap, "must be one of debug, info, warn, error, off");
        break;
    case OPT_NETS:
        snprintf(out, cap,
                 "must be a list of IP addresses or networks, e.g. [\"10.0.0.0/8\", \"::1\"]");
        break;
    case OPT_BOOL:
        snprintf(out, cap, "must be true or false");
        break;
    case OPT_INT:
        if (o->min < 0)
            snprintf(out, cap, "must be -1 or an integer 0-%lld", o->max);
        else
            snprintf(out, cap, "must be an integer %lld-%lld", o->min, o->max);
        break;
    }
}

/* App ids and keys are single URL path segments (/app/{key}, /apps/{id}):
 * anything that would split or end the path could never be matched. */
static bool ident_ok(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '/' || *p == '?' || *p == '#')
            return false;
    return true;
}

static bool string_ok(const cfg_opt *o, const char *s)
{
    size_t n = strlen(s);
    switch (o->kind) {
    case OPT_STR:
        return n > 0;
    case OPT_IDENT:
        return ident_ok(s);
    case OPT_PREFIX:
        return n == 0 || (s[0] == '/' && s[n - 1] != '/');
    case OPT_LEVEL:
        return log_level_parse(s) >= 0;
    case OPT_NETS:
        return cidr_list_parse(s, NULL);
    default:
        return false;
    }
}

static void *field(void *base, const cfg_opt *o)
{
    return (char *)base + o->offset;
}

static void store_string(void *base, const cfg_opt *o, const char *s)
{
    if (o->kind == OPT_LEVEL) {
        *(int *)field(base, o) = log_level_parse(s);
        return;
    }
    char **slot = field(base, o);
    char *copy = config_strdup(s);
    free(*slot);
    *slot = copy;
}

static bool store_int(void *base, const cfg_opt *o, long long v)
{
    if (v < o->min || v > o->max)
        return false;
    void *p = field(base, o);
    switch (o->store) {
    case ST_INT:
        *(int *)p = (int)v;
        break;
    case ST_LONG:
        *(long *)p = (long)v;
        break;
    case ST_U32:
        *(uint32_t *)p = (uint32_t)v;
        break;
    case ST_SIZE:
        *(size_t *)p = (size_t)v;
        break;
    }
    return true;
}

/* A JSON array of network strings, kept as one comma-separated string. */
static bool store_net_array(void *base, const cfg_opt *o, const json_t *v)
{
    size_t len = 1, i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || strchr(json_string_value(item), ','))
            return false;
        len += strlen(json_string_value(item)) + 1;
    }
    char *joined = malloc(len);
    if (!joined)
        abort();
    joined[0] = '\0';
    json_array_foreach(v, i, item)
    {
        if (i > 0)
            strcat(joined, ",");
        strcat(joined, json_string_value(item));
    }
    bool ok = cidr_list_parse(joined, NULL);
    if (ok)
        store_string(base, o, joined);
    free(joined);
    return ok;
}

bool config_opt_set_json(void *base, const cfg_opt *o, const json_t *v)
{
    switch (o->kind) {
    case OPT_BOOL:
        if (!json_is_boolean(v))
            return false;
        *(bool *)field(base, o) = json_is_true(v);
        return true;
    case OPT_INT:
        /* 6001.0 is a JSON real, not an integer: refused like any other type. */
        return json_is_integer(v) && store_int(base, o, (long long)json_integer_value(v));
    case OPT_NETS:
        if (json_is_array(v))
            return store_net_array(base, o, v);
        if (!json_is_string(v) || !string_ok(o, json_string_value(v)))
            return false;
        store_string(base, o, json_string_value(v));
        return true;
    default:
        if (!json_is_string(v) || !string_ok(o, json_string_value(v)))
            return false;
        store_string(base, o, json_string_value(v));
        return true;
    }
}

/* Decimal only, optional '-', no spaces or '+': "6001 " in an environment
 * variable is more likely a mistake than intent. */
static bool parse_ll(const char *s, long long *out)
{
    bool neg = *s == '-';
    const char *p = s + neg;
    if (!*p)
        return false;
    unsigned long long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (v > (unsigned long long)I32MAX * 4) /* far beyond every range; avoids overflow */
            return false;
        v = v * 10 + (unsigned long long)(*p - '0');
    }
    *out = neg ? -(long long)v : (long long)v;
    return true;
}

bool config_opt_set_text(void *base, const cfg_opt *o, const char *text)
{
    long long v;
    switch (o->kind) {
    case OPT_BOOL:
        /* No boolean has an environment variable or flag today. */
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
            return false;
        *(bool *)field(base, o) = strcmp(text, "true") == 0;
        return true;
    case OPT_INT:
        return parse_ll(text, &v) && store_int(base, o, v);
    default:
        if (!string_ok(o, text))
            return false;
        store_string(base, o, text);
        return true;
    }
}

char *config_strdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

int config_errf(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return CONFIG_ERROR;
}

void config_app_defaults(hk_app *app)
{
    *app = (hk_app){
        .enabled = true,
        .max_connections = -1,
        .client_events = true,
        .client_event_rate = 10,
        .max_payload_bytes = 10240,
        .max_presence_members = 100,
        .max_presence_user_bytes = 1024,
        .subscription_count = false,
        .activity_timeout = 120,
        .max_channel_name_length = 200,
        .max_event_name_length = 200,
        .max_channels_per_event = 100,
        .max_channels_per_connection = 100,
        .max_batch_events = 10,
        .cache_ttl = 1800,
        .user_authentication_required = false,
        .user_authentication_timeout = 30,
        .max_replay = 1000,
        .max_users_per_event = 1000,
        .typing_throttle_ms = 2000,
        .typing_ttl_ms = 6000,
    };
}

hk_app *config_add_app(hk_config *cfg)
{
    hk_app *apps = realloc(cfg->apps, (cfg->num_apps + 1) * sizeof *apps);
    if (!apps)
        abort();
    cfg->apps = apps;
    hk_app *app = &apps[cfg->num_apps++];
    config_app_defaults(app);
    return app;
}

void config_app_free(hk_app *app)
{
    config_webhooks_free(app);
    config_history_free(app);
    free(app->id);
    free(app->key);
    free(app->secret);
    app->id = app->key = app->secret = NULL;
}

bool config_find_duplicate(const hk_config *cfg, size_t *first, size_t *second, const char **what)
{
    for (size_t j = 1; j < cfg->num_apps; j++) {
        for (size_t i = 0; i < j; i++) {
            const hk_app *a = &cfg->apps[i], *b = &cfg->apps[j];
            bool id = a->id && b->id && strcmp(a->id, b->id) == 0;
            if (id || (a->key && b->key && strcmp(a->key, b->key) == 0)) {
                *first = i;
                *second = j;
                *what = id ? "id" : "key";
                return true;
            }
        }
    }
    return false;
}

static void server_defaults(hk_config *cfg)
{
    *cfg = (hk_config){
        .host = config_strdup("127.0.0.1"),
        .port = 6001,
        .data_dir = config_strdup("./data"),
        .path_prefix = config_strdup(""),
        .workers = 0,
        .log_level = LOG_INFO,
        .max_connections = -1,
        .max_message_bytes = 65536,
        .max_output_bytes = 1048576,
        .max_request_bytes = 1048576,
        .ping_interval_ms = 45000,
        .pong_timeout_ms = 30000,
        .shutdown_grace_ms = 3000,
        .http_header_timeout_ms = 10000,
        .http_body_timeout_ms = 30000,
        .http_idle_timeout_ms = 60000,
        .fallback_session_timeout_ms = 25000,
        .fallback_poll_timeout_ms = 25000,
        .fallback_heartbeat_ms = 25000,
        .write_timeout_ms = 30000,
        .max_pending_input_bytes = 67108864,
        .max_connections_per_ip = 0,
        .trusted_proxies = config_strdup(""),
        .webhook_grace_ms = 3000,
        .webhook_batch_ms = 50,
        .webhook_batch_max = 100,
        .webhook_timeout_ms = 5000,
        .webhook_retries = 10,
        .webhook_backoff_ms = 1000,
        .webhook_backoff_max_ms = 60000,
        .webhook_max_queue = 100000,
        .history_cache_channels = 100000,
    };
}

int config_load(hk_config *cfg, int argc, char **argv, char **env, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    server_defaults(cfg);
    cfg_args args;
    int rc = config_args_parse(&args, argc, argv, err, err_cap);
    if (rc != CONFIG_OK)
        goto out;

    const char *path = args.config_path;
    const char *source = "--config";
    if (!path) {
        path = config_env_get(env, "HARK_CONFIG");
        source = "HARK_CONFIG";
    }
    if (path && !*path) {
        rc = config_errf(err, err_cap, "%s: must be a non-empty string", source);
        goto out;
    }
    if (path && (rc = config_file_load(cfg, path, err, err_cap)) != CONFIG_OK)
        goto out;
    if ((rc = config_env_apply(cfg, env, err, err_cap)) != CONFIG_OK)
        goto out;
    if ((rc = config_args_apply(cfg, &args, err, err_cap)) != CONFIG_OK)
        goto out;

    if (cfg->num_apps == 0) {
        hk_app *app = config_add_app(cfg);
        app->id = config_strdup(DEFAULT_APP_ID);
        app->key = config_strdup(DEFAULT_APP_KEY);
        app->secret = config_strdup(DEFAULT_APP_SECRET);
    }
out:
    config_args_free(&args);
    if (rc != CONFIG_OK)
        config_free(cfg); /* the caller gets nothing to free back */
    return rc;
}

void config_free(hk_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->num_apps; i++)
        config_app_free(&cfg->apps[i]);
    free(cfg->apps);
    free(cfg->config_path);
    free(cfg->host);
    free(cfg->data_dir);
    free(cfg->path_prefix);
    free(cfg->trusted_proxies);
    memset(cfg, 0, sizeof *cfg);
}

static const hk_app *find_app(const hk_config *cfg, size_t off, const char *s, size_t len)
{
    if (!cfg || !s)
        return NULL;
    for (size_t i = 0; i < cfg->num_apps; i++) {
        const char *v = *(char *const *)((const char *)&cfg->apps[i] + off);
        /* s comes straight from a request and is not NUL-terminated. */
        if (v && strlen(v) == len && memcmp(v, s, len) == 0)
            return &cfg->apps[i];
    }
    return NULL;
}

const hk_app *config_find_app_by_key(const hk_config *cfg, const char *key, size_t len)
{
    return find_app(cfg, offsetof(hk_app, key), key, len);
}

const hk_app *config_find_app_by_id(const hk_config *cfg, const char *id, size_t len)
{
    return find_app(cfg, offsetof(hk_app, id), id, len);
}

void config_print_help(const char *argv0)
{
    const char *bin = argv0 && *argv0 ? argv0 : "build/hark";
    printf("hark " HARK_VERSION " - a Pusher Channels compatible realtime server\n"
           "\n"
           "Usage: %s [options]\n"
           "       %s webhooks dead|replay [ID...] [options]   dead-lettered webhooks\n"
           "\n"
           "The binary is build/hark: `make` builds it, `make run` builds and starts it.\n"
           "Settings come from, lowest precedence first: built-in defaults, a JSON file\n"
           "(--config FILE or HARK_CONFIG), environment variables, these flags.\n"
           "Flags take their value as `--port 6001` or `--port=6001`.\n"
           "\n"
           "Options:\n"
           "  --config FILE          JSON settings file (env HARK_CONFIG)\n"
           "  --host ADDR            address to listen on (HARK_HOST, default 127.0.0.1)\n"
           "  --port N               WebSocket + HTTP port, 1-65535 (HARK_PORT, default 6001)\n"
           "  --data-dir DIR         storage directory, created if missing\n"
           "                         (HARK_DATA_DIR, default ./data)\n"
           "  --workers N            event-loop threads, 0 = one per core\n"
           "  --node-id N            this server's number among several (socket ids)\n"
           "                         (HARK_WORKERS, default 0)\n"
           "  --log-level LEVEL      debug, info, warn, error or off\n"
           "                         (HARK_LOG_LEVEL, default info)\n"
           "  --path-prefix PREFIX   prefix before /app/{key} and /apps/{id}, e.g. /ws\n"
           "                         (HARK_PATH_PREFIX, default empty)\n"
           "  --max-connections N    server-wide connection cap, -1 = open-file limit\n"
           "                         (HARK_MAX_CONNECTIONS, default -1)\n"
           "  -h, --help             print this help and exit\n"
           "  --version              print the version and exit\n"
           "\n"
           "Environment only (each also a JSON key: lower case, without HARK_):\n"
           "  HARK_MAX_MESSAGE_BYTES   largest WebSocket message (default 65536)\n"
           "  HARK_MAX_OUTPUT_BYTES    unsent bytes before a slow client is closed (1048576)\n"
           "  HARK_MAX_REQUEST_BYTES   largest HTTP request body (default 1048576)\n"
           "  HARK_PING_INTERVAL_MS    ping a connection silent this long (default 45000)\n"
           "  HARK_PONG_TIMEOUT_MS     close it if nothing arrives within (default 30000)\n"
           "  HARK_SHUTDOWN_GRACE_MS   drain time on SIGTERM (default 3000)\n"
           "  HARK_HTTP_HEADER_TIMEOUT_MS  a request head must arrive within (default 10000)\n"
           "  HARK_HTTP_BODY_TIMEOUT_MS    and its body within, after the head (default 30000)\n"
           "  HARK_HTTP_IDLE_TIMEOUT_MS    idle keep-alive connections close (default 60000)\n"
           "  HARK_WRITE_TIMEOUT_MS    close when unsent output makes no progress (30000)\n"
           "  HARK_MAX_PENDING_INPUT_BYTES  incomplete requests held, whole server (67108864)\n"
           "  HARK_MAX_CONNECTIONS_PER_IP   connections per client address, 0 = no limit\n"
           "  HARK_TRUSTED_PROXIES     proxies whose X-Forwarded-For is used, e.g. 10.0.0.0/8\n"
           "  HARK_WEBHOOK_GRACE_MS    hold channel_vacated/member_removed (default 3000)\n"
           "  HARK_WEBHOOK_BATCH_MS    collect webhook events this long (default 50)\n"
           "  HARK_WEBHOOK_BATCH_MAX   events per webhook request (default 100)\n"
           "  HARK_WEBHOOK_TIMEOUT_MS  one webhook request (default 5000)\n"
           "  HARK_WEBHOOK_RETRIES     retries before dead-lettering (default 10)\n"
           "  HARK_WEBHOOK_BACKOFF_MS  first retry delay, doubled each time (default 1000)\n"
           "  HARK_WEBHOOK_BACKOFF_MAX_MS  longest retry delay (default 60000)\n"
           "  HARK_WEBHOOK_MAX_QUEUE   undelivered webhook events kept (default 100000)\n"
           "\n"
           "Apps: with none configured anywhere, hark serves one default app,\n"
           "  id " DEFAULT_APP_ID ", key " DEFAULT_APP_KEY ", secret " DEFAULT_APP_SECRET "\n"
           "PUSHER_APP_ID, PUSHER_APP_KEY, PUSHER_APP_SECRET (or HARK_APP_ID, HARK_APP_KEY,\n"
           "HARK_APP_SECRET, which win) define the first app or replace its credentials;\n"
           "any not set keep the first app's value or the default above.\n"
           "\n"
           "Every JSON key (server keys and apps[] with their limits) is listed in\n"
           "docs/api.md, section \"Configuration\".\n",
           bin, bin);
}

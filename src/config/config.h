/* config — the server's settings and its apps, from (lowest to highest
 * precedence) built-in defaults, a JSON file (--config or HARK_CONFIG),
 * environment variables (HARK_*, PUSHER_APP_*) and command-line flags.
 * docs/api.md lists every key. A bad file is refused with file, key, reason. */
#ifndef HARK_CONFIG_CONFIG_H
#define HARK_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Webhook event types; bit i is enum webhook_kind i (webhook/webhook.h). */
enum {
    HK_WEBHOOK_CHANNEL_OCCUPIED = 1u << 0,
    HK_WEBHOOK_CHANNEL_VACATED = 1u << 1,
    HK_WEBHOOK_MEMBER_ADDED = 1u << 2,
    HK_WEBHOOK_MEMBER_REMOVED = 1u << 3,
    HK_WEBHOOK_CLIENT_EVENT = 1u << 4,
    HK_WEBHOOK_CACHE_MISS = 1u << 5,
    HK_WEBHOOK_SUBSCRIPTION_COUNT = 1u << 6,
    HK_WEBHOOK_NUM_EVENTS = 7,
    HK_WEBHOOK_ALL = (1u << 7) - 1,
};

/* The names used in event_types and in payloads, indexed by bit number. */
extern const char *const hk_webhook_event_names[HK_WEBHOOK_NUM_EVENTS];

/* The one bound on names: the largest max_channel_name_length and
 * max_event_name_length an app may set. Names travel as pointer and length
 * everywhere (frames, the hub, the directory, webhooks), so no fixed buffer
 * holds one; what bounds this value is the HTTP API, whose
 * GET /channels/{name} carries the name percent-encoded (up to 3 bytes a
 * character) in a request head of at most HTTP_MAX_HEAD_BYTES
 * (net/http_parser.h; api/channels.c checks the two agree). Every other
 * name-related size is derived from it or checked against it. */
#define HK_MAX_NAME_LENGTH 4096

/* One webhook target of an app (soketi's shape: url, event_types, filter,
 * headers). */
typedef struct hk_webhook {
    char *url;            /* http:// or https:// */
    uint32_t event_types; /* HK_WEBHOOK_* bits; all when the key is absent */
    char *channel_prefix; /* filter.channel_name_starts_with, NULL = any */
    char *channel_suffix; /* filter.channel_name_ends_with, NULL = any */
    char **headers;       /* extra request headers, each "Name: value" */
    size_t num_headers;
} hk_webhook;

/* apps[].history: which channels are kept, and for how long. */
enum hk_history_mode {
    HK_HISTORY_DEFAULT = 0, /* no key: every channel but the cache- variants */
    HK_HISTORY_OFF,         /* false */
    HK_HISTORY_RULES,       /* a list of rules, first match wins */
};
#define HK_HISTORY_DEFAULT_EVENTS 1000
#define HK_HISTORY_DEFAULT_AGE_S 86400

typedef struct hk_history_rule {
    char *channels;      /* pattern: '*' matches any run of characters */
    uint32_t max_events; /* kept per channel */
    uint32_t max_age_s;
    bool client_events; /* client-* events are kept too */
} hk_history_rule;

typedef struct hk_app {
    char *id;
    char *key;
    char *secret;
    bool enabled;                         /* false → connections refused with 4003, REST 403 */
    long max_connections;                 /* -1 = unlimited → 4004 beyond it */
    bool client_events;                   /* client-* events allowed */
    uint32_t client_event_rate;           /* per connection per second; 0 = unlimited */
    size_t max_payload_bytes;             /* event data: REST 413, client event error */
    uint32_t max_presence_members;        /* distinct users per presence channel */
    size_t max_presence_user_bytes;       /* channel_data user object size */
    bool subscription_count;              /* pusher_internal:subscription_count events */
    uint32_t activity_timeout;            /* seconds, advertised in connection_established */
    size_t max_channel_name_length;       /* 200; at most HK_MAX_NAME_LENGTH */
    size_t max_event_name_length;         /* 200; at most HK_MAX_NAME_LENGTH */
    uint32_t max_channels_per_event;      /* 100 */
    uint32_t max_batch_events;            /* 10 */
    uint32_t max_channels_per_connection; /* 100: more subscriptions are refused */
    uint32_t cache_ttl;                   /* seconds a cache channel keeps its last event */
    bool user_authentication_required;    /* close with 4009 if not signed in within the timeout */
    uint32_t user_authentication_timeout; /* seconds */
    hk_webhook *webhooks;                 /* apps[].webhooks, owned */
    size_t num_webhooks;
    uint8_t history_mode;           /* enum hk_history_mode */
    hk_history_rule *history_rules; /* HK_HISTORY_RULES, owned */
    size_t num_history_rules;
    uint32_t max_replay;          /* most events a resume replays (1000) */
    uint32_t max_users_per_event; /* "users" of one trigger (1000) */
    uint32_t typing_throttle_ms;  /* hark:typing renewals relayed at most this often (2000) */
    uint32_t typing_ttl_ms;       /* typing ends without a renewal this long (6000) */
} hk_app;

typedef struct hk_config {
    char *config_path;          /* NULL when no file was read */
    char *host;                 /* "127.0.0.1" */
    int port;                   /* 6001 */
    char *data_dir;             /* "./data" */
    char *path_prefix;          /* "" — prefix before /app/{key} and /apps/{id} */
    uint32_t workers;           /* 0 = one per core */
    uint32_t node_id;           /* this server among several: socket ids start with it */
    int log_level;              /* enum log_level */
    long max_connections;       /* whole server, -1 = as many as the fd limit allows */
    size_t max_message_bytes;   /* largest WebSocket message accepted (default 65536) */
    size_t max_output_bytes;    /* a slower reader is closed with 4100 (default 1 MiB) */
    size_t max_request_bytes;   /* largest HTTP request body (default 1 MiB) */
    uint32_t ping_interval_ms;  /* probe a connection silent for this long (45000) */
    uint32_t pong_timeout_ms;   /* then close with 4201 after this long (30000) */
    uint32_t shutdown_grace_ms; /* drain time on SIGTERM (3000) */
    /* Slow or hostile clients. */
    uint32_t http_header_timeout_ms; /* a request head must arrive within this (10000) */
    uint32_t http_body_timeout_ms;   /* and its body within this after the head (30000) */
    uint32_t http_idle_timeout_ms;   /* an idle keep-alive connection is closed (60000) */
    uint32_t
        fallback_session_timeout_ms;   /* HTTP fallback session without a receive request (25000) */
    uint32_t fallback_poll_timeout_ms; /* a poll with nothing to say is answered h (25000) */
    uint32_t fallback_heartbeat_ms;    /* an h on a quiet stream (25000) */
    uint32_t write_timeout_ms;         /* output that makes no progress this long: close (30000) */
    size_t max_pending_input_bytes;    /* incomplete requests/messages, whole server (64 MiB) */
    uint32_t max_connections_per_ip;   /* 0 = no limit */
    char *trusted_proxies;             /* "10.0.0.0/8,::1": X-Forwarded-For is read from these */
    /* Webhook delivery, shared by every app's webhooks. */
    uint32_t webhook_grace_ms;       /* hold channel_vacated/member_removed (3000) */
    uint32_t webhook_batch_ms;       /* collect events this long per request (50) */
    uint32_t webhook_batch_max;      /* events per request at most (100) */
    uint32_t webhook_timeout_ms;     /* one request, connect to last byte (5000) */
    uint32_t webhook_retries;        /* retries after the first attempt (10) */
    uint32_t webhook_backoff_ms;     /* first retry delay, doubled each time (1000) */
    uint32_t webhook_backoff_max_ms; /* longest retry delay (60000) */
    uint32_t webhook_max_queue;      /* events held in memory before new ones are dropped */
    uint32_t history_cache_channels; /* channel heads the history thread keeps in memory */
    hk_app *apps;
    size_t num_apps;
} hk_config;

enum config_result { CONFIG_OK = 0, CONFIG_EXIT = 1, CONFIG_ERROR = -1 };

/* Fills cfg. Returns CONFIG_OK; CONFIG_EXIT after printing --help or
 * --version to stdout (the caller exits 0); CONFIG_ERROR with the reason in
 * err, e.g. "hark.json: apps[1].secret: must be a non-empty string". With
 * no app configured anywhere, one default app (app-id/app-key/app-secret)
 * is created. env is a NULL-terminated "NAME=value" array (pass environ). */
int config_load(hk_config *cfg, int argc, char **argv, char **env, char *err, size_t err_cap);
void config_free(hk_config *cfg);

/* Prints the --help text. */
void config_print_help(const char *argv0);

/* Defaults for one app (all limits as documented; strings NULL). */
void config_app_defaults(hk_app *app);

const hk_app *config_find_app_by_key(const hk_config *cfg, const char *key, size_t len);
const hk_app *config_find_app_by_id(const hk_config *cfg, const char *id, size_t len);

#endif

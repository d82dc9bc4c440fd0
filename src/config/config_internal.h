/* config_internal — shared by config.c (tables, values, load order),
 * config_file.c (JSON), config_env.c (environment) and config_args.c (flags).
 * Not part of the module's interface. */
#ifndef HARK_CONFIG_CONFIG_INTERNAL_H
#define HARK_CONFIG_CONFIG_INTERNAL_H

#include "config/config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define HARK_VERSION "0.1.0"

#define DEFAULT_APP_ID "app-id"
#define DEFAULT_APP_KEY "app-key"
#define DEFAULT_APP_SECRET "app-secret"

/* How a setting is checked. */
enum opt_kind {
    OPT_STR,    /* non-empty string */
    OPT_IDENT,  /* non-empty string usable as one URL path segment (app id, key) */
    OPT_PREFIX, /* "" or "/x..." without a trailing '/' */
    OPT_LEVEL,  /* log level name, stored as int */
    OPT_BOOL,   /* JSON true/false */
    OPT_INT,    /* integer in [min, max] */
    OPT_NETS,   /* IP networks: a JSON array of strings, or one comma-separated string */
};

/* Where an OPT_INT lands in the struct. */
enum opt_store { ST_INT, ST_LONG, ST_U32, ST_SIZE };

/* One setting: its JSON key, environment variable and flag (NULL when it
 * has none) and where it is stored relative to the struct it belongs to. */
typedef struct cfg_opt {
    const char *name;
    const char *env;
    const char *flag;
    enum opt_kind kind;
    enum opt_store store;
    size_t offset;
    long long min, max;
} cfg_opt;

extern const cfg_opt config_server_opts[];
extern const size_t config_server_nopts;
extern const cfg_opt config_app_opts[];
extern const size_t config_app_nopts;

const cfg_opt *config_opt_find(const cfg_opt *opts, size_t n, const char *name, size_t len);

/* "must be ..." — what a valid value of o looks like. */
void config_opt_expect(const cfg_opt *o, char *out, size_t cap);

/* Stores a value into base (an hk_config or hk_app). Both return false with
 * nothing changed when the value is invalid; the caller names the source. */
bool config_opt_set_json(void *base, const cfg_opt *o, const json_t *v);
bool config_opt_set_text(void *base, const cfg_opt *o, const char *text);

/* Owned copy; aborts on out-of-memory like buf (nothing works without memory). */
char *config_strdup(const char *s);
/* Appends an app with default limits and NULL credentials; returns it. */
hk_app *config_add_app(hk_config *cfg);
void config_app_free(hk_app *app);

/* Formats the message into err (when err and cap allow); returns
 * CONFIG_ERROR so callers can `return config_errf(...)`. */
int config_errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Finds the first pair of apps sharing an id (*what = "id") or a key
 * (*what = "key"): *first < *second. Callers name the source. */
bool config_find_duplicate(const hk_config *cfg, size_t *first, size_t *second, const char **what);

/* config_webhook.c: apps[i].webhooks (where is "apps[i]."); frees app's
 * webhooks. */
int config_webhooks_load(hk_app *app, const json_t *list, const char *file, const char *where,
                         char *err, size_t cap);
void config_webhooks_free(hk_app *app);

/* config_history.c: apps[i].history (where is "apps[i]."); frees the rules. */
int config_history_load(hk_app *app, const json_t *v, const char *file, const char *where,
                        char *err, size_t cap);
void config_history_free(hk_app *app);

/* config_file.c: reads path into cfg (server keys and apps). */
int config_file_load(hk_config *cfg, const char *path, char *err, size_t cap);

/* config_env.c */
const char *config_env_get(char **env, const char *name);
int config_env_apply(hk_config *cfg, char **env, char *err, size_t cap);

/* config_args.c: flags, parsed before the file is read (it may name the
 * file) and applied after the environment. */
typedef struct cfg_flag {
    const cfg_opt *opt;
    const char *value; /* points into argv */
} cfg_flag;

typedef struct cfg_args {
    const char *config_path; /* --config, last one wins */
    cfg_flag *flags;
    size_t nflags;
} cfg_args;

/* CONFIG_OK, CONFIG_EXIT after --help/--version, or CONFIG_ERROR. */
int config_args_parse(cfg_args *args, int argc, char **argv, char *err, size_t cap);
int config_args_apply(hk_config *cfg, const cfg_args *args, char *err, size_t cap);
void config_args_free(cfg_args *args);

#endif

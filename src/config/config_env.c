/* config_env — HARK_* server settings and the first app's credentials from
 * PUSHER_APP_* / HARK_APP_* (the names an app's own .env already uses). */
#include "config/config_internal.h"

#include <string.h>

const char *config_env_get(char **env, const char *name)
{
    if (!env)
        return NULL;
    size_t n = strlen(name);
    for (char **e = env; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1; /* the first one wins, as with getenv */
    return NULL;
}

static int apply_server(hk_config *cfg, char **env, char *err, size_t cap)
{
    for (size_t i = 0; i < config_server_nopts; i++) {
        const cfg_opt *o = &config_server_opts[i];
        const char *v = o->env ? config_env_get(env, o->env) : NULL;
        if (v && !config_opt_set_text(cfg, o, v)) {
            char why[128];
            config_opt_expect(o, why, sizeof why);
            return config_errf(err, cap, "%s: %s", o->env, why);
        }
    }
    return CONFIG_OK;
}

static int apply_app(hk_config *cfg, char **env, char *err, size_t cap)
{
    static const char *const creds[3] = {"id", "key", "secret"};
    static const char *const hark_vars[3] = {"HARK_APP_ID", "HARK_APP_KEY", "HARK_APP_SECRET"};
    static const char *const pusher_vars[3] = {"PUSHER_APP_ID", "PUSHER_APP_KEY",
                                               "PUSHER_APP_SECRET"};
    static const char *const defaults[3] = {DEFAULT_APP_ID, DEFAULT_APP_KEY, DEFAULT_APP_SECRET};
    const char *val[3], *var[3];
    bool any = false;
    for (int i = 0; i < 3; i++) {
        /* HARK_APP_* is hark's own name, so it wins. Empty counts as unset:
         * Laravel's .env.example ships PUSHER_APP_* present but empty. */
        var[i] = hark_vars[i];
        val[i] = config_env_get(env, hark_vars[i]);
        if (!val[i] || !*val[i]) {
            var[i] = pusher_vars[i];
            val[i] = config_env_get(env, pusher_vars[i]);
        }
        if (val[i] && !*val[i])
            val[i] = NULL;
        any |= val[i] != NULL;
    }
    if (!any)
        return CONFIG_OK;

    /* Replace the first app's credentials, keeping its limits; what is not
     * set keeps the file's value or, for a new app, the default. */
    hk_app *app = cfg->num_apps ? &cfg->apps[0] : config_add_app(cfg);
    char **slots[3] = {&app->id, &app->key, &app->secret};
    for (int i = 0; i < 3; i++) {
        const cfg_opt *o =
            config_opt_find(config_app_opts, config_app_nopts, creds[i], strlen(creds[i]));
        if (val[i] && !config_opt_set_text(app, o, val[i])) {
            char why[128];
            config_opt_expect(o, why, sizeof why);
            return config_errf(err, cap, "%s: %s", var[i], why);
        }
        if (!*slots[i])
            *slots[i] = config_strdup(defaults[i]);
    }

    size_t a, b;
    const char *what;
    if (config_find_duplicate(cfg, &a, &b, &what)) {
        /* The file's apps were unique, so the clash involves apps[0]. */
        int k = what[0] == 'i' ? 0 : 1;
        const char *src = val[k] ? var[k] : "apps[0]";
        return config_errf(err, cap, "%s: duplicate %s '%s' (also apps[%zu])", src, what, *slots[k],
                           b);
    }
    return CONFIG_OK;
}

int config_env_apply(hk_config *cfg, char **env, char *err, size_t cap)
{
    int rc = apply_server(cfg, env, err, cap);
    return rc != CONFIG_OK ? rc : apply_app(cfg, env, err, cap);
}

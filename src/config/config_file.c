/* config_file — the JSON settings file. Every key is checked against the
 * tables in config.c; unknown keys are refused because they are usually
 * typos that would otherwise silently leave a default in force. */
#include "config/config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Applies one object's members to base. where is the key path prefix
 * ("" for the top level, "apps[2]." inside an app). */
static int apply_object(void *base, const cfg_opt *opts, size_t nopts, json_t *obj,
                        const char *file, const char *where, char *err, size_t cap)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        if (!*where && strcmp(name, "apps") == 0)
            continue; /* read by the caller once the server keys are known good */
        if (*where && (strcmp(name, "webhooks") == 0 || strcmp(name, "history") == 0))
            continue; /* lists of objects, read by load_apps */
        const cfg_opt *o = config_opt_find(opts, nopts, name, strlen(name));
        if (!o)
            return config_errf(err, cap, "%s: %s%s: unknown key", file, where, name);
        if (!config_opt_set_json(base, o, v)) {
            char why[128];
            config_opt_expect(o, why, sizeof why);
            return config_errf(err, cap, "%s: %s%s: %s", file, where, name, why);
        }
    }
    return CONFIG_OK;
}

static int load_apps(hk_config *cfg, json_t *apps, const char *file, char *err, size_t cap)
{
    if (!json_is_array(apps))
        return config_errf(err, cap, "%s: apps: must be an array of app objects", file);
    size_t i;
    json_t *item;
    json_array_foreach(apps, i, item)
    {
        char where[48];
        snprintf(where, sizeof where, "apps[%zu]", i);
        if (!json_is_object(item))
            return config_errf(err, cap, "%s: %s: must be an object", file, where);
        hk_app *app = config_add_app(cfg); /* freed with cfg on any error */
        strcat(where, ".");
        int rc = apply_object(app, config_app_opts, config_app_nopts, item, file, where, err, cap);
        if (rc != CONFIG_OK)
            return rc;
        json_t *hooks = json_object_get(item, "webhooks");
        if (hooks && (rc = config_webhooks_load(app, hooks, file, where, err, cap)) != CONFIG_OK)
            return rc;
        json_t *history = json_object_get(item, "history");
        if (history && (rc = config_history_load(app, history, file, where, err, cap)) != CONFIG_OK)
            return rc;
        /* Credentials have no default: report the first one missing. */
        const char *missing = !app->id ? "id" : !app->key ? "key" : !app->secret ? "secret" : NULL;
        if (missing) {
            char why[128];
            const cfg_opt *o =
                config_opt_find(config_app_opts, config_app_nopts, missing, strlen(missing));
            config_opt_expect(o, why, sizeof why);
            return config_errf(err, cap, "%s: %s%s: %s", file, where, missing, why);
        }
    }
    size_t a, b;
    const char *what;
    if (config_find_duplicate(cfg, &a, &b, &what)) {
        const hk_app *app = &cfg->apps[a];
        return config_errf(err, cap, "%s: apps[%zu].%s: duplicate %s '%s' (also apps[%zu])", file,
                           a, what, what, what[0] == 'i' ? app->id : app->key, b);
    }
    return CONFIG_OK;
}

int config_file_load(hk_config *cfg, const char *path, char *err, size_t cap)
{
    /* Opened here rather than by json_load_file so the message carries the
     * real errno reason and the file name once, in the same form as the rest. */
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return config_errf(err, cap, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp); /* a directory opens fine but reads as an odd parse error */
        return config_errf(err, cap, "%s: cannot open: %s", path, strerror(EISDIR));
    }
    json_error_t je;
    /* Duplicate keys are refused: the second one silently winning hides edits. */
    json_t *root = json_loadf(fp, JSON_REJECT_DUPLICATES, &je);
    fclose(fp);
    if (!root)
        return config_errf(err, cap, "%s:%d:%d: %s", path, je.line, je.column, je.text);

    int rc;
    if (!json_is_object(root)) {
        rc = config_errf(err, cap, "%s: top level: must be a JSON object", path);
    } else {
        rc = apply_object(cfg, config_server_opts, config_server_nopts, root, path, "", err, cap);
        json_t *apps = json_object_get(root, "apps");
        if (rc == CONFIG_OK && apps)
            rc = load_apps(cfg, apps, path, err, cap);
    }
    json_decref(root);
    if (rc == CONFIG_OK)
        cfg->config_path = config_strdup(path);
    return rc;
}

/* webhook_cli — `hark webhooks dead` lists the dead-letter store and
 * `hark webhooks replay [ID...]` sends letters again (signed with the app's
 * current secret), deleting each one its receiver acknowledges. Runs in its
 * own process, beside a running server or not: the store is plain files. */
#include "webhook/webhook_internal.h"

#include "util/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f, "Usage: hark webhooks dead              list dead-lettered webhook batches\n"
               "       hark webhooks replay [ID...]    send them again (all, or the IDs given);\n"
               "                                       delivered ones are removed\n"
               "Config flags (--config FILE, --data-dir DIR, ...) go after the command.\n");
}

static const hk_webhook *find_hook(const hk_app *app, const char *url)
{
    for (size_t i = 0; app && i < app->num_webhooks; i++)
        if (strcmp(app->webhooks[i].url, url) == 0)
            return &app->webhooks[i];
    return NULL;
}

static void iso_time(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmd_dead(const hk_config *cfg, const char *dir)
{
    size_t n;
    char **ids = wh_dead_list(dir, &n);
    if (n == 0)
        printf("no dead-lettered webhooks in %s\n", dir);
    unsigned total = 0;
    for (size_t i = 0; i < n; i++) {
        wh_dead d;
        if (wh_dead_read(dir, ids[i], &d) != 0) {
            printf("%s  (unreadable)\n", ids[i]);
        } else {
            char when[32];
            iso_time(d.failed_at_ms, when, sizeof when);
            printf("%s  app=%s  events=%u  attempts=%u  failed=%s  url=%s  error=%s%s\n", d.id,
                   d.app_id, d.events, d.attempts, when, d.url, d.error ? d.error : "",
                   config_find_app_by_id(cfg, d.app_id, strlen(d.app_id))
                       ? ""
                       : "  (app not configured)");
            total += d.events;
            wh_dead_free(&d);
        }
        free(ids[i]);
    }
    free(ids);
    if (n)
        printf("%zu batch(es), %u event(s); `hark webhooks replay` sends them again\n", n, total);
    return 0;
}

static bool replay_one(const hk_config *cfg, const char *dir, const char *id)
{
    wh_dead d;
    int rc = wh_dead_read(dir, id, &d);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", id, rc == -ENOENT ? "no such dead letter" : "unreadable");
        return false;
    }
    bool ok = false;
    const hk_app *app = config_find_app_by_id(cfg, d.app_id, strlen(d.app_id));
    if (!app) {
        fprintf(stderr, "%s: app %s is not configured; kept\n", id, d.app_id);
    } else {
        char err[CURL_ERROR_SIZE + 32] = "";
        long status =
            wh_post_blocking(d.url, app->key, app->secret, d.body, d.body_len,
                             find_hook(app, d.url), (long)cfg->webhook_timeout_ms, err, sizeof err);
        if (status >= 200 && status < 300) {
            wh_dead_remove(dir, id);
            printf("%s: delivered %u event(s) to %s (HTTP %ld)\n", id, d.events, d.url, status);
            ok = true;
        } else if (status < 0) {
            fprintf(stderr, "%s: %s: %s; kept\n", id, d.url, err);
        } else {
            fprintf(stderr, "%s: %s answered HTTP %ld; kept\n", id, d.url, status);
        }
    }
    wh_dead_free(&d);
    return ok;
}

static int cmd_replay(const hk_config *cfg, const char *dir, int argc, char **argv)
{
    size_t n = 0, failed = 0, done = 0;
    char **ids = NULL;
    if (argc > 0) {
        for (int i = 0; i < argc; i++) {
            if (replay_one(cfg, dir, argv[i]))
                done++;
            else
                failed++;
        }
    } else {
        ids = wh_dead_list(dir, &n);
        if (n == 0)
            printf("no dead-lettered webhooks in %s\n", dir);
        for (size_t i = 0; i < n; i++) {
            if (replay_one(cfg, dir, ids[i]))
                done++;
            else
                failed++;
            free(ids[i]);
        }
        free(ids);
    }
    if (done + failed)
        printf("%zu delivered, %zu kept\n", done, failed);
    return failed ? 1 : 0;
}

int webhooks_cli(const hk_config *cfg, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "-h") == 0) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    char *dir = wh_dead_dir(cfg->data_dir);
    int rc;
    if (strcmp(argv[0], "dead") == 0 && argc == 1) {
        rc = cmd_dead(cfg, dir);
    } else if (strcmp(argv[0], "replay") == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = cmd_replay(cfg, dir, argc - 1, argv + 1);
        curl_global_cleanup();
    } else {
        fprintf(stderr, "hark webhooks: unknown command '%s'\n", argv[0]);
        usage(stderr);
        rc = 2;
    }
    free(dir);
    return rc;
}

int webhooks_cli_main(int argc, char **argv, char **env)
{
    /* argv: hark webhooks SUBCOMMAND [ARGS...] [--config FILE ...] */
    int n = 2;
    while (n < argc && argv[n][0] != '-')
        n++;
    int cargc = 1 + (argc - n);
    char **cargv = calloc((size_t)cargc + 1, sizeof *cargv);
    if (!cargv)
        abort();
    cargv[0] = argv[0];
    for (int i = n; i < argc; i++)
        cargv[1 + i - n] = argv[i];
    hk_config cfg;
    char err[512];
    int rc = config_load(&cfg, cargc, cargv, env, err, sizeof err);
    free(cargv);
    if (rc == CONFIG_EXIT)
        return 0;
    if (rc != CONFIG_OK) {
        fprintf(stderr, "hark: %s\n", err);
        return 2;
    }
    log_set_level((enum log_level)cfg.log_level);
    rc = webhooks_cli(&cfg, n - 2, argv + 2);
    config_free(&cfg);
    return rc;
}

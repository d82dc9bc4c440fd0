/* config_fixture — what the config tests share: temporary files, loading
 * with an explicit (empty) environment, and the default limits. */
#ifndef HARK_TESTS_CONFIG_FIXTURE_H
#define HARK_TESTS_CONFIG_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "util/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ERR_CAP 512

__attribute__((unused)) static char *no_env[] = {NULL};

/* Writes text to a fresh temp file; the caller unlinks and frees the path. */
static inline char *tmp_file(const char *text)
{
    char *path = strdup("/tmp/hark-test-config-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static inline void rm_file(char *path)
{
    unlink(path);
    free(path);
}

static inline int argc_of(char **argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

static inline int load(hk_config *cfg, char **argv, char **env, char *err)
{
    return config_load(cfg, argc_of(argv), argv, env, err, ERR_CAP);
}

/* Loads a file with the given JSON and no env; returns the result. */
static inline int load_json(hk_config *cfg, const char *json, char **path_out, char *err)
{
    char *path = tmp_file(json);
    char *argv[] = {"hark", "--config", path, NULL};
    int rc = load(cfg, argv, no_env, err);
    *path_out = path;
    return rc;
}

static inline void assert_zeroed(const hk_config *cfg)
{
    assert_null(cfg->apps);
    assert_int_equal(cfg->num_apps, 0);
    assert_null(cfg->host);
    assert_null(cfg->config_path);
}

static inline void assert_default_app_limits(const hk_app *a)
{
    assert_true(a->enabled);
    assert_int_equal(a->max_connections, -1);
    assert_true(a->client_events);
    assert_int_equal(a->client_event_rate, 10);
    assert_int_equal(a->max_payload_bytes, 10240);
    assert_int_equal(a->max_presence_members, 100);
    assert_int_equal(a->max_presence_user_bytes, 1024);
    assert_false(a->subscription_count);
    assert_int_equal(a->activity_timeout, 120);
    assert_int_equal(a->max_channel_name_length, 200);
    assert_int_equal(a->max_event_name_length, 200);
    assert_int_equal(a->max_channels_per_event, 100);
    assert_int_equal(a->max_channels_per_connection, 100);
    assert_int_equal(a->max_batch_events, 10);
    assert_int_equal(a->cache_ttl, 1800);
    assert_false(a->user_authentication_required);
    assert_int_equal(a->user_authentication_timeout, 30);
    assert_null(a->webhooks);
    assert_int_equal(a->num_webhooks, 0);
}

#endif

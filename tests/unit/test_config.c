/* Unit tests for src/config: defaults, file, environment, flags, their
 * precedence, --help/--version, app lookup.
 * Environments are passed explicitly so the process's own never leaks in. */
#include "config_fixture.h"

static void test_defaults(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP];
    char *argv[] = {"hark", NULL};
    assert_int_equal(load(&cfg, argv, no_env, err), CONFIG_OK);
    assert_null(cfg.config_path);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 6001);
    assert_string_equal(cfg.data_dir, "./data");
    assert_string_equal(cfg.path_prefix, "");
    assert_int_equal(cfg.workers, 0);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.max_connections, -1);
    assert_int_equal(cfg.max_message_bytes, 65536);
    assert_int_equal(cfg.max_output_bytes, 1048576);
    assert_int_equal(cfg.max_request_bytes, 1048576);
    assert_int_equal(cfg.ping_interval_ms, 45000);
    assert_int_equal(cfg.pong_timeout_ms, 30000);
    assert_int_equal(cfg.shutdown_grace_ms, 3000);
    assert_int_equal(cfg.webhook_grace_ms, 3000);
    assert_int_equal(cfg.webhook_batch_ms, 50);
    assert_int_equal(cfg.webhook_batch_max, 100);
    assert_int_equal(cfg.webhook_timeout_ms, 5000);
    assert_int_equal(cfg.webhook_retries, 10);
    assert_int_equal(cfg.webhook_backoff_ms, 1000);
    assert_int_equal(cfg.webhook_backoff_max_ms, 60000);
    assert_int_equal(cfg.webhook_max_queue, 100000);
    assert_int_equal(cfg.http_header_timeout_ms, 10000);
    assert_int_equal(cfg.http_body_timeout_ms, 30000);
    assert_int_equal(cfg.http_idle_timeout_ms, 60000);
    assert_int_equal(cfg.write_timeout_ms, 30000);
    assert_int_equal(cfg.max_pending_input_bytes, 67108864);
    assert_int_equal(cfg.max_connections_per_ip, 0);
    assert_string_equal(cfg.trusted_proxies, "");
    assert_int_equal(cfg.num_apps, 1);
    assert_string_equal(cfg.apps[0].id, "app-id");
    assert_string_equal(cfg.apps[0].key, "app-key");
    assert_string_equal(cfg.apps[0].secret, "app-secret");
    assert_default_app_limits(&cfg.apps[0]);
    config_free(&cfg);
    assert_zeroed(&cfg);
    config_free(&cfg); /* twice is harmless */

    /* argc 0 / NULL env are tolerated too. */
    assert_int_equal(config_load(&cfg, 0, NULL, NULL, err, sizeof err), CONFIG_OK);
    assert_int_equal(cfg.num_apps, 1);
    config_free(&cfg);
}

static void test_app_defaults(void **state)
{
    (void)state;
    hk_app a;
    memset(&a, 0xff, sizeof a);
    config_app_defaults(&a);
    assert_null(a.id);
    assert_null(a.key);
    assert_null(a.secret);
    assert_default_app_limits(&a);
}

static const char full_json[] =
    "{\n"
    "  \"host\": \"0.0.0.0\", \"port\": 7001, \"data_dir\": \"/var/lib/hark\",\n"
    "  \"workers\": 4, \"log_level\": \"debug\", \"path_prefix\": \"/ws\",\n"
    "  \"max_connections\": 5000, \"max_message_bytes\": 1000, \"max_output_bytes\": 2000,\n"
    "  \"max_request_bytes\": 3000, \"ping_interval_ms\": 200, \"pong_timeout_ms\": 300,\n"
    "  \"shutdown_grace_ms\": 0,\n"
    "  \"apps\": [\n"
    "    {\"id\": \"1\", \"key\": \"k1\", \"secret\": \"s1\", \"enabled\": false,\n"
    "     \"max_connections\": 1, \"client_events\": false, \"client_event_rate\": 0,\n"
    "     \"max_payload_bytes\": 100, \"max_presence_members\": 2,\n"
    "     \"max_presence_user_bytes\": 64, \"subscription_count\": true,\n"
    "     \"activity_timeout\": 30, \"max_channel_name_length\": 50,\n"
    "     \"max_event_name_length\": 60, \"max_channels_per_event\": 3,\n"
    "     \"max_batch_events\": 2, \"cache_ttl\": 5, \"user_authentication_required\": true,\n"
    "     \"user_authentication_timeout\": 7},\n"
    "    {\"id\": \"2\", \"key\": \"k2\", \"secret\": \"s2\"}\n"
    "  ]\n"
    "}\n";

static void test_file_values(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP], *path;
    assert_int_equal(load_json(&cfg, full_json, &path, err), CONFIG_OK);
    assert_string_equal(cfg.config_path, path);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_int_equal(cfg.port, 7001);
    assert_string_equal(cfg.data_dir, "/var/lib/hark");
    assert_int_equal(cfg.workers, 4);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_string_equal(cfg.path_prefix, "/ws");
    assert_int_equal(cfg.max_connections, 5000);
    assert_int_equal(cfg.max_message_bytes, 1000);
    assert_int_equal(cfg.max_output_bytes, 2000);
    assert_int_equal(cfg.max_request_bytes, 3000);
    assert_int_equal(cfg.ping_interval_ms, 200);
    assert_int_equal(cfg.pong_timeout_ms, 300);
    assert_int_equal(cfg.shutdown_grace_ms, 0);
    assert_int_equal(cfg.num_apps, 2);
    const hk_app *a = &cfg.apps[0];
    assert_string_equal(a->id, "1");
    assert_string_equal(a->key, "k1");
    assert_string_equal(a->secret, "s1");
    assert_false(a->enabled);
    assert_int_equal(a->max_connections, 1);
    assert_false(a->client_events);
    assert_int_equal(a->client_event_rate, 0);
    assert_int_equal(a->max_payload_bytes, 100);
    assert_int_equal(a->max_presence_members, 2);
    assert_int_equal(a->max_presence_user_bytes, 64);
    assert_true(a->subscription_count);
    assert_int_equal(a->activity_timeout, 30);
    assert_int_equal(a->max_channel_name_length, 50);
    assert_int_equal(a->max_event_name_length, 60);
    assert_int_equal(a->max_channels_per_event, 3);
    assert_int_equal(a->max_batch_events, 2);
    assert_int_equal(a->cache_ttl, 5);
    assert_true(a->user_authentication_required);
    assert_int_equal(a->user_authentication_timeout, 7);
    assert_string_equal(cfg.apps[1].id, "2");
    assert_default_app_limits(&cfg.apps[1]);
    config_free(&cfg);
    rm_file(path);
}

/* The name limits go up to HK_MAX_NAME_LENGTH, the one bound on names. */
static void test_name_limits_up_to_the_constant(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP], json[256], *path;
    snprintf(json, sizeof json,
             "{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", "
             "\"max_channel_name_length\": %d, \"max_event_name_length\": %d}]}",
             HK_MAX_NAME_LENGTH, HK_MAX_NAME_LENGTH);
    assert_int_equal(load_json(&cfg, json, &path, err), CONFIG_OK);
    assert_int_equal(cfg.apps[0].max_channel_name_length, HK_MAX_NAME_LENGTH);
    assert_int_equal(cfg.apps[0].max_event_name_length, HK_MAX_NAME_LENGTH);
    config_free(&cfg);
    rm_file(path);
}

static const char webhooks_json[] =
    "{\"webhook_grace_ms\": 0, \"webhook_batch_ms\": 10, \"webhook_batch_max\": 1,\n"
    " \"webhook_timeout_ms\": 200, \"webhook_retries\": 0, \"webhook_backoff_ms\": 5,\n"
    " \"webhook_backoff_max_ms\": 50, \"webhook_max_queue\": 7,\n"
    " \"apps\": [{\"id\": \"1\", \"key\": \"k1\", \"secret\": \"s1\", \"webhooks\": [\n"
    "   {\"url\": \"http://127.0.0.1:9/hook\"},\n"
    "   {\"url\": \"HTTPS://example.com/a?b=c\", \"event_types\": [\"member_added\",\n"
    "    \"member_removed\", \"member_added\"],\n"
    "    \"filter\": {\"channel_name_starts_with\": \"presence-\",\n"
    "               \"channel_name_ends_with\": \"-room\"},\n"
    "    \"headers\": {\"Authorization\": \"Bearer t\", \"X-Empty\": \"\"}},\n"
    "   {\"url\": \"http://h\", \"filter\": {\"channel_name_starts_with\": \"\"}}]},\n"
    "  {\"id\": \"2\", \"key\": \"k2\", \"secret\": \"s2\", \"webhooks\": []}]}\n";

static void test_webhooks_file_values(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP], *path;
    assert_int_equal(load_json(&cfg, webhooks_json, &path, err), CONFIG_OK);
    assert_int_equal(cfg.webhook_grace_ms, 0);
    assert_int_equal(cfg.webhook_batch_ms, 10);
    assert_int_equal(cfg.webhook_batch_max, 1);
    assert_int_equal(cfg.webhook_timeout_ms, 200);
    assert_int_equal(cfg.webhook_retries, 0);
    assert_int_equal(cfg.webhook_backoff_ms, 5);
    assert_int_equal(cfg.webhook_backoff_max_ms, 50);
    assert_int_equal(cfg.webhook_max_queue, 7);
    const hk_app *a = &cfg.apps[0];
    assert_int_equal(a->num_webhooks, 3);
    assert_string_equal(a->webhooks[0].url, "http://127.0.0.1:9/hook");
    assert_int_equal(a->webhooks[0].event_types, HK_WEBHOOK_ALL);
    assert_null(a->webhooks[0].channel_prefix);
    assert_null(a->webhooks[0].channel_suffix);
    assert_int_equal(a->webhooks[0].num_headers, 0);
    assert_string_equal(a->webhooks[1].url, "HTTPS://example.com/a?b=c");
    assert_int_equal(a->webhooks[1].event_types,
                     HK_WEBHOOK_MEMBER_ADDED | HK_WEBHOOK_MEMBER_REMOVED);
    assert_string_equal(a->webhooks[1].channel_prefix, "presence-");
    assert_string_equal(a->webhooks[1].channel_suffix, "-room");
    assert_int_equal(a->webhooks[1].num_headers, 2);
    assert_string_equal(a->webhooks[1].headers[0], "Authorization: Bearer t");
    assert_string_equal(a->webhooks[1].headers[1], "X-Empty: ");
    assert_null(a->webhooks[2].channel_prefix); /* "" is no filter */
    assert_int_equal(cfg.apps[1].num_webhooks, 0);
    assert_null(cfg.apps[1].webhooks);
    assert_string_equal(hk_webhook_event_names[4], "client_event");
    config_free(&cfg);
    rm_file(path);

    /* Server-level webhook settings come from the environment too. */
    char *env[] = {"HARK_WEBHOOK_GRACE_MS=250", "HARK_WEBHOOK_RETRIES=3", NULL};
    char *argv[] = {"hark", NULL};
    assert_int_equal(load(&cfg, argv, env, err), CONFIG_OK);
    assert_int_equal(cfg.webhook_grace_ms, 250);
    assert_int_equal(cfg.webhook_retries, 3);
    config_free(&cfg);
    char *bad[] = {"HARK_WEBHOOK_BATCH_MAX=0", NULL};
    assert_int_equal(load(&cfg, argv, bad, err), CONFIG_ERROR);
    assert_string_equal(err, "HARK_WEBHOOK_BATCH_MAX: must be an integer 1-10000");
}

static void test_empty_file_and_empty_apps_get_default_app(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP], *path;
    assert_int_equal(load_json(&cfg, "{\"apps\": []}", &path, err), CONFIG_OK);
    assert_int_equal(cfg.num_apps, 1);
    assert_string_equal(cfg.apps[0].key, "app-key");
    config_free(&cfg);
    rm_file(path);
}

static void test_hark_config_env(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP], env_buf[256];
    char *path = tmp_file("{\"port\": 7100}");
    char *other = tmp_file("{\"port\": 7200}");
    snprintf(env_buf, sizeof env_buf, "HARK_CONFIG=%s", path);
    char *env[] = {env_buf, NULL};
    char *argv[] = {"hark", NULL};
    assert_int_equal(load(&cfg, argv, env, err), CONFIG_OK);
    assert_int_equal(cfg.port, 7100);
    assert_string_equal(cfg.config_path, path);
    config_free(&cfg);

    char *argv2[] = {"hark", "--config", other, NULL}; /* the flag wins */
    assert_int_equal(load(&cfg, argv2, env, err), CONFIG_OK);
    assert_int_equal(cfg.port, 7200);
    config_free(&cfg);
    rm_file(path);
    rm_file(other);
}

static void test_env_over_file(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP];
    char *path = tmp_file(full_json);
    char *argv[] = {"hark", "--config", path, NULL};
    char *env[] = {"OTHER=1",
                   "HARK_HOST=::1",
                   "HARK_PORT=7002",
                   "HARK_DATA_DIR=/tmp/d",
                   "HARK_WORKERS=2",
                   "HARK_LOG_LEVEL=warn",
                   "HARK_PATH_PREFIX=",
                   "HARK_MAX_CONNECTIONS=-1",
                   "HARK_MAX_MESSAGE_BYTES=11",
                   "HARK_MAX_OUTPUT_BYTES=12",
                   "HARK_MAX_REQUEST_BYTES=13",
                   "HARK_PING_INTERVAL_MS=14",
                   "HARK_PONG_TIMEOUT_MS=15",
                   "HARK_SHUTDOWN_GRACE_MS=16",
                   "HARK_PORT=9999", /* first occurrence wins, as with getenv */
                   NULL};
    assert_int_equal(load(&cfg, argv, env, err), CONFIG_OK);
    assert_string_equal(cfg.host, "::1");
    assert_int_equal(cfg.port, 7002);
    assert_string_equal(cfg.data_dir, "/tmp/d");
    assert_int_equal(cfg.workers, 2);
    assert_int_equal(cfg.log_level, LOG_WARN);
    assert_string_equal(cfg.path_prefix, "");
    assert_int_equal(cfg.max_connections, -1);
    assert_int_equal(cfg.max_message_bytes, 11);
    assert_int_equal(cfg.max_output_bytes, 12);
    assert_int_equal(cfg.max_request_bytes, 13);
    assert_int_equal(cfg.ping_interval_ms, 14);
    assert_int_equal(cfg.pong_timeout_ms, 15);
    assert_int_equal(cfg.shutdown_grace_ms, 16);
    assert_int_equal(cfg.num_apps, 2); /* untouched without PUSHER_APP_* */
    config_free(&cfg);
    rm_file(path);
}

static void test_flags_over_env(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP];
    char *env[] = {"HARK_HOST=10.0.0.1",       "HARK_PORT=7002",
                   "HARK_DATA_DIR=/env",       "HARK_WORKERS=2",
                   "HARK_LOG_LEVEL=warn",      "HARK_PATH_PREFIX=/env",
                   "HARK_MAX_CONNECTIONS=100", NULL};
    char *argv[] = {"hark",
                    "--host",
                    "10.0.0.2",
                    "--port=7003",
                    "--data-dir",
                    "/flag",
                    "--workers=8",
                    "--log-level",
                    "off",
                    "--path-prefix=/flag",
                    "--max-connections",
                    "-1",
                    "--port",
                    "7004", /* the last one wins */
                    NULL};
    assert_int_equal(load(&cfg, argv, env, err), CONFIG_OK);
    assert_string_equal(cfg.host, "10.0.0.2");
    assert_int_equal(cfg.port, 7004);
    assert_string_equal(cfg.data_dir, "/flag");
    assert_int_equal(cfg.workers, 8);
    assert_int_equal(cfg.log_level, LOG_OFF);
    assert_string_equal(cfg.path_prefix, "/flag");
    assert_int_equal(cfg.max_connections, -1);
    config_free(&cfg);

    char *argv2[] = {"hark", "--path-prefix=", NULL}; /* empty prefix is a value */
    assert_int_equal(load(&cfg, argv2, env, err), CONFIG_OK);
    assert_string_equal(cfg.path_prefix, "");
    config_free(&cfg);
}

static void test_pusher_app_env_defines_default_app(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP];
    char *argv[] = {"hark", NULL};

    char *only_key[] = {"PUSHER_APP_KEY=my-key", NULL};
    assert_int_equal(load(&cfg, argv, only_key, err), CONFIG_OK);
    assert_int_equal(cfg.num_apps, 1);
    assert_string_equal(cfg.apps[0].id, "app-id");
    assert_string_equal(cfg.apps[0].key, "my-key");
    assert_string_equal(cfg.apps[0].secret, "app-secret");
    assert_default_app_limits(&cfg.apps[0]);
    config_free(&cfg);

    char *all[] = {"PUSHER_APP_ID=123", "PUSHER_APP_KEY=abc", "PUSHER_APP_SECRET=shh",
                   "HARK_APP_SECRET=hark-wins", NULL};
    assert_int_equal(load(&cfg, argv, all, err), CONFIG_OK);
    assert_string_equal(cfg.apps[0].id, "123");
    assert_string_equal(cfg.apps[0].key, "abc");
    assert_string_equal(cfg.apps[0].secret, "hark-wins");
    config_free(&cfg);

    /* Laravel's .env.example has these present but empty: treated as unset. */
    char *empty[] = {
        "PUSHER_APP_ID=", "PUSHER_APP_KEY=", "HARK_APP_KEY=", "PUSHER_APP_SECRET=", NULL};
    assert_int_equal(load(&cfg, argv, empty, err), CONFIG_OK);
    assert_string_equal(cfg.apps[0].key, "app-key");
    config_free(&cfg);
}

static void test_pusher_app_env_replaces_first_app(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP], *path = tmp_file(full_json);
    char *argv[] = {"hark", "--config", path, NULL};
    char *env[] = {"HARK_APP_KEY=new-key", "PUSHER_APP_SECRET=new-secret", NULL};
    assert_int_equal(load(&cfg, argv, env, err), CONFIG_OK);
    assert_int_equal(cfg.num_apps, 2);
    assert_string_equal(cfg.apps[0].id, "1"); /* kept from the file */
    assert_string_equal(cfg.apps[0].key, "new-key");
    assert_string_equal(cfg.apps[0].secret, "new-secret");
    assert_int_equal(cfg.apps[0].max_payload_bytes, 100); /* limits kept */
    assert_string_equal(cfg.apps[1].key, "k2");
    config_free(&cfg);

    char *clash[] = {"PUSHER_APP_KEY=k2", NULL};
    assert_int_equal(load(&cfg, argv, clash, err), CONFIG_ERROR);
    assert_string_equal(err, "PUSHER_APP_KEY: duplicate key 'k2' (also apps[1])");
    assert_zeroed(&cfg);
    rm_file(path);
}

/* Each file error: the JSON and the message after "FILE: ". */
/* Runs config_load with stdout sent to a temp file; returns what it printed. */
static char *capture_load(char **argv, int *rc)
{
    char *path = tmp_file("");
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    hk_config cfg;
    char err[ERR_CAP];
    *rc = load(&cfg, argv, no_env, err);
    assert_zeroed(&cfg);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);

    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, fp);
    out[n] = '\0';
    fclose(fp);
    rm_file(path);
    return out;
}

static void test_help_and_version(void **state)
{
    (void)state;
    int rc;
    char *help_argv[] = {"build/hark", "--port", "1", "--help", "--bogus", NULL};
    const char *out = capture_load(help_argv, &rc);
    assert_int_equal(rc, CONFIG_EXIT);
    static const char *const must[] = {
        "build/hark",
        "--config",
        "--host",
        "--port",
        "--data-dir",
        "--workers",
        "--log-level",
        "--path-prefix",
        "--max-connections",
        "--help",
        "--version",
        "HARK_CONFIG",
        "HARK_MAX_MESSAGE_BYTES",
        "HARK_SHUTDOWN_GRACE_MS",
        "HARK_WEBHOOK_GRACE_MS",
        "build/hark webhooks dead|replay",
        "PUSHER_APP_KEY",
        "app-secret",
        "docs/api.md",
    };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (!strstr(out, must[i]))
            fail_msg("help text lacks %s", must[i]);

    char *h_argv[] = {"hark", "-h", NULL};
    out = capture_load(h_argv, &rc);
    assert_int_equal(rc, CONFIG_EXIT);
    assert_non_null(strstr(out, "Usage: hark"));

    char *v_argv[] = {"hark", "--version", NULL};
    out = capture_load(v_argv, &rc);
    assert_int_equal(rc, CONFIG_EXIT);
    assert_string_equal(out, "hark 0.1.0\n");
}

static void test_find_app(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP], *path;
    assert_int_equal(load_json(&cfg, full_json, &path, err), CONFIG_OK);
    /* Slices of larger buffers, as a request parser hands them over. */
    const char *url = "k2?protocol=7";
    const hk_app *a = config_find_app_by_key(&cfg, url, 2);
    assert_ptr_equal(a, &cfg.apps[1]);
    assert_null(config_find_app_by_key(&cfg, url, 1)); /* "k" is a prefix only */
    assert_null(config_find_app_by_key(&cfg, url, 3)); /* "k2?" is longer */
    assert_null(config_find_app_by_key(&cfg, "1", 1)); /* an id is not a key */
    assert_null(config_find_app_by_key(&cfg, "", 0));
    const char *path_seg = "1/events";
    assert_ptr_equal(config_find_app_by_id(&cfg, path_seg, 1), &cfg.apps[0]);
    assert_ptr_equal(config_find_app_by_id(&cfg, "2", 1), &cfg.apps[1]);
    assert_null(config_find_app_by_id(&cfg, path_seg, 2));
    assert_null(config_find_app_by_id(&cfg, "k1", 2));
    config_free(&cfg);
    rm_file(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_app_defaults),
        cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_name_limits_up_to_the_constant),
        cmocka_unit_test(test_webhooks_file_values),
        cmocka_unit_test(test_empty_file_and_empty_apps_get_default_app),
        cmocka_unit_test(test_hark_config_env),
        cmocka_unit_test(test_env_over_file),
        cmocka_unit_test(test_flags_over_env),
        cmocka_unit_test(test_pusher_app_env_defines_default_app),
        cmocka_unit_test(test_pusher_app_env_replaces_first_app),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_find_app),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for src/config's refusals: every class of error message from
 * the file, its JSON, the environment and the flags, each naming the
 * source, the key and the reason, with nothing left to free. */
#include "config_fixture.h"

static const struct {
    const char *json;
    const char *msg;
} file_errors[] = {
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"a\"}, {\"id\": \"b\", \"key\": "
     "\"b\"}]}",
     "apps[1].secret: must be a non-empty string"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"\"}]}",
     "apps[0].secret: must be a non-empty string"},
    {"{\"apps\": [{\"key\": \"a\", \"secret\": \"s\"}]}",
     "apps[0].id: must be a non-empty string "
     "without '/', '?', '#', spaces or control "
     "characters"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a/b\", \"secret\": \"s\"}]}",
     "apps[0].key: must be a non-empty string without '/', '?', '#', spaces or control "
     "characters"},
    {"{\"port\": 0}", "port: must be an integer 1-65535"},
    {"{\"port\": 65536}", "port: must be an integer 1-65535"},
    {"{\"port\": \"6001\"}", "port: must be an integer 1-65535"},
    {"{\"port\": 6001.0}", "port: must be an integer 1-65535"},
    {"{\"workers\": -1}", "workers: must be an integer 0-1024"},
    {"{\"max_connections\": -2}", "max_connections: must be -1 or an integer 0-2147483647"},
    {"{\"max_message_bytes\": 0}", "max_message_bytes: must be an integer 1-2147483647"},
    {"{\"ping_interval_ms\": 99999999999}", "ping_interval_ms: must be an integer 1-86400000"},
    {"{\"host\": \"\"}", "host: must be a non-empty string"},
    {"{\"data_dir\": null}", "data_dir: must be a non-empty string"},
    {"{\"log_level\": \"loud\"}", "log_level: must be one of debug, info, warn, error, off"},
    {"{\"path_prefix\": \"ws\"}", "path_prefix: must be empty or start with '/' and not end with "
                                  "'/'"},
    {"{\"path_prefix\": \"/ws/\"}", "path_prefix: must be empty or start with '/' and not end "
                                    "with '/'"},
    {"{\"path_prefix\": \"/\"}", "path_prefix: must be empty or start with '/' and not end with "
                                 "'/'"},
    {"{\"prot\": 1}", "prot: unknown key"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"clent_events\": true}]}",
     "apps[0].clent_events: unknown key"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"enabled\": \"true\"}]}",
     "apps[0].enabled: must be true or false"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"client_events\": 1}]}",
     "apps[0].client_events: must be true or false"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"max_connections\": 1.5}]}",
     "apps[0].max_connections: must be -1 or an integer 0-2147483647"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"activity_timeout\": 0}]}",
     "apps[0].activity_timeout: must be an integer 1-86400"},
    /* name limits end at HK_MAX_NAME_LENGTH (4096) */
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", "
     "\"max_channel_name_length\": 4097}]}",
     "apps[0].max_channel_name_length: must be an integer 1-4096"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", "
     "\"max_event_name_length\": 65535}]}",
     "apps[0].max_event_name_length: must be an integer 1-4096"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"x\", \"secret\": \"s\"}, {\"id\": \"b\", \"key\": "
     "\"y\", \"secret\": \"s\"}, {\"id\": \"c\", \"key\": \"x\", \"secret\": \"s\"}]}",
     "apps[0].key: duplicate key 'x' (also apps[2])"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"x\", \"secret\": \"s\"}, {\"id\": \"a\", \"key\": "
     "\"y\", \"secret\": \"s\"}]}",
     "apps[0].id: duplicate id 'a' (also apps[1])"},
    {"{\"apps\": {}}", "apps: must be an array of app objects"},
    {"{\"webhook_batch_max\": 0}", "webhook_batch_max: must be an integer 1-10000"},
    {"{\"webhook_retries\": -1}", "webhook_retries: must be an integer 0-1000"},
    {"{\"webhook_grace_ms\": \"3s\"}", "webhook_grace_ms: must be an integer 0-86400000"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": {}}]}",
     "apps[0].webhooks: must be an array of webhook objects"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": [1]}]}",
     "apps[0].webhooks[0]: must be an object"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": [{}]}]}",
     "apps[0].webhooks[0].url: must be an http:// or https:// URL"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\"}, {\"url\": \"ftp://h/\"}]}]}",
     "apps[0].webhooks[1].url: must be an http:// or https:// URL"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http:///x\"}]}]}",
     "apps[0].webhooks[0].url: must be an http:// or https:// URL"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/ x\"}]}]}",
     "apps[0].webhooks[0].url: must be an http:// or https:// URL"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\", \"event_types\": []}]}]}",
     "apps[0].webhooks[0].event_types: must be a non-empty array of channel_occupied, "
     "channel_vacated, member_added, member_removed, client_event, cache_miss, "
     "subscription_count"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\", \"event_types\": [\"member_added\", \"member_joined\"]}]}]}",
     "apps[0].webhooks[0].event_types[1]: must be one of channel_occupied, "
     "channel_vacated, member_added, member_removed, client_event, cache_miss, "
     "subscription_count"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\", \"filter\": {\"channel_name_starts_with\": 1}}]}]}",
     "apps[0].webhooks[0].filter.channel_name_starts_with: must be a string"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\", \"filter\": {\"prefix\": \"x\"}}]}]}",
     "apps[0].webhooks[0].filter.prefix: unknown key"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\", \"filter\": []}]}]}",
     "apps[0].webhooks[0].filter: must be an object"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\", \"headers\": {\"X-Pusher-Signature\": \"x\"}}]}]}",
     "apps[0].webhooks[0].headers.X-Pusher-Signature: is set by hark"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\", \"headers\": {\"X-A\": \"1\\r\\nX-B: 2\"}}]}]}",
     "apps[0].webhooks[0].headers.X-A: must be a string without control characters"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\", \"headers\": {\"X A\": \"1\"}}]}]}",
     "apps[0].webhooks[0].headers.X A: not a valid header name"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", \"webhooks\": "
     "[{\"url\": \"http://h/\", \"lambda\": {}}]}]}",
     "apps[0].webhooks[0].lambda: unknown key"},
    {"{\"trusted_proxies\": [\"10.0.0.0/33\"]}",
     "trusted_proxies: must be a list of IP addresses or networks, e.g. [\"10.0.0.0/8\", \"::1\"]"},
    {"{\"trusted_proxies\": \"10.0.0.1, example.com\"}",
     "trusted_proxies: must be a list of IP addresses or networks, e.g. [\"10.0.0.0/8\", \"::1\"]"},
    {"{\"trusted_proxies\": [1]}",
     "trusted_proxies: must be a list of IP addresses or networks, e.g. [\"10.0.0.0/8\", \"::1\"]"},
    {"{\"http_header_timeout_ms\": 0}", "http_header_timeout_ms: must be an integer 1-86400000"},
    {"{\"apps\": [{\"id\": \"a\", \"key\": \"a\", \"secret\": \"s\", "
     "\"max_channels_per_connection\": 0}]}",
     "apps[0].max_channels_per_connection: must be an integer 1-2147483647"},
    {"{\"apps\": [1]}", "apps[0]: must be an object"},
    {"[]", "top level: must be a JSON object"},
};

static void test_file_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof file_errors / sizeof file_errors[0]; i++) {
        hk_config cfg;
        char err[ERR_CAP], want[ERR_CAP], *path;
        assert_int_equal(load_json(&cfg, file_errors[i].json, &path, err), CONFIG_ERROR);
        snprintf(want, sizeof want, "%s: %s", path, file_errors[i].msg);
        assert_string_equal(err, want);
        assert_zeroed(&cfg);
        rm_file(path);
    }
}

static void test_parse_errors(void **state)
{
    (void)state;
    hk_config cfg;
    char err[ERR_CAP], want[ERR_CAP], *path;
    assert_int_equal(load_json(&cfg, "{\n  \"port\": 6001,\n  \"host\" \"x\"\n}\n", &path, err),
                     CONFIG_ERROR);
    snprintf(want, sizeof want, "%s:3:", path);
    assert_memory_equal(err, want, strlen(want)); /* FILE:LINE:COL: jansson's text */
    assert_non_null(strstr(err, "':' expected"));
    rm_file(path);

    /* A repeated key would silently override the first: refused. */
    assert_int_equal(load_json(&cfg, "{\"port\": 1,\n\"port\": 2}", &path, err), CONFIG_ERROR);
    snprintf(want, sizeof want, "%s:2:", path);
    assert_memory_equal(err, want, strlen(want));
    assert_non_null(strstr(err, "duplicate"));
    rm_file(path);

    char *argv[] = {"hark", "--config", "/nonexistent/hark.json", NULL};
    assert_int_equal(load(&cfg, argv, no_env, err), CONFIG_ERROR);
    assert_string_equal(err, "/nonexistent/hark.json: cannot open: No such file or directory");

    char *dir[] = {"hark", "--config", "/tmp", NULL};
    assert_int_equal(load(&cfg, dir, no_env, err), CONFIG_ERROR);
    assert_string_equal(err, "/tmp: cannot open: Is a directory");
    assert_zeroed(&cfg);
}

static void test_env_errors(void **state)
{
    (void)state;
    static const struct {
        const char *var, *msg;
    } cases[] = {
        {"HARK_PORT=abc", "HARK_PORT: must be an integer 1-65535"},
        {"HARK_PORT=", "HARK_PORT: must be an integer 1-65535"},
        {"HARK_PORT= 6001", "HARK_PORT: must be an integer 1-65535"},
        {"HARK_PORT=99999999999999999999999", "HARK_PORT: must be an integer 1-65535"},
        {"HARK_WORKERS=-1", "HARK_WORKERS: must be an integer 0-1024"},
        {"HARK_MAX_CONNECTIONS=-", "HARK_MAX_CONNECTIONS: must be -1 or an integer 0-2147483647"},
        {"HARK_LOG_LEVEL=verbose", "HARK_LOG_LEVEL: must be one of debug, info, warn, error, off"},
        {"HARK_PATH_PREFIX=ws", "HARK_PATH_PREFIX: must be empty or start with '/' and not end "
                                "with '/'"},
        {"HARK_HOST=", "HARK_HOST: must be a non-empty string"},
        {"HARK_CONFIG=", "HARK_CONFIG: must be a non-empty string"},
        {"PUSHER_APP_KEY=a b", "PUSHER_APP_KEY: must be a non-empty string without '/', '?', "
                               "'#', spaces or control characters"},
    };
    char *argv[] = {"hark", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hk_config cfg;
        char err[ERR_CAP];
        char *env[] = {(char *)cases[i].var, NULL};
        assert_int_equal(load(&cfg, argv, env, err), CONFIG_ERROR);
        assert_string_equal(err, cases[i].msg);
        assert_zeroed(&cfg);
    }
}

static void test_flag_errors(void **state)
{
    (void)state;
    static const struct {
        const char *args[4];
        const char *msg;
    } cases[] = {
        {{"--bogus"}, "unknown flag '--bogus' (see --help)"},
        {{"--bogus=1"}, "unknown flag '--bogus' (see --help)"},
        {{"-p", "1"}, "unknown flag '-p' (see --help)"},
        {{"serve"}, "unexpected argument 'serve' (see --help)"},
        {{"--port"}, "--port: missing value"},
        {{"--host", "--port", "1"}, "--host: missing value"},
        {{"--port", "http"}, "--port: must be an integer 1-65535"},
        {{"--port=0"}, "--port: must be an integer 1-65535"},
        {{"--workers=2000"}, "--workers: must be an integer 0-1024"},
        {{"--log-level=trace"}, "--log-level: must be one of debug, info, warn, error, off"},
        {{"--path-prefix", "/ws/"},
         "--path-prefix: must be empty or start with '/' and not end "
         "with '/'"},
        {{"--max-connections=-5"}, "--max-connections: must be -1 or an integer 0-2147483647"},
        {{"--config="}, "--config: must be a non-empty string"},
        {{"--help=yes"}, "--help: takes no value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[6] = {"hark"};
        for (int j = 0; j < 4 && cases[i].args[j]; j++)
            argv[j + 1] = (char *)cases[i].args[j];
        hk_config cfg;
        char err[ERR_CAP];
        assert_int_equal(load(&cfg, argv, no_env, err), CONFIG_ERROR);
        assert_string_equal(err, cases[i].msg);
        assert_zeroed(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_flag_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

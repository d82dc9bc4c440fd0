/* config_args — command-line flags. They are parsed first (--config names
 * the file, --help and --version end the run) but applied last, over the
 * file and the environment. */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cfg_opt *flag_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < config_server_nopts; i++) {
        const char *f = config_server_opts[i].flag;
        if (f && strlen(f) == len && memcmp(f, name, len) == 0)
            return &config_server_opts[i];
    }
    return NULL;
}

int config_args_parse(cfg_args *args, int argc, char **argv, char *err, size_t cap)
{
    memset(args, 0, sizeof *args);
    if (argc < 2 || !argv)
        return CONFIG_OK;
    args->flags = calloc((size_t)argc, sizeof *args->flags);
    if (!args->flags)
        abort();
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            config_print_help(argv[0]);
            return CONFIG_EXIT;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("hark " HARK_VERSION "\n");
            return CONFIG_EXIT;
        }
        if (arg[0] != '-')
            return config_errf(err, cap, "unexpected argument '%s' (see --help)", arg);
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return config_errf(err, cap, "unknown flag '%s' (see --help)", arg);

        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        bool is_config = len == 8 && memcmp(arg, "--config", 8) == 0;
        const cfg_opt *o = is_config ? NULL : flag_opt(arg, len);
        if (!is_config && !o) {
            if ((len == 6 && memcmp(arg, "--help", 6) == 0) ||
                (len == 9 && memcmp(arg, "--version", 9) == 0))
                return config_errf(err, cap, "%.*s: takes no value", (int)len, arg);
            return config_errf(err, cap, "unknown flag '%.*s' (see --help)", (int)len, arg);
        }

        const char *value;
        if (eq) {
            value = eq + 1;
        } else {
            /* "--host --port 1" is a forgotten value, not a host named "--port". */
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                return config_errf(err, cap, "%s: missing value", arg);
            value = argv[++i];
        }
        if (is_config) {
            if (!*value)
                return config_errf(err, cap, "--config: must be a non-empty string");
            args->config_path = value;
        } else {
            args->flags[args->nflags++] = (cfg_flag){o, value};
        }
    }
    return CONFIG_OK;
}

int config_args_apply(hk_config *cfg, const cfg_args *args, char *err, size_t cap)
{
    for (size_t i = 0; i < args->nflags; i++) {
        const cfg_flag *f = &args->flags[i];
        if (!config_opt_set_text(cfg, f->opt, f->value)) {
            char why[128];
            config_opt_expect(f->opt, why, sizeof why);
            return config_errf(err, cap, "%s: %s", f->opt->flag, why);
        }
    }
    return CONFIG_OK;
}

void config_args_free(cfg_args *args)
{
    free(args->flags);
    memset(args, 0, sizeof *args);
}

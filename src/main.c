/* hark — a self-hosted Pusher Channels server. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "net/server.h"
#include "util/log.h"
#include "webhook/webhook.h"

extern char **environ;

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "webhooks") == 0) /* hark webhooks dead|replay */
        return webhooks_cli_main(argc, argv, environ);
    hk_config cfg;
    char err[512];
    int rc = config_load(&cfg, argc, argv, environ, err, sizeof(err));
    if (rc == CONFIG_EXIT)
        return 0;
    if (rc != CONFIG_OK) {
        fprintf(stderr, "hark: %s\n", err);
        return 2;
    }
    log_set_level((enum log_level)cfg.log_level);
    if (mkdir(cfg.data_dir, 0755) != 0 && errno != EEXIST)
        log_warn("cannot create data_dir %s: %s", cfg.data_dir, strerror(errno));
    webhooks *wh = webhooks_start(&cfg);
    const hk_app *first = &cfg.apps[0];
    log_info("connect with: new Pusher('%s', { wsHost: '%s', wsPort: %d, forceTLS: false, "
             "enabledTransports: ['ws'], cluster: '' })",
             first->key, cfg.host, cfg.port);
    int exit_code = server_run(&cfg, wh);
    webhooks_stop(wh);
    config_free(&cfg);
    return exit_code;
}

/* webhook — Pusher-compatible webhooks that are never silently lost.
 *
 * The hub reports raw transitions (occupied/vacated, member added/removed,
 * client events, cache misses, subscription counts) from any event-loop
 * thread with webhooks_emit(); this module owns everything after that:
 * per-URL event filters, the grace delay that cancels vacated→occupied and
 * removed→added pairs, batching, signing (X-Pusher-Key, X-Pusher-Signature),
 * delivery with libcurl multi on its own loop thread, retries with backoff,
 * a journal and dead-letter store under data_dir, and flush on shutdown.
 * webhooks_emit never blocks on I/O. */
#ifndef HARK_WEBHOOK_WEBHOOK_H
#define HARK_WEBHOOK_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

enum webhook_kind {
    WEBHOOK_CHANNEL_OCCUPIED,
    WEBHOOK_CHANNEL_VACATED,
    WEBHOOK_MEMBER_ADDED,
    WEBHOOK_MEMBER_REMOVED,
    WEBHOOK_CLIENT_EVENT,
    WEBHOOK_CACHE_MISS,
    WEBHOOK_SUBSCRIPTION_COUNT,
};

typedef struct webhooks webhooks;

/* One event as the hub reports it. Strings are borrowed for the call only;
 * unused fields are NULL / 0. */
typedef struct webhook_event {
    enum webhook_kind kind;
    const char *channel;
    const char *user_id; /* member_added/removed; client_event on presence */
    const char *event;   /* client_event: the event name */
    const char *data;    /* client_event: the data as JSON text as sent */
    size_t data_len;
    const char *socket_id; /* client_event */
    long subscription_count;
} webhook_event;

/* Starts the delivery thread when any app has webhooks configured (returns
 * a valid handle either way; emit is then a no-op). cfg must outlive it. */
webhooks *webhooks_start(const hk_config *cfg);

/* Thread-safe, never blocks on I/O. app must be one of cfg->apps. */
void webhooks_emit(webhooks *w, const hk_app *app, const webhook_event *ev);

/* Sends what is pending (grace-delayed events are sent now), waits up to
 * cfg->shutdown_grace_ms, persists anything unsent, stops the thread, frees. */
void webhooks_stop(webhooks *w);

/* Counters of one app since start (events unless noted), for metrics. */
typedef struct webhook_stats {
    uint64_t sent;          /* events acknowledged by a 2xx */
    uint64_t failed;        /* requests that failed: network error, timeout, non-2xx */
    uint64_t retried;       /* requests sent again after a failure */
    uint64_t dead_lettered; /* events moved to the dead-letter store */
    uint64_t dropped;       /* events refused: webhook_max_queue reached */
    uint64_t queued;        /* gauge: accepted, not yet delivered or dead-lettered */
} webhook_stats;

/* Thread-safe. False (out zeroed) when app is not one of cfg->apps. */
bool webhooks_stats(const webhooks *w, const hk_app *app, webhook_stats *out);

/* `hark webhooks ...`: argv[0] is the subcommand ("dead", "replay",
 * "help"), the rest its arguments. Prints to stdout/stderr; returns the
 * process exit code. Works on cfg->data_dir whether or not a server runs. */
int webhooks_cli(const hk_config *cfg, int argc, char **argv);

/* The whole command for main(): argv is the process's own
 * ("hark", "webhooks", SUBCOMMAND, [ARGS...], [config flags...]); loads
 * the config from the flags after the subcommand's arguments (the first
 * argument starting with '-') and env, runs webhooks_cli, frees. */
int webhooks_cli_main(int argc, char **argv, char **env);

#endif

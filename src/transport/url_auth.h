/* url_auth — what an HTTP client without a socket puts in its URL to be
 * let in (Server-Sent Events, polls): channels, and for private and
 * presence channels a token that stands for the socket id in the Pusher
 * SDKs' signatures, "<Unix time it expires, in seconds>.<digits>"
 * (docs/api.md, "Server-Sent Events"). */
#ifndef HARK_TRANSPORT_URL_AUTH_H
#define HARK_TRANSPORT_URL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config/config.h"
#include "net/http_parser.h"

#define URL_TOKEN_MAX_AHEAD_S 86400 /* how far ahead a token may expire */

/* Whether req's path is {path_prefix}/app/{key}/<tail> (tail "/sse",
 * "/poll"); the key (not decoded) in *key. */
bool url_app_path(const hk_config *cfg, const http_request *req, const char *tail, const char **key,
                  size_t *key_len);

/* A decoded query parameter (heap string, NUL-terminated); NULL when absent. */
char *url_param(const http_request *req, const char *key);
/* The value of a repeated parameter "key=<channel>:<value>" for channel,
 * decoded into out; false when there is none (or it does not fit). */
bool url_param_for(const http_request *req, const char *key, const char *channel,
                   size_t channel_len, char *out, size_t cap);
/* The token's expiry, when it is a token that has not expired and is at
 * most URL_TOKEN_MAX_AHEAD_S ahead; 0 otherwise. */
time_t url_token_expiry(const char *token);

#define URL_CHANNELS_MAX 100

typedef struct url_channels {
    const char *names[URL_CHANNELS_MAX];
    size_t lens[URL_CHANNELS_MAX];
    size_t count;
    bool needs_token; /* a private or presence channel is among them */
} url_channels;
/* Splits list (comma-separated channel names, at most max <=
 * URL_CHANNELS_MAX) into out;
 * NULL, or why not. */
const char *url_channels_parse(const char *list, const hk_app *app, size_t max, url_channels *out);

#endif

#include "protocol/channel_name.h"

#include <string.h>

#define SOCKET_ID_PART_MAX 20

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* The character set of spec §4.2: [A-Za-z0-9_\-=@,.;]. */
static bool name_char(unsigned char c)
{
    static const char extra[] = "_-=@,.;";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && memchr(extra, c, sizeof extra - 1) != NULL;
}

static bool name_chars_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!name_char((unsigned char)s[i]))
            return false;
    return true;
}

channel_kind channel_classify(const char *name, size_t len)
{
    /* Longest prefixes first: "private-encrypted-cache-" must not be taken for
     * "private-encrypted-" or "private-" (spec §4.1 order). */
    static const struct {
        const char *prefix;
        enum channel_type type;
        bool cache;
    } table[] = {
        {CHANNEL_USER_PREFIX, CHANNEL_USER, false},
        {"private-encrypted-cache-", CHANNEL_ENCRYPTED, true},
        {"private-encrypted-", CHANNEL_ENCRYPTED, false},
        {"private-cache-", CHANNEL_PRIVATE, true},
        {"private-", CHANNEL_PRIVATE, false},
        {"presence-cache-", CHANNEL_PRESENCE, true},
        {"presence-", CHANNEL_PRESENCE, false},
        {"cache-", CHANNEL_PUBLIC, true},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (has_prefix(name, len, table[i].prefix))
            return (channel_kind){.type = table[i].type, .cache = table[i].cache};
    return (channel_kind){.type = CHANNEL_PUBLIC, .cache = false};
}

bool channel_kind_needs_auth(channel_kind k)
{
    /* User channels are authorized by the connection's sign-in, not by an
     * HMAC in the subscribe message. */
    return k.type == CHANNEL_PRIVATE || k.type == CHANNEL_PRESENCE || k.type == CHANNEL_ENCRYPTED;
}

bool user_id_valid(const char *id, size_t len)
{
    return len >= 1 && len <= USER_ID_MAX_LENGTH && name_chars_valid(id, len);
}

bool channel_name_valid(const char *name, size_t len, size_t max_len, const char **reason)
{
    const char *why = NULL;
    const size_t user_prefix_len = sizeof CHANNEL_USER_PREFIX - 1;
    if (len == 0)
        why = "channel name is empty";
    else if (len > max_len)
        why = "channel name is too long";
    else if (name[0] == '#') {
        /* '#' is reserved; the only name using it is the user channel. */
        if (!has_prefix(name, len, CHANNEL_USER_PREFIX))
            why = "channel names starting with '#' are reserved";
        else if (!user_id_valid(name + user_prefix_len, len - user_prefix_len))
            why = "invalid user id in #server-to-user- channel";
    } else if (!name_chars_valid(name, len))
        why = "channel name contains characters outside [A-Za-z0-9_-=@,.;]";
    if (reason)
        *reason = why;
    return why == NULL;
}

bool channel_is_users_own(const char *name, size_t len, const char *user, size_t user_len)
{
    const size_t prefix = sizeof CHANNEL_USER_PREFIX - 1;
    return user && has_prefix(name, len, CHANNEL_USER_PREFIX) && len - prefix == user_len &&
           memcmp(name + prefix, user, user_len) == 0;
}

bool event_name_valid(const char *name, size_t len, size_t max_len)
{
    (void)name;
    return len >= 1 && len <= max_len;
}

bool event_name_reserved(const char *name, size_t len)
{
    return has_prefix(name, len, "pusher:") || has_prefix(name, len, "pusher_internal:");
}

static bool digits(const char *s, size_t len)
{
    if (len == 0 || len > SOCKET_ID_PART_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool socket_id_valid(const char *id, size_t len)
{
    if (len == 0)
        return false;
    const char *dot = memchr(id, '.', len);
    if (!dot)
        return false;
    size_t left = (size_t)(dot - id);
    return digits(id, left) && digits(dot + 1, len - left - 1);
}

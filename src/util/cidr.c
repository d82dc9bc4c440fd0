#include "util/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static bool parse_one(const char *s, size_t len, cidr *out)
{
    char text[64];
    if (len == 0 || len >= sizeof(text))
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    char *slash = strchr(text, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return false;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return false;
            bits = bits * 10 + (*p - '0');
        }
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = AF_INET;
        if (bits > 32)
            return false;
        out->bits = (uint8_t)(bits < 0 ? 32 : bits);
    } else if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = AF_INET6;
        if (bits > 128)
            return false;
        out->bits = (uint8_t)(bits < 0 ? 128 : bits);
    } else {
        return false;
    }
    return true;
}

static bool is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t';
}

bool cidr_list_parse(const char *text, cidr_list *out)
{
    cidr_list l = {0};
    size_t cap = 0;
    const char *p = text;
    while (*p) {
        while (*p && is_sep(*p))
            p++;
        const char *start = p;
        while (*p && !is_sep(*p))
            p++;
        if (p == start)
            break;
        cidr c;
        if (!parse_one(start, (size_t)(p - start), &c)) {
            free(l.items);
            return false;
        }
        if (l.count == cap) {
            cap = cap ? cap * 2 : 4;
            l.items = xrealloc(l.items, cap * sizeof(*l.items));
        }
        l.items[l.count++] = c;
    }
    if (out)
        *out = l;
    else
        free(l.items);
    return true;
}

void cidr_list_free(cidr_list *l)
{
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool cidr_list_contains(const cidr_list *l, const struct sockaddr *sa)
{
    uint8_t v4[4], v6[16];
    bool has4 = false, has6 = false;
    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        has4 = true;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        memcpy(v6, a, 16);
        has6 = true;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(v4, v6 + 12, 4);
            has4 = true;
        }
    }
    for (size_t i = 0; i < l->count; i++) {
        const cidr *c = &l->items[i];
        if (c->family == AF_INET && has4 && prefix_match(v4, c->addr, c->bits))
            return true;
        if (c->family == AF_INET6 && has6 && prefix_match(v6, c->addr, c->bits))
            return true;
    }
    return false;
}

bool cidr_parse_addr(const char *text, size_t len, struct sockaddr_storage *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, buf, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        return true;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

int cidr_forwarded_client(const cidr_list *trusted, const char *v, size_t end,
                          struct sockaddr_storage *out)
{
    while (end > 0) {
        size_t start = end;
        while (start > 0 && v[start - 1] != ',')
            start--;
        size_t a = start, b = end;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (!cidr_parse_addr(v + a, b - a, out))
            return -1;
        if (!cidr_list_contains(trusted, (struct sockaddr *)out))
            return 1;
        end = start > 0 ? start - 1 : 0;
    }
    return 0;
}

#include "util/json_write.h"

#include <stdint.h>
#include <string.h>

void json_write_string(buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, len + 2);
    buf_append_char(b, '"');
    size_t run = 0; /* start of the current run of bytes that need no escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            buf_append(b, "\\\"", 2);
            break;
        case '\\':
            buf_append(b, "\\\\", 2);
            break;
        case '\n':
            buf_append(b, "\\n", 2);
            break;
        case '\r':
            buf_append(b, "\\r", 2);
            break;
        case '\t':
            buf_append(b, "\\t", 2);
            break;
        case '\b':
            buf_append(b, "\\b", 2);
            break;
        case '\f':
            buf_append(b, "\\f", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, u, 6);
        }
        }
    }
    buf_append(b, s + run, len - run);
    buf_append_char(b, '"');
}

void json_write_cstr(buf *b, const char *s)
{
    json_write_string(b, s, strlen(s));
}

/* The code point of the UTF-8 sequence at s (valid UTF-8: its length in *n). */
static uint32_t utf8_decode(const unsigned char *s, size_t *n)
{
    if (s[0] < 0xe0) {
        *n = 2;
        return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    }
    if (s[0] < 0xf0) {
        *n = 3;
        return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    }
    *n = 4;
    return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
           (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

static void append_u(buf *b, uint32_t u)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 'u', hex[u >> 12 & 15], hex[u >> 8 & 15], hex[u >> 4 & 15], hex[u & 15]};
    buf_append(b, e, 6);
}

void json_write_string_ascii(buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    buf_reserve(b, len + 2);
    size_t run = 0; /* start of the current run of ASCII bytes */
    buf_append_char(b, '"');
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if (i > run) { /* the ASCII run before, escaped as usual (without quotes) */
            size_t at = b->len;
            json_write_string(b, s + run, i - run);
            memmove(b->data + at, b->data + at + 1, b->len - at - 2);
            b->len -= 2;
        }
        size_t n = 1;
        uint32_t cp = i + 1 < len ? utf8_decode(p + i, &n) : 0xfffd;
        if (i + n > len) { /* cut short: never for valid input */
            cp = 0xfffd;
            n = len - i;
        }
        if (cp > 0xffff) {
            cp -= 0x10000;
            append_u(b, 0xd800 | (cp >> 10));
            append_u(b, 0xdc00 | (cp & 0x3ff));
        } else {
            append_u(b, cp);
        }
        i += n;
        run = i;
    }
    if (len > run) {
        size_t at = b->len;
        json_write_string(b, s + run, len - run);
        memmove(b->data + at, b->data + at + 1, b->len - at - 2);
        b->len -= 2;
    }
    buf_append_char(b, '"');
}

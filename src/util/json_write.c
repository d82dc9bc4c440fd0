#include "util/json_write.h"

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

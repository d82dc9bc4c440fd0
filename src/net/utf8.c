#include "net/utf8.h"

#include <string.h>

/* Table-free strict decoder following the well-formed byte sequences of
 * Unicode 15 table 3-7: the second byte's allowed range depends on the lead
 * byte, which is how overlongs (C0/C1, E0 80-9F, F0 80-8F), surrogates
 * (ED A0-BF) and code points above U+10FFFF (F4 90-BF, F5-FF) are excluded. */
bool utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* Fast path: Pusher messages are almost entirely ASCII JSON, so skip
         * 8 bytes at a time while none has its top bit set. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, sizeof w);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates D800-DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return false; /* stray continuation, C0/C1 overlong lead, F5-FF */
        }
        if (len - i - 1 < need)
            return false; /* truncated sequence */
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        }
        i += need + 1;
    }
    return true;
}

#include "util/utf8.h"

#include <string.h>

/* The well-formed byte sequences of Unicode 15 table 3-7, table-free: the
 * second byte's allowed range depends on the lead byte, which is how
 * overlongs (C0/C1, E0 80-9F, F0 80-8F), surrogates (ED A0-BF) and code
 * points above U+10FFFF (F4 90-BF, F5-FF) are excluded.
 *
 * For a non-ASCII byte at s[0] (avail >= 1 bytes readable): returns the
 * length of the well-formed character starting there (2-4), or 0 and the
 * length of the maximal ill-formed subpart in *bad (1-3): the lead byte and
 * the continuation bytes that could still have been part of a character. */
static size_t seq_len(const uint8_t *s, size_t avail, size_t *bad)
{
    uint8_t c = s[0];
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
        *bad = 1; /* stray continuation, C0/C1 overlong lead, F5-FF */
        return 0;
    }
    size_t k = 1;
    if (k < avail && s[k] >= lo && s[k] <= hi) {
        for (k = 2; k <= need && k < avail; k++)
            if ((s[k] & 0xC0) != 0x80)
                break;
    }
    if (k == need + 1)
        return k;
    *bad = k; /* truncated or interrupted sequence */
    return 0;
}

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
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t bad;
        size_t n = seq_len(s + i, len - i, &bad);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t utf8_sanitize(char *out, size_t cap, const char *in, size_t len)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    if (cap == 0)
        return 0;
    const uint8_t *s = (const uint8_t *)in;
    size_t room = cap - 1, o = 0, i = 0;
    while (i < len) {
        const char *from = in + i;
        size_t n = 1, bad = 1;
        if (s[i] >= 0x80)
            n = seq_len(s + i, len - i, &bad);
        if (n == 0 || s[i] == 0) {
            from = replacement;
            n = 3;
            i += bad;
        } else {
            i += n;
        }
        if (n > room - o)
            break; /* cut before a character that does not fit */
        memcpy(out + o, from, n);
        o += n;
    }
    out[o] = '\0';
    return o;
}

/* utf8 — strict UTF-8 validation (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), as RFC 6455 requires of text frames, and
 * sanitizing client bytes before they are quoted in an error message or a
 * close reason. */
#ifndef HARK_UTIL_UTF8_H
#define HARK_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool utf8_valid(const uint8_t *s, size_t len);

/* Copies in[0, len) to out as well-formed UTF-8 and NUL-terminates it:
 *
 * - every ill-formed sequence is replaced by U+FFFD (EF BF BD), one per
 *   maximal subpart as Unicode §3.9 recommends (what browsers' TextDecoder
 *   does): a lone continuation byte, an invalid lead byte (C0, C1, F5-FF),
 *   an overlong form, a surrogate or a code point above U+10FFFF becomes one
 *   U+FFFD per byte, a truncated sequence ("\xE2\x82" then 'x') one U+FFFD;
 * - NUL bytes become U+FFFD too, so out is a C string of the returned
 *   length;
 * - well-formed text, control characters included, is copied unchanged;
 * - when the result does not fit in cap - 1 bytes it is cut before the
 *   first character (or U+FFFD) that does not fit: never inside one.
 *
 * Returns the bytes written, excluding the NUL (0 when cap is 0, in which
 * case nothing is written and out may be NULL). in may be NULL when len
 * is 0. out and in must not overlap. Each input byte yields at most 3
 * output bytes, so cap = 3 * len + 1 never truncates. */
size_t utf8_sanitize(char *out, size_t cap, const char *in, size_t len);

#endif

/* utf8 — strict UTF-8 validation (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), as RFC 6455 requires of text frames. */
#ifndef HARK_NET_UTF8_H
#define HARK_NET_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool utf8_valid(const uint8_t *s, size_t len);

#endif

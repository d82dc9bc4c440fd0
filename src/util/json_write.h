/* json_write — append JSON text to a buf without building a tree.
 *
 * Server frames are written straight into their final bytes: this is how a
 * published event is encoded once per publish instead of per subscriber. */
#ifndef HARK_UTIL_JSON_WRITE_H
#define HARK_UTIL_JSON_WRITE_H

#include "util/buf.h"

/* Appends s as a quoted JSON string ("..."), escaping ", \, control
 * characters (as \uXXXX or the short forms). Bytes >= 0x80 are copied as they
 * are (input is valid UTF-8 by the time it gets here). */
void json_write_string(buf *b, const char *s, size_t len);
void json_write_cstr(buf *b, const char *s);
/* The same with every character beyond ASCII as \uXXXX (a surrogate pair
 * above U+FFFF), so the text has as many bytes as characters. s must be
 * valid UTF-8. */
void json_write_string_ascii(buf *b, const char *s, size_t len);

#endif

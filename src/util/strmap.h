/* strmap — an open-addressing hash map from byte strings to pointers.
 *
 * The map does not own keys or values: a key must stay valid while its entry
 * exists (callers point it into the value, e.g. a channel's own name), which
 * saves one allocation per entry. */
#ifndef HARK_UTIL_STRMAP_H
#define HARK_UTIL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap_slot {
    const char *key; /* NULL = empty */
    uint32_t key_len;
    uint32_t hash;
    void *value;
} strmap_slot;

typedef struct strmap {
    strmap_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} strmap;

void strmap_init(strmap *m);
void strmap_free(strmap *m); /* frees the table, not keys or values */
void *strmap_get(const strmap *m, const char *key, size_t len);
/* Inserts or replaces; returns the previous value or NULL. */
void *strmap_put(strmap *m, const char *key, size_t len, void *value);
/* Removes; returns the value or NULL when absent. */
void *strmap_remove(strmap *m, const char *key, size_t len);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ...
 * (do not insert or remove while iterating; collect first). */

#endif

#include "util/strmap.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

void strmap_init(strmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void strmap_free(strmap *m)
{
    free(m->slots);
    strmap_init(m);
}

static size_t find_slot(const strmap *m, const char *key, size_t len, uint32_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const strmap_slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && s->key_len == len && memcmp(s->key, key, len) == 0))
            return i;
    }
}

void *strmap_get(const strmap *m, const char *key, size_t len)
{
    if (m->count == 0)
        return NULL;
    size_t i = find_slot(m, key, len, hash_bytes(key, len));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

static void grow(strmap *m)
{
    size_t new_cap = m->cap ? m->cap * 2 : 8;
    strmap_slot *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = calloc(new_cap, sizeof(*m->slots));
    if (!m->slots)
        abort();
    m->cap = new_cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].key)
            continue;
        size_t j = find_slot(m, old[i].key, old[i].key_len, old[i].hash);
        m->slots[j] = old[i];
    }
    free(old);
}

void *strmap_put(strmap *m, const char *key, size_t len, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        grow(m);
    uint32_t h = hash_bytes(key, len);
    size_t i = find_slot(m, key, len, h);
    strmap_slot *s = &m->slots[i];
    if (s->key) {
        void *prev = s->value;
        s->key = key; /* the new value may carry its own copy of the key */
        s->value = value;
        return prev;
    }
    s->key = key;
    s->key_len = (uint32_t)len;
    s->hash = h;
    s->value = value;
    m->count++;
    return NULL;
}

void *strmap_remove(strmap *m, const char *key, size_t len)
{
    if (m->count == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find_slot(m, key, len, hash_bytes(key, len));
    if (!m->slots[i].key)
        return NULL;
    void *value = m->slots[i].value;
    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].key)
            break;
        size_t home = m->slots[j].hash & mask;
        /* Move j into the hole i if its home is not cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->slots[i].value = NULL;
    m->count--;
    return value;
}

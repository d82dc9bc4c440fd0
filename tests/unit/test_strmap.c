/* strmap: put/get/replace/remove, backward-shift deletion keeping probe
 * chains intact (also across the wrap-around of the table), iteration, and a
 * randomized comparison against a plain array model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strmap.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void shuffle(size_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rng() % i;
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* The same FNV-1a as the map, to place keys on chosen home slots. */
static uint32_t fnv1a(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static void *get_s(const strmap *m, const char *key)
{
    return strmap_get(m, key, strlen(key));
}

static void *put_s(strmap *m, const char *key, void *value)
{
    return strmap_put(m, key, strlen(key), value);
}

static void *remove_s(strmap *m, const char *key)
{
    return strmap_remove(m, key, strlen(key));
}

/* Structural invariants: the count matches the occupied slots, each slot's
 * hash is its key's, the load stays at most 3/4, and no empty slot lies
 * between an entry's home slot and the slot it sits in (otherwise a lookup
 * would stop early and miss it). */
static void check_invariants(const strmap *m)
{
    if (m->cap == 0) {
        assert_int_equal(m->count, 0);
        return;
    }
    assert_int_equal(m->cap & (m->cap - 1), 0);
    assert_true(m->count * 4 <= m->cap * 3);
    size_t mask = m->cap - 1;
    size_t used = 0;
    for (size_t i = 0; i < m->cap; i++) {
        const strmap_slot *s = &m->slots[i];
        if (!s->key)
            continue;
        used++;
        assert_int_equal(s->hash, fnv1a(s->key, s->key_len));
        for (size_t j = s->hash & mask; j != i; j = (j + 1) & mask)
            assert_non_null(m->slots[j].key);
        assert_ptr_equal(strmap_get(m, s->key, s->key_len), s->value);
    }
    assert_int_equal(used, m->count);
}

/* ---- tests ---------------------------------------------------------------- */

static void empty_map_finds_and_removes_nothing(void **state)
{
    (void)state;
    strmap m;
    strmap_init(&m);
    assert_null(get_s(&m, "a"));
    assert_null(remove_s(&m, "a"));
    assert_int_equal(m.count, 0);
    check_invariants(&m);
    strmap_free(&m);
    strmap_free(&m); /* freeing twice is harmless: free resets the map */
    assert_null(m.slots);
}

static void put_get_replace_remove(void **state)
{
    (void)state;
    strmap m;
    strmap_init(&m);
    int a = 1, b = 2, c = 3;

    assert_null(put_s(&m, "alpha", &a));
    assert_null(put_s(&m, "beta", &b));
    assert_int_equal(m.count, 2);
    assert_ptr_equal(get_s(&m, "alpha"), &a);
    assert_ptr_equal(get_s(&m, "beta"), &b);
    assert_null(get_s(&m, "gamma"));
    assert_null(get_s(&m, "alph"));   /* prefix */
    assert_null(get_s(&m, "alphaa")); /* extension */

    /* replace returns the old value and keeps the count */
    assert_ptr_equal(put_s(&m, "alpha", &c), &a);
    assert_int_equal(m.count, 2);
    assert_ptr_equal(get_s(&m, "alpha"), &c);

    /* the new key pointer is used afterwards: the old storage may go away */
    char *copy = strdup("beta");
    assert_ptr_equal(put_s(&m, copy, &a), &b);
    bool found = false;
    for (size_t i = 0; i < m.cap; i++)
        if (m.slots[i].key && m.slots[i].value == &a) {
            assert_ptr_equal(m.slots[i].key, copy);
            found = true;
        }
    assert_true(found);

    assert_ptr_equal(remove_s(&m, "beta"), &a);
    free(copy);
    assert_null(remove_s(&m, "beta"));
    assert_int_equal(m.count, 1);
    assert_null(get_s(&m, "beta"));
    assert_ptr_equal(get_s(&m, "alpha"), &c);

    assert_ptr_equal(remove_s(&m, "alpha"), &c);
    assert_int_equal(m.count, 0);
    assert_null(get_s(&m, "alpha"));
    check_invariants(&m);

    /* reusable after emptying */
    assert_null(put_s(&m, "alpha", &b));
    assert_ptr_equal(get_s(&m, "alpha"), &b);
    strmap_free(&m);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.cap, 0);
}

static void keys_are_byte_strings_compared_by_length(void **state)
{
    (void)state;
    strmap m;
    strmap_init(&m);
    int v[4];
    static const char bytes[] = "a\0b";
    assert_null(strmap_put(&m, bytes, 0, &v[0])); /* the empty key */
    assert_null(strmap_put(&m, bytes, 1, &v[1])); /* "a" */
    assert_null(strmap_put(&m, bytes, 2, &v[2])); /* "a\0" */
    assert_null(strmap_put(&m, bytes, 3, &v[3])); /* "a\0b" */
    assert_int_equal(m.count, 4);
    for (size_t len = 0; len < 4; len++)
        assert_ptr_equal(strmap_get(&m, "a\0b", len), &v[len]);
    assert_null(strmap_get(&m, "a\0c", 3));
    assert_ptr_equal(strmap_remove(&m, "a\0", 2), &v[2]);
    assert_null(strmap_get(&m, "a\0", 2));
    assert_ptr_equal(strmap_get(&m, "a\0b", 3), &v[3]);
    assert_ptr_equal(strmap_get(&m, "", 0), &v[0]);
    check_invariants(&m);
    strmap_free(&m);
}

/* A value may be NULL; get then cannot tell it from absence, but the entry
 * counts and can be removed. */
static void null_values_are_stored(void **state)
{
    (void)state;
    strmap m;
    strmap_init(&m);
    assert_null(put_s(&m, "k", NULL));
    assert_int_equal(m.count, 1);
    assert_null(get_s(&m, "k"));
    assert_null(remove_s(&m, "k"));
    assert_int_equal(m.count, 0);
    strmap_free(&m);
}

#define MANY 10000

static void ten_thousand_keys_remove_half_in_random_order(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ull;
    static char keys[MANY][16];
    static int values[MANY];
    strmap m;
    strmap_init(&m);
    for (size_t i = 0; i < MANY; i++) {
        snprintf(keys[i], sizeof keys[i], "key-%zu", i);
        values[i] = (int)i;
        assert_null(put_s(&m, keys[i], &values[i]));
    }
    assert_int_equal(m.count, MANY);
    check_invariants(&m);
    for (size_t i = 0; i < MANY; i++)
        assert_ptr_equal(get_s(&m, keys[i]), &values[i]);

    size_t order[MANY];
    for (size_t i = 0; i < MANY; i++)
        order[i] = i;
    shuffle(order, MANY);
    static bool removed[MANY];
    memset(removed, 0, sizeof removed);
    for (size_t n = 0; n < MANY / 2; n++) {
        size_t k = order[n];
        assert_ptr_equal(remove_s(&m, keys[k]), &values[k]);
        removed[k] = true;
        if (n % 1000 == 0)
            check_invariants(&m);
    }
    assert_int_equal(m.count, MANY / 2);
    check_invariants(&m);
    for (size_t i = 0; i < MANY; i++) {
        if (removed[i])
            assert_null(get_s(&m, keys[i]));
        else
            assert_ptr_equal(get_s(&m, keys[i]), &values[i]);
    }
    /* removing again finds nothing */
    for (size_t n = 0; n < MANY / 2; n++)
        assert_null(remove_s(&m, keys[order[n]]));
    assert_int_equal(m.count, MANY / 2);

    /* put the removed half back with other values, then empty the map */
    for (size_t n = 0; n < MANY / 2; n++)
        assert_null(put_s(&m, keys[order[n]], &values[(order[n] + 1) % MANY]));
    assert_int_equal(m.count, MANY);
    check_invariants(&m);
    for (size_t i = 0; i < MANY; i++)
        assert_ptr_equal(get_s(&m, keys[i]), removed[i] ? &values[(i + 1) % MANY] : &values[i]);
    shuffle(order, MANY);
    for (size_t n = 0; n < MANY; n++)
        assert_non_null(remove_s(&m, keys[order[n]]));
    assert_int_equal(m.count, 0);
    check_invariants(&m);
    strmap_free(&m);
}

static void iteration_visits_every_entry_once(void **state)
{
    (void)state;
    enum { N = 1000 };
    static char keys[N][12];
    static int seen[N];
    strmap m;
    strmap_init(&m);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        put_s(&m, keys[i], &seen[i]);
    }
    for (int i = 0; i < N; i += 3)
        remove_s(&m, keys[i]);
    memset(seen, 0, sizeof seen);
    size_t visited = 0;
    for (size_t i = 0; i < m.cap; i++) {
        if (!m.slots[i].key)
            continue;
        int *v = m.slots[i].value;
        (*v)++;
        visited++;
        /* the slot's key is the one stored with its value */
        size_t idx = (size_t)(v - seen);
        assert_int_equal(m.slots[i].key_len, strlen(keys[idx]));
        assert_memory_equal(m.slots[i].key, keys[idx], m.slots[i].key_len);
    }
    assert_int_equal(visited, m.count);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], i % 3 == 0 ? 0 : 1);
    strmap_free(&m);
}

/* Keys chosen so that their home slots in a table of 8 cluster at the end and
 * the probe chain wraps around to slot 0; every removal order of them must
 * keep the others reachable. */
static void removal_across_the_wrap_around_keeps_chains(void **state)
{
    (void)state;
    /* find three keys whose home is 7, two whose home is 6, one whose home is 0 */
    char keys[6][8];
    size_t want[6] = {7, 7, 6, 7, 0, 6};
    bool used[6] = {false};
    size_t found = 0;
    for (unsigned n = 0; found < 6 && n < 100000; n++) {
        char k[8];
        snprintf(k, sizeof k, "w%u", n);
        size_t home = fnv1a(k, strlen(k)) & 7;
        for (size_t i = 0; i < 6; i++) {
            if (!used[i] && want[i] == home) {
                memcpy(keys[i], k, sizeof k);
                used[i] = true;
                found++;
                break;
            }
        }
    }
    assert_int_equal(found, 6);

    /* every permutation of removal order of all six (720) */
    size_t perm[6] = {0, 1, 2, 3, 4, 5};
    int values[6];
    for (;;) {
        strmap m;
        strmap_init(&m);
        for (size_t i = 0; i < 6; i++)
            put_s(&m, keys[i], &values[i]);
        assert_int_equal(m.cap, 8); /* six entries still fit a table of 8 */
        check_invariants(&m);
        for (size_t r = 0; r < 6; r++) {
            assert_ptr_equal(remove_s(&m, keys[perm[r]]), &values[perm[r]]);
            check_invariants(&m);
            for (size_t s = r + 1; s < 6; s++)
                assert_ptr_equal(get_s(&m, keys[perm[s]]), &values[perm[s]]);
            for (size_t s = 0; s <= r; s++)
                assert_null(get_s(&m, keys[perm[s]]));
        }
        strmap_free(&m);

        /* next permutation (lexicographic) */
        int i = 4;
        while (i >= 0 && perm[i] > perm[i + 1])
            i--;
        if (i < 0)
            break;
        int j = 5;
        while (perm[j] < perm[i])
            j--;
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        for (int a = i + 1, b = 5; a < b; a++, b--) {
            t = perm[a];
            perm[a] = perm[b];
            perm[b] = t;
        }
    }
}

/* Random puts, replaces, removes and lookups on a small key space, checked
 * after every step against an array model. Small tables and long chains make
 * wrap-around and backward shifts frequent. */
static void random_operations_match_a_model(void **state)
{
    (void)state;
    rng_state = 0x2545f4914f6cdd1dull;
    enum { KEYS = 48, STEPS = 200000 };
    static char keys[KEYS][8];
    int values[KEYS][2];
    int *model[KEYS];
    for (size_t i = 0; i < KEYS; i++) {
        snprintf(keys[i], sizeof keys[i], "m%zu", i);
        model[i] = NULL;
    }
    strmap m;
    strmap_init(&m);
    size_t count = 0;
    for (size_t step = 0; step < STEPS; step++) {
        size_t k = rng() % KEYS;
        uint32_t op = rng() % 8;
        if (op < 4) {
            int *v = &values[k][rng() % 2];
            assert_ptr_equal(put_s(&m, keys[k], v), model[k]);
            if (!model[k])
                count++;
            model[k] = v;
        } else if (op < 7) {
            assert_ptr_equal(remove_s(&m, keys[k]), model[k]);
            if (model[k])
                count--;
            model[k] = NULL;
        } else {
            assert_ptr_equal(get_s(&m, keys[k]), model[k]);
        }
        assert_int_equal(m.count, count);
        if (step % 97 == 0) {
            check_invariants(&m);
            for (size_t i = 0; i < KEYS; i++)
                assert_ptr_equal(get_s(&m, keys[i]), model[i]);
        }
    }
    check_invariants(&m);
    strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_map_finds_and_removes_nothing),
        cmocka_unit_test(put_get_replace_remove),
        cmocka_unit_test(keys_are_byte_strings_compared_by_length),
        cmocka_unit_test(null_values_are_stored),
        cmocka_unit_test(ten_thousand_keys_remove_half_in_random_order),
        cmocka_unit_test(iteration_visits_every_entry_once),
        cmocka_unit_test(removal_across_the_wrap_around_keeps_chains),
        cmocka_unit_test(random_operations_match_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

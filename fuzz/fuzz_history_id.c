/* libFuzzer target for event ids (history/history_id.c), which clients send
 * as "since" and REST callers as after/before. Checks the contract besides
 * crashes: an id that parses formats back to the same bytes (one form per
 * id), and checking
 * it against a channel agrees with its tag. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "history/history_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    history_id id;
    if (history_id_parse(s, size, &id) == NULL) {
        char again[HISTORY_ID_MAX + 1];
        size_t n = history_id_format(again, id.epoch, id.tag, id.seq);
        if (n != size || memcmp(again, s, size) != 0) /* one form per id */
            abort();
        bool mine = id.tag == history_tag("app", "chat", 4);
        if ((history_id_check(s, size, "app", "chat", 4, &id) == NULL) != mine)
            abort();
    } else if (history_id_check(s, size, "app", "chat", 4, &id) == NULL) {
        abort();
    }
    return 0;
}

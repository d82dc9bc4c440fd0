/* libFuzzer target for X-Forwarded-For values and trusted_proxies lists
 * (util/cidr): the first line of the input is a network list, the rest a
 * header value. Checks the contract besides crashes: a found client is never
 * a trusted address, and a list that parses can be parsed again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/cidr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t list_len = nl ? (size_t)(nl - s) : size;
    char *list = malloc(list_len + 1);
    if (!list)
        abort();
    memcpy(list, s, list_len);
    list[list_len] = '\0';
    cidr_list trusted = {0};
    if (strlen(list) == list_len && cidr_list_parse(list, &trusted)) {
        if (!cidr_list_parse(list, NULL))
            abort();
    }
    const char *value = nl ? nl + 1 : s + size;
    size_t value_len = nl ? size - list_len - 1 : 0;
    struct sockaddr_storage client;
    int r = cidr_forwarded_client(&trusted, value, value_len, &client);
    if (r == 1 && cidr_list_contains(&trusted, (struct sockaddr *)&client))
        abort();
    if (r < -1 || r > 1)
        abort();
    cidr_list_free(&trusted);
    free(list);
    return 0;
}

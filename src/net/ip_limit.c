#include "net/ip_limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/strmap.h"
#include "util/xalloc.h"

#define KEY_LEN 17 /* family byte + up to 16 address bytes */

struct ip_entry {
    uint32_t count;
    uint8_t key_len;
    char key[KEY_LEN];
};

struct ip_limit {
    pthread_mutex_t lock;
    strmap entries; /* key → ip_entry */
    uint32_t max_per_ip;
};

ip_limit *ip_limit_new(uint32_t max_per_ip)
{
    ip_limit *l = xcalloc(1, sizeof(*l));
    pthread_mutex_init(&l->lock, NULL);
    strmap_init(&l->entries);
    l->max_per_ip = max_per_ip;
    return l;
}

void ip_limit_free(ip_limit *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->entries.cap; i++)
        if (l->entries.slots[i].key)
            free(l->entries.slots[i].value);
    strmap_free(&l->entries);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static size_t address_key(const struct sockaddr *sa, char *key)
{
    if (sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 5;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key[0] = 4;
            memcpy(key + 1, a->s6_addr + 12, 4);
            return 5;
        }
        key[0] = 6;
        memcpy(key + 1, a->s6_addr, 16);
        return 17;
    }
    key[0] = 0; /* another family (unix socket): one shared bucket */
    return 1;
}

ip_entry *ip_limit_acquire(ip_limit *l, const struct sockaddr *sa)
{
    char key[KEY_LEN];
    size_t len = address_key(sa, key);
    pthread_mutex_lock(&l->lock);
    ip_entry *e = strmap_get(&l->entries, key, len);
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        memcpy(e->key, key, len);
        e->key_len = (uint8_t)len;
        strmap_put(&l->entries, e->key, len, e);
    }
    if (e->count >= l->max_per_ip)
        e = NULL;
    else
        e->count++;
    pthread_mutex_unlock(&l->lock);
    return e;
}

void ip_limit_release(ip_limit *l, ip_entry *e)
{
    pthread_mutex_lock(&l->lock);
    if (--e->count == 0) {
        strmap_remove(&l->entries, e->key, e->key_len);
        free(e);
    }
    pthread_mutex_unlock(&l->lock);
}

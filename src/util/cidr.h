/* cidr — lists of IP networks ("10.0.0.0/8, ::1, 192.168.1.7"), as used by
 * trusted_proxies. Addresses are parsed by inet_pton; only the prefix
 * length and the list separators are read here. */
#ifndef HARK_UTIL_CIDR_H
#define HARK_UTIL_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct cidr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bits;   /* prefix length */
    uint8_t addr[16];
} cidr;

typedef struct cidr_list {
    cidr *items;
    size_t count;
} cidr_list;

/* Parses a comma- or space-separated list; "" is the empty list. Returns
 * false (list untouched) on the first entry that is not an address or
 * address/prefix. Pass out = NULL to validate only. */
bool cidr_list_parse(const char *text, cidr_list *out);
void cidr_list_free(cidr_list *l);

/* Does any network of l hold the address? An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) also matches IPv4 networks. */
bool cidr_list_contains(const cidr_list *l, const struct sockaddr *sa);

/* Parses one textual address (no prefix) into sockaddr storage; false if it
 * is not an IPv4 or IPv6 address. */
bool cidr_parse_addr(const char *text, size_t len, struct sockaddr_storage *out);

/* The client behind trusted proxies, from one X-Forwarded-For value
 * ("client, proxy1, proxy2"): the right-most address not in trusted.
 * Returns 1 with it in out, 0 when every entry is trusted (look at an
 * earlier header line), -1 on an entry that is not an address (nothing
 * further left can be believed). */
int cidr_forwarded_client(const cidr_list *trusted, const char *value, size_t len,
                          struct sockaddr_storage *out);

#endif

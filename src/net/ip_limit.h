/* ip_limit — counts connections per client address, across workers, for
 * max_connections_per_ip. Shared by every worker behind one mutex; it is
 * only touched when a counted connection opens or closes. */
#ifndef HARK_NET_IP_LIMIT_H
#define HARK_NET_IP_LIMIT_H

#include <stdint.h>
#include <sys/socket.h>

typedef struct ip_limit ip_limit;
typedef struct ip_entry ip_entry;

ip_limit *ip_limit_new(uint32_t max_per_ip);
void ip_limit_free(ip_limit *l);

/* Counts one more connection from sa (an IPv4-mapped IPv6 address counts as
 * its IPv4 address). Returns the entry to release later, or NULL when the
 * address already holds max_per_ip connections (nothing is counted then). */
ip_entry *ip_limit_acquire(ip_limit *l, const struct sockaddr *sa);
void ip_limit_release(ip_limit *l, ip_entry *e);

#endif

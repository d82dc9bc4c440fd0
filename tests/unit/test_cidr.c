/* cidr: trusted_proxies lists — parsing (IPv4, IPv6, prefixes, separators,
 * refusals) and membership, IPv4-mapped IPv6 addresses included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "util/cidr.h"

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    assert_true(cidr_parse_addr(text, strlen(text), &ss));
    return ss;
}

static bool holds(const cidr_list *l, const char *text)
{
    struct sockaddr_storage ss = addr(text);
    return cidr_list_contains(l, (struct sockaddr *)&ss);
}

static void test_parse_and_contains(void **state)
{
    (void)state;
    cidr_list l;
    assert_true(cidr_list_parse("10.0.0.0/8, 192.168.1.7 ::1,2001:db8::/32", &l));
    assert_int_equal(l.count, 4);
    assert_true(holds(&l, "10.1.2.3"));
    assert_true(holds(&l, "192.168.1.7"));
    assert_false(holds(&l, "192.168.1.8"));
    assert_false(holds(&l, "11.0.0.1"));
    assert_true(holds(&l, "::1"));
    assert_true(holds(&l, "2001:db8:ffff::1"));
    assert_false(holds(&l, "2001:db9::1"));
    assert_true(holds(&l, "::ffff:10.9.9.9")); /* IPv4-mapped matches IPv4 networks */
    assert_false(holds(&l, "::ffff:11.9.9.9"));
    cidr_list_free(&l);
}

static void test_odd_prefixes(void **state)
{
    (void)state;
    cidr_list l;
    assert_true(cidr_list_parse("0.0.0.0/0", &l));
    assert_true(holds(&l, "203.0.113.1"));
    assert_false(holds(&l, "::2")); /* an IPv4 network holds no IPv6 address */
    cidr_list_free(&l);
    assert_true(cidr_list_parse("172.16.0.0/12", &l));
    assert_true(holds(&l, "172.31.255.255"));
    assert_false(holds(&l, "172.32.0.0"));
    cidr_list_free(&l);
    assert_true(cidr_list_parse("", &l));
    assert_int_equal(l.count, 0);
    assert_false(holds(&l, "127.0.0.1"));
    cidr_list_free(&l);
}

static void test_refused(void **state)
{
    (void)state;
    const char *bad[] = {"10.0.0.0/33", "::1/129",       "example.com", "10.0.0.1/",
                         "10.0.0.1/x",  "10.0.0.1/0008", "1.2.3",       "10.0.0.1,,nope"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(cidr_list_parse(bad[i], NULL));
    struct sockaddr_storage ss;
    assert_false(cidr_parse_addr("10.0.0.1/8", 10, &ss));
    assert_false(cidr_parse_addr("", 0, &ss));
}

static int forwarded(const char *trusted_text, const char *value, char *out, size_t cap)
{
    cidr_list l;
    assert_true(cidr_list_parse(trusted_text, &l));
    struct sockaddr_storage ss;
    int r = cidr_forwarded_client(&l, value, strlen(value), &ss);
    if (r == 1) {
        const void *a = ss.ss_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        assert_non_null(inet_ntop(ss.ss_family, a, out, (socklen_t)cap));
    }
    cidr_list_free(&l);
    return r;
}

static void test_forwarded_client(void **state)
{
    (void)state;
    char ip[64];
    /* right-most untrusted entry wins; trusted hops are skipped */
    assert_int_equal(forwarded("10.0.0.0/8", "203.0.113.5, 10.0.0.2, 10.0.0.1", ip, sizeof ip), 1);
    assert_string_equal(ip, "203.0.113.5");
    /* a forged left part is ignored: the proxy appended the real peer */
    assert_int_equal(forwarded("10.0.0.1", "1.2.3.4, 198.51.100.9, 10.0.0.1", ip, sizeof ip), 1);
    assert_string_equal(ip, "198.51.100.9");
    assert_int_equal(forwarded("::1", " 2001:db8::7 ,::1", ip, sizeof ip), 1);
    assert_string_equal(ip, "2001:db8::7");
    /* all trusted: look further (an earlier header line) */
    assert_int_equal(forwarded("10.0.0.0/8", "10.1.1.1,10.2.2.2", ip, sizeof ip), 0);
    assert_int_equal(forwarded("10.0.0.0/8", "", ip, sizeof ip), 0);
    /* garbage stops the walk */
    assert_int_equal(forwarded("10.0.0.0/8", "203.0.113.5, unknown", ip, sizeof ip), -1);
    assert_int_equal(forwarded("10.0.0.0/8", "203.0.113.5,, 10.0.0.1", ip, sizeof ip), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_contains),
        cmocka_unit_test(test_odd_prefixes),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_forwarded_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

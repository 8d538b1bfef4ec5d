/* outbound_address.c - the outbound address rule (see outbound.h, Safety):
 * which numeric addresses the client may open a socket to. One table of
 * ranges, first match wins; the client applies it after DNS to every
 * address curl would connect to, and webhooks_check_url to a literal
 * address in a URL as it is saved. */
#include "runtime/outbound.h"
#include "runtime/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

typedef enum {
    RANGE_NEVER,    /* refused whatever the options say */
    RANGE_LOOPBACK, /* refused unless allow_loopback */
    RANGE_PRIVATE,  /* refused unless allow_private */
} range_kind_t;

typedef struct {
    int family;         /* AF_INET or AF_INET6 */
    const char *prefix; /* the network, as text */
    int bits;           /* its prefix length */
    range_kind_t kind;  /* which option, if any, lets it through */
    const char *name;   /* what it is, for the message */
} range_t;

/* The rule is this table. First match wins, so a special address inside a
 * wider range (the Alibaba metadata address in CGNAT space, the AWS IPv6
 * metadata address in unique-local space) comes before the range. */
static const range_t ranges[] = {
    {AF_INET, "0.0.0.0", 8, RANGE_NEVER, "\"this network\""},
    {AF_INET, "127.0.0.0", 8, RANGE_LOOPBACK, "loopback"},
    {AF_INET, "169.254.0.0", 16, RANGE_NEVER, "link-local (where cloud metadata lives)"},
    {AF_INET, "100.100.100.200", 32, RANGE_NEVER, "a cloud metadata address"},
    {AF_INET, "100.64.0.0", 10, RANGE_PRIVATE, "shared CGNAT space"},
    {AF_INET, "10.0.0.0", 8, RANGE_PRIVATE, "private"},
    {AF_INET, "172.16.0.0", 12, RANGE_PRIVATE, "private"},
    {AF_INET, "192.168.0.0", 16, RANGE_PRIVATE, "private"},
    {AF_INET, "224.0.0.0", 4, RANGE_NEVER, "multicast"},
    {AF_INET, "255.255.255.255", 32, RANGE_NEVER, "broadcast"},
    {AF_INET, "240.0.0.0", 4, RANGE_NEVER, "reserved"},
    {AF_INET6, "::1", 128, RANGE_LOOPBACK, "loopback"},
    {AF_INET6, "::", 96, RANGE_NEVER, "unspecified or IPv4-compatible"},
    {AF_INET6, "fe80::", 10, RANGE_NEVER, "link-local"},
    {AF_INET6, "fec0::", 10, RANGE_PRIVATE, "site-local"},
    {AF_INET6, "fd00:ec2::254", 128, RANGE_NEVER, "a cloud metadata address"},
    {AF_INET6, "fc00::", 7, RANGE_PRIVATE, "unique-local (private)"},
    {AF_INET6, "ff00::", 8, RANGE_NEVER, "multicast"},
};

/* IPv6 prefixes that carry an IPv4 address in their last 4 bytes and reach
 * it: IPv4-mapped (::ffff:0:0/96, which a dual-stack socket connects to
 * the IPv4 host) and the NAT64 well-known prefix (64:ff9b::/96). */
static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const unsigned char v4_nat64[12] = {0, 0x64, 0xff, 0x9b};

static bool in_prefix(const unsigned char *a, const unsigned char *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ net[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

int outbound_check_address(const char *ip, bool allow_loopback, bool allow_private, char *why,
                           size_t cap)
{
    unsigned char a[16], net[16];
    int family = AF_INET;
    if (why && cap)
        why[0] = 0;
    if (!ip)
        return fenta_fail(why, cap, FENTA_EINVAL, "no address given");
    if (inet_pton(AF_INET, ip, a) != 1) {
        if (inet_pton(AF_INET6, ip, a) != 1)
            return fenta_fail(why, cap, FENTA_EINVAL, "%s is not a numeric IP address", ip);
        family = AF_INET6;
        if (memcmp(a, v4_mapped, 12) == 0 || memcmp(a, v4_nat64, 12) == 0) {
            memmove(a, a + 12, 4);
            family = AF_INET;
        }
    }
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const range_t *r = &ranges[i];
        if (r->family != family || inet_pton(r->family, r->prefix, net) != 1 ||
            !in_prefix(a, net, r->bits))
            continue;
        if ((r->kind == RANGE_LOOPBACK && allow_loopback) ||
            (r->kind == RANGE_PRIVATE && allow_private))
            return 0;
        return fenta_fail(why, cap, FENTA_EDENIED, "address %s is %s (%s/%d); %s allowed", ip,
                          r->name, r->prefix, r->bits, r->kind == RANGE_NEVER ? "never" : "not");
    }
    return 0;
}

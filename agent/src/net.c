/* banger.ip=ADDR/PREFIX,GW,IFACE for kernels booted without banger's initramfs (e.g. a Firecracker kernel
 * with virtio built in). The initramfs applies the same setting before switch_root; when it did, the address
 * is already on IFACE and we leave everything as it is. No userspace tools are assumed in the guest: links go
 * up with SIOCSIFFLAGS, the address and the default route are added over rtnetlink. A failure is logged and
 * reported by `health` (g_network), never fatal: exec must keep working on a guest without network. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"

/* The rtnetlink ABI we use. musl ships no kernel headers (like AF_VSOCK in transport.c), and these values are
 * fixed by the kernel's uapi (linux/netlink.h, linux/rtnetlink.h). */
struct nlmsghdr {
  uint32_t nlmsg_len;
  uint16_t nlmsg_type, nlmsg_flags;
  uint32_t nlmsg_seq, nlmsg_pid;
};
struct nlmsgerr {
  int error;
  struct nlmsghdr msg;
};
struct sockaddr_nl_ {
  sa_family_t nl_family;
  unsigned short nl_pad;
  uint32_t nl_pid, nl_groups;
};
struct ifaddrmsg {
  uint8_t ifa_family, ifa_prefixlen, ifa_flags, ifa_scope;
  uint32_t ifa_index;
};
struct rtmsg {
  uint8_t rtm_family, rtm_dst_len, rtm_src_len, rtm_tos, rtm_table, rtm_protocol, rtm_scope, rtm_type;
  uint32_t rtm_flags;
};
struct rtattr {
  uint16_t rta_len, rta_type;
};
#define NETLINK_ROUTE 0
#define NLM_F_REQUEST 0x1
#define NLM_F_ACK 0x4
#define NLM_F_EXCL 0x200
#define NLM_F_CREATE 0x400
#define NLMSG_ERROR 2
#define RTM_NEWADDR 20
#define RTM_NEWROUTE 24
#define IFA_ADDRESS 1
#define IFA_LOCAL 2
#define RTA_OIF 4
#define RTA_GATEWAY 5
#define RT_TABLE_MAIN 254
#define RTPROT_BOOT 3
#define RT_SCOPE_UNIVERSE 0
#define RTN_UNICAST 1
#define NL_ALIGN(n) (((n) + 3u) & ~3u)
#define NL_HDRLEN NL_ALIGN(sizeof(struct nlmsghdr))
#define NL_DATA(h) ((void *)((char *)(h) + NL_HDRLEN))
#define RTA_HDRLEN NL_ALIGN(sizeof(struct rtattr))

char g_network[160] = "none";

#define IFACE_WAIT_MS 5000

struct ip_spec {
  int family;
  unsigned char addr[16], gw[16];
  int has_gw;
  unsigned prefix;
  char iface[IF_NAMESIZE];
};

static void set_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_status(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_network, sizeof g_network, fmt, ap);
  va_end(ap);
  logmsg("network: %s", g_network);
}

/* "ADDR/PREFIX,GW,IFACE": GW may be empty, IFACE defaults to eth0 (the initramfs reads it the same way). */
static int parse_spec(const char *s, struct ip_spec *out) {
  char buf[128], *gw = NULL, *iface = NULL;
  if (strlen(s) >= sizeof buf) return -1;
  strcpy(buf, s);
  char *comma = strchr(buf, ',');
  if (comma) {
    *comma = 0;
    gw = comma + 1;
    if ((comma = strchr(gw, ','))) {
      *comma = 0;
      iface = comma + 1;
    }
  }
  char *slash = strchr(buf, '/');
  if (!slash) return -1;
  *slash = 0;
  char *end;
  unsigned long prefix = strtoul(slash + 1, &end, 10);
  memset(out, 0, sizeof *out);
  out->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
  if (*end || end == slash + 1 || prefix > (out->family == AF_INET ? 32u : 128u)) return -1;
  out->prefix = (unsigned)prefix;
  if (inet_pton(out->family, buf, out->addr) != 1) return -1;
  if (gw && *gw) {
    if (inet_pton(out->family, gw, out->gw) != 1) return -1;
    out->has_gw = 1;
  }
  if (!iface || !*iface) iface = "eth0";
  if (strlen(iface) >= IF_NAMESIZE || strchr(iface, '/')) return -1;
  strcpy(out->iface, iface);
  return 0;
}

/* Interfaces appear asynchronously after their driver probes; poll for a while rather than fail at once. */
static unsigned wait_for_iface(const char *name) {
  for (int waited = 0;; waited += 100) {
    unsigned idx = if_nametoindex(name);
    if (idx || waited >= IFACE_WAIT_MS) return idx;
    nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
  }
}

static int has_address(const struct ip_spec *sp) {
  struct ifaddrs *list, *i;
  if (getifaddrs(&list) < 0) return 0;
  int found = 0;
  size_t len = sp->family == AF_INET ? 4 : 16;
  for (i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != sp->family || strcmp(i->ifa_name, sp->iface)) continue;
    const void *a = sp->family == AF_INET ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                                          : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
    found = !memcmp(a, sp->addr, len);
  }
  freeifaddrs(list);
  return found;
}

static int link_up(const char *name) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  int rc = 0;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) rc = -errno;
  else if (!(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) rc = -errno;
  }
  close(fd);
  return rc;
}

/* One rtnetlink request: a header, a fixed part, then attributes appended by nl_attr. */
struct nl_req {
  struct nlmsghdr h;
  char body[256];
};

static void nl_attr(struct nl_req *r, uint16_t type, const void *data, size_t n) {
  struct rtattr *a = (struct rtattr *)((char *)&r->h + NL_ALIGN(r->h.nlmsg_len));
  a->rta_type = type;
  a->rta_len = (uint16_t)(RTA_HDRLEN + n);
  memcpy((char *)a + RTA_HDRLEN, data, n);
  r->h.nlmsg_len = NL_ALIGN(r->h.nlmsg_len) + NL_ALIGN(a->rta_len);
}

/* Sends the request and returns the kernel's answer: 0 or -errno. */
static int nl_talk(struct nl_req *r) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  struct sockaddr_nl_ kernel = {.nl_family = AF_NETLINK};
  r->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  r->h.nlmsg_seq = 1;
  int rc = -EIO;
  if (sendto(fd, r, r->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) rc = -errno;
  else {
    /* The ack echoes our request after the error code; it fits, since requests are small. */
    uint32_t reply[512];
    ssize_t n = recv(fd, reply, sizeof reply, 0);
    struct nlmsghdr *h = (struct nlmsghdr *)reply;
    if (n < 0) rc = -errno;
    else if ((size_t)n >= NL_HDRLEN + sizeof(int) && h->nlmsg_type == NLMSG_ERROR)
      rc = ((struct nlmsgerr *)NL_DATA(h))->error;
  }
  close(fd);
  return rc;
}

static int add_address(const struct ip_spec *sp, unsigned ifindex) {
  struct nl_req r = {0};
  struct ifaddrmsg *m = NL_DATA(&r.h);
  r.h.nlmsg_len = NL_HDRLEN + sizeof *m;
  r.h.nlmsg_type = RTM_NEWADDR;
  r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  m->ifa_family = (unsigned char)sp->family;
  m->ifa_prefixlen = (unsigned char)sp->prefix;
  m->ifa_index = ifindex;
  size_t len = sp->family == AF_INET ? 4 : 16;
  nl_attr(&r, IFA_LOCAL, sp->addr, len);
  nl_attr(&r, IFA_ADDRESS, sp->addr, len);
  return nl_talk(&r);
}

static int add_default_route(const struct ip_spec *sp, unsigned ifindex) {
  struct nl_req r = {0};
  struct rtmsg *m = NL_DATA(&r.h);
  r.h.nlmsg_len = NL_HDRLEN + sizeof *m;
  r.h.nlmsg_type = RTM_NEWROUTE;
  r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  m->rtm_family = (unsigned char)sp->family;
  m->rtm_table = RT_TABLE_MAIN;
  m->rtm_protocol = RTPROT_BOOT;
  m->rtm_scope = RT_SCOPE_UNIVERSE;
  m->rtm_type = RTN_UNICAST;
  nl_attr(&r, RTA_GATEWAY, sp->gw, sp->family == AF_INET ? 4 : 16);
  nl_attr(&r, RTA_OIF, &ifindex, sizeof ifindex);
  return nl_talk(&r);
}

void apply_network(const char *spec) {
  struct ip_spec sp;
  if (parse_spec(spec, &sp) < 0) {
    set_status("error: banger.ip=%.100s is not ADDR/PREFIX[,GW[,IFACE]]", spec);
    return;
  }
  unsigned ifindex = wait_for_iface(sp.iface);
  if (!ifindex) {
    set_status("error: interface %s not found", sp.iface);
    return;
  }
  if (has_address(&sp)) {
    set_status("already");
    return;
  }
  int rc;
  if ((rc = link_up("lo")) < 0) logmsg("network: bring lo up: %s", strerror(-rc));
  if ((rc = link_up(sp.iface)) < 0) set_status("error: bring %s up: %s", sp.iface, strerror(-rc));
  else if ((rc = add_address(&sp, ifindex)) < 0) set_status("error: add address on %s: %s", sp.iface, strerror(-rc));
  /* EEXIST: a default route is already there (the image configured one); keep it. */
  else if (sp.has_gw && (rc = add_default_route(&sp, ifindex)) < 0 && rc != -EEXIST)
    set_status("error: add default route: %s", strerror(-rc));
  else set_status("configured");
}

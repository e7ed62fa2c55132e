/* health (version, uptime, boot phases), ports (/proc/net), and the per-VM settings from /proc/cmdline. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"

struct boot_phases g_phases;
int g_is_pid1;

static void phase(buf_t *b, const char *name, int64_t v, int *first) {
  if (!v) return;
  buf_addf(b, "%s\"%s\":%lld", *first ? "" : ",", name, (long long)v);
  *first = 0;
}

/* MemTotal and MemAvailable of /proc/meminfo in KiB (0 when missing: a kernel before 3.14 has no MemAvailable). */
static void meminfo(long long *total_kib, long long *avail_kib) {
  *total_kib = *avail_kib = 0;
  FILE *f = fopen("/proc/meminfo", "re");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    long long v;
    if (sscanf(line, "MemTotal: %lld kB", &v) == 1) *total_kib = v;
    else if (sscanf(line, "MemAvailable: %lld kB", &v) == 1) *avail_kib = v;
  }
  fclose(f);
}

void health_reply(conn_t *c, uint32_t id) {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  buf_t b = {0};
  buf_addf(&b, "{\"ok\":true,\"version\":\"%s\",\"uptimeMs\":%lld,\"pid\":%d,\"pid1\":%s,", AGENT_VERSION,
           (long long)now_ms(), (int)getpid(), g_is_pid1 ? "true" : "false");
  json_kv_str(&b, "hostname", host, 0);
  json_kv_str(&b, "network", g_network, 1);
  buf_add(&b, ",\"bootPhasesMs\":{", 17);
  int first = 1;
  phase(&b, "shimStart", g_phases.shim_start, &first);
  phase(&b, "agentStart", g_phases.agent_start, &first);
  phase(&b, "configApplied", g_phases.config_applied, &first);
  phase(&b, "transportReady", g_phases.transport_ready, &first);
  long long mem_total, mem_avail;
  meminfo(&mem_total, &mem_avail);
  buf_addf(&b, "},\"memory\":{\"totalKiB\":%lld,\"availableKiB\":%lld}}", mem_total, mem_avail);
  send_json(c, F_REPLY, id, &b);
}

/* Lines of /proc/net/{tcp,udp}{,6}: "sl local_address rem_address st ... inode". Addresses are the kernel's
 * in-memory words printed as hex, so each 32-bit word is in host (little-endian here) byte order. */
static void ports_from(buf_t *b, const char *file, const char *proto, int v6, int *first) {
  FILE *f = fopen(file, "re");
  if (!f) return;
  char line[512];
  if (!fgets(line, sizeof line, f)) goto done;
  while (fgets(line, sizeof line, f)) {
    char local[64], remote[64];
    unsigned st;
    unsigned long inode;
    int n = sscanf(line, "%*d: %63s %63s %x %*s %*s %*s %*s %*s %lu", local, remote, &st, &inode);
    if (n != 4) continue;
    int is_tcp = proto[0] == 't';
    if (is_tcp && st != 0x0A) continue; /* TCP_LISTEN */
    if (!is_tcp && st != 0x07) continue; /* unconnected UDP socket */
    char *colon = strchr(local, ':');
    if (!colon) continue;
    unsigned port = (unsigned)strtoul(colon + 1, NULL, 16);
    *colon = 0;
    unsigned char a[16];
    size_t words = v6 ? 4 : 1;
    if (strlen(local) != words * 8) continue;
    for (size_t w = 0; w < words; w++) {
      char hex[9];
      memcpy(hex, local + w * 8, 8);
      hex[8] = 0;
      uint32_t v = (uint32_t)strtoul(hex, NULL, 16);
      memcpy(a + w * 4, &v, 4);
    }
    char addr[64];
    if (!v6) snprintf(addr, sizeof addr, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    else {
      size_t o = 0;
      for (int k = 0; k < 16; k += 2) o += (size_t)snprintf(addr + o, sizeof addr - o, "%s%x", k ? ":" : "", a[k] << 8 | a[k + 1]);
    }
    buf_addf(b, "%s{\"protocol\":\"%s\",\"address\":\"%s\",\"port\":%u,\"inode\":%lu}", *first ? "" : ",", proto, addr,
             port, inode);
    *first = 0;
  }
done:
  fclose(f);
}

void ports_reply(conn_t *c, uint32_t id) {
  buf_t b = {0};
  buf_add(&b, "{\"ok\":true,\"ports\":[", 20);
  int first = 1;
  ports_from(&b, "/proc/net/tcp", "tcp", 0, &first);
  ports_from(&b, "/proc/net/tcp6", "tcp6", 1, &first);
  ports_from(&b, "/proc/net/udp", "udp", 0, &first);
  ports_from(&b, "/proc/net/udp6", "udp6", 1, &first);
  buf_add(&b, "]}", 2);
  send_json(c, F_REPLY, id, &b);
}

/* The value of KEY=VALUE on a kernel command line (malloc'ed), or NULL. */
char *cmdline_value(const char *cmdline, const char *key) {
  size_t kl = strlen(key);
  const char *p = cmdline;
  while (*p) {
    while (*p == ' ' || *p == '\n') p++;
    const char *end = p + strcspn(p, " \n");
    if ((size_t)(end - p) > kl && !strncmp(p, key, kl) && p[kl] == '=')
      return strndup(p + kl + 1, (size_t)(end - p - kl - 1));
    p = end;
  }
  return NULL;
}

static int write_atomic(const char *path, const char *content) {
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s.banger-tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t n = strlen(content);
  int ok = write(fd, content, n) == (ssize_t)n && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp, path) < 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

static int valid_hostname(const char *h) {
  size_t n = strlen(h);
  if (!n || n > 63 || h[0] == '-' || h[0] == '.') return 0;
  for (size_t i = 0; i < n; i++)
    if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') || (h[i] >= '0' && h[i] <= '9') ||
          h[i] == '-' || h[i] == '.'))
      return 0;
  return 1;
}

static int valid_ip(const char *s) {
  if (!*s || strlen(s) > 45) return 0;
  for (; *s; s++)
    if (!strchr("0123456789abcdefABCDEF.:", *s)) return 0;
  return 1;
}

static void set_hostname(const char *root, const char *name) {
  char path[256];
  if (!valid_hostname(name)) {
    logmsg("ignoring invalid banger.hostname");
    return;
  }
  /* A test root (not "/") must not rename the machine the test runs on. */
  if (!*root && sethostname(name, strlen(name)) < 0) logmsg("sethostname: %s", strerror(errno));
  snprintf(path, sizeof path, "%s/etc/hostname", root);
  char line[80];
  snprintf(line, sizeof line, "%s\n", name);
  if (write_atomic(path, line) < 0) logmsg("cannot write %s: %s", path, strerror(errno));
  /* Append "127.0.1.1 NAME" to /etc/hosts unless the name is already there. */
  snprintf(path, sizeof path, "%s/etc/hosts", root);
  FILE *f = fopen(path, "re");
  char buf[512];
  while (f && fgets(buf, sizeof buf, f)) {
    for (char *tok = strtok(buf, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
      if (buf[0] != '#' && tok != buf && !strcmp(tok, name)) {
        fclose(f);
        return;
      }
  }
  if (f) fclose(f);
  f = fopen(path, "ae");
  if (!f) {
    logmsg("cannot update %s: %s", path, strerror(errno));
    return;
  }
  fprintf(f, "127.0.1.1\t%s\n", name);
  fclose(f);
}

static void set_dns(const char *root, char *list) {
  buf_t b = {0};
  buf_add(&b, "# written by banger-agent from banger.dns=\n", 43);
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
    if (valid_ip(tok)) buf_addf(&b, "nameserver %s\n", tok);
  buf_add(&b, "", 1);
  char path[256];
  snprintf(path, sizeof path, "%s/etc/resolv.conf", root);
  /* A dangling symlink (systemd-resolved's stub) is replaced by our file. */
  if (write_atomic(path, b.p) < 0) logmsg("cannot write %s: %s", path, strerror(errno));
  buf_free(&b);
}

void apply_cmdline_config(const char *cmdline_path, const char *root) {
  char cmdline[4096] = "";
  int fd = open(cmdline_path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
    cmdline[n > 0 ? n : 0] = 0;
    close(fd);
  }
  char *host = cmdline_value(cmdline, "banger.hostname");
  char *dns = cmdline_value(cmdline, "banger.dns");
  char *ip = cmdline_value(cmdline, "banger.ip");
  if (host) set_hostname(root, host);
  if (dns) set_dns(root, dns);
  /* Applied in the agent's network namespace even under a test ROOT: tests run the agent in a netns. */
  if (ip) apply_network(ip);
  free(host);
  free(dns);
  free(ip);
  g_phases.config_applied = now_ms();
}

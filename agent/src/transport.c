/* The ways in: AF_VSOCK (Firecracker hybrid vsock, QEMU vhost-vsock), a virtio-serial port found by name
 * under /sys (no udev needed), and a unix socket for running the agent on the host in tests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include "agent.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
/* linux/vm_sockets.h, which musl's include path lacks. */
struct sockaddr_vm_ {
  sa_family_t svm_family;
  unsigned short svm_reserved1;
  unsigned int svm_port;
  unsigned int svm_cid;
  unsigned char svm_zero[4];
};
#define VMADDR_CID_ANY_ (-1U)

int listen_vsock(unsigned port) {
  static int warned;
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (!warned++) logmsg("no vsock (%s); will retry", strerror(errno));
    return -1;
  }
  struct sockaddr_vm_ addr = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY_};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, SOMAXCONN) < 0) {
    if (!warned++) logmsg("vsock port %u: %s; will retry", port, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int listen_unix(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    logmsg("socket path too long: %s", path);
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  unlink(path);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, SOMAXCONN) < 0) {
    logmsg("cannot listen on %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

/* /sys/class/virtio-ports/vportNpM/name holds the port name; /dev/vportNpM is the device (made from
 * .../dev when devtmpfs has not created it). The port can be opened once, read-write. */
int open_serial_port(const char *name) {
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return -1;
  struct dirent *e;
  int fd = -1;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[300], buf[128];
    snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", e->d_name);
    FILE *f = fopen(p, "re");
    if (!f) continue;
    int match = fgets(buf, sizeof buf, f) && (buf[strcspn(buf, "\n")] = 0, !strcmp(buf, name));
    fclose(f);
    if (!match) continue;
    char dev[300];
    snprintf(dev, sizeof dev, "/dev/%s", e->d_name);
    if (access(dev, F_OK) < 0) {
      unsigned maj, min;
      snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/dev", e->d_name);
      f = fopen(p, "re");
      if (f && fscanf(f, "%u:%u", &maj, &min) == 2) mknod(dev, S_IFCHR | 0600, makedev(maj, min));
      if (f) fclose(f);
    }
    fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) logmsg("cannot open %s: %s", dev, strerror(errno));
    break;
  }
  closedir(d);
  return fd;
}

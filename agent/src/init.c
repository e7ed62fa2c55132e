/* The init shim (argv[0] banger-init, or PID 1): mounts the API filesystems, starts the agent, then execs
 * the image's own init when it has one; otherwise it stays PID 1, reaping zombies and serving the agent. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agent.h"

int agent_main(void);

static void mount_if_needed(const char *src, const char *target, const char *type, unsigned long flags,
                            const char *data) {
  mkdir(target, 0755);
  if (mount(src, target, type, flags, data) < 0 && errno != EBUSY)
    logmsg("mount %s on %s: %s", type, target, strerror(errno));
}

/* The image's init, unless it is missing or is this very binary (an image whose /sbin/init is us). */
static const char *find_real_init(const char *cmdline) {
  static char chosen[PATH_MAX];
  char *want = cmdline_value(cmdline, "banger.init");
  if (want && !strcmp(want, "none")) {
    free(want);
    return NULL;
  }
  const char *candidates[] = {want, "/sbin/init", "/lib/systemd/systemd", "/usr/lib/systemd/systemd"};
  char self[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  self[sl > 0 ? sl : 0] = 0;
  const char *found = NULL;
  for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
    if (!candidates[i]) continue;
    char real[PATH_MAX];
    if (!realpath(candidates[i], real) || access(real, X_OK) < 0) continue;
    if (!strcmp(real, self)) continue;
    snprintf(chosen, sizeof chosen, "%s", candidates[i]);
    found = chosen;
    break;
  }
  free(want);
  return found;
}

int init_shim_main(int argc, char **argv) {
  g_phases.shim_start = now_ms();
  if (getpid() == 1) {
    mount_if_needed("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
    mount_if_needed("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
    mount_if_needed("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    mount_if_needed("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
    mount_if_needed("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    mount_if_needed("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    /* stdio for PID 1 is the console; make sure fds 0-2 exist so children cannot inherit a random fd. */
    for (int fd = 0; fd < 3; fd++)
      if (fcntl(fd, F_GETFD) < 0) open(fd == 0 ? "/dev/null" : "/dev/console", fd == 0 ? O_RDONLY : O_WRONLY);
  }
  char cmdline[4096] = "";
  int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
    cmdline[n > 0 ? n : 0] = 0;
    close(fd);
  }
  const char *real = getpid() == 1 ? find_real_init(cmdline) : NULL;
  if (!real) {
    g_is_pid1 = getpid() == 1;
    logmsg("init shim: no other init to run, staying PID %d", (int)getpid());
    if (g_is_pid1) reboot(RB_DISABLE_CAD);
    int rc = agent_main();
    /* PID 1 must never exit (the kernel panics): keep reaping. */
    logmsg("agent loop ended (%d); reaping forever", rc);
    for (;;)
      if (wait(NULL) < 0 && errno == ECHILD) pause();
  }
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    _exit(agent_main());
  }
  if (pid < 0) logmsg("cannot start the agent: %s", strerror(errno));
  logmsg("init shim: agent started (pid %d), exec %s", (int)pid, real);
  argv[0] = (char *)real;
  execv(real, argv);
  logmsg("exec %s: %s; staying PID 1", real, strerror(errno));
  for (;;)
    if (wait(NULL) < 0 && errno == ECHILD) pause();
  (void)argc;
}

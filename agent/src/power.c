/* shutdown/reboot: sync first. Under another init we ask it (poweroff/reboot understand systemd, busybox
 * and OpenRC); as PID 1 we stop everything ourselves and call reboot(2). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

void power_action(int action) {
  logmsg("%s requested", action == 1 ? "poweroff" : "reboot");
  sync();
  if (getpid() != 1) {
    pid_t pid = fork();
    if (pid == 0) {
      const char *cmd = action == 1 ? "poweroff" : "reboot";
      char *const argv[] = {(char *)cmd, NULL};
      char *const envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
      extern char **environ;
      environ = (char **)envp;
      execvp(cmd, argv);
      _exit(127);
    }
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      pause_ms(30000); /* init is taking the machine down; it will stop us too */
    }
    logmsg("%s through init failed; calling reboot(2) directly", action == 1 ? "poweroff" : "reboot");
  } else {
    kill(-1, SIGTERM);
    pause_ms(1000);
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    sync();
    mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL);
  }
  sync();
  reboot(action == 1 ? RB_POWER_OFF : RB_AUTOBOOT);
  logmsg("reboot(2): %s", strerror(errno));
}

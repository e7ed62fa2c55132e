/* banger-agent entry point. Modes:
 *   banger-agent                      in the guest: vsock + virtio-serial, applies banger.* settings
 *   banger-init (or running as PID 1) the init shim (init.c)
 *   banger-agent --listen-unix PATH   on the host, for tests and benchmarks: one unix socket, nothing else */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "agent.h"
#include "loop.h"

int agent_main(void);

static const char *unix_path;
static const char *cmdline_path = "/proc/cmdline";
static const char *config_root = "";
static int no_config;

/* One agent per guest: systemd/OpenRC may start us after the init shim already did. */
static int take_lock(void) {
  const char *paths[] = {"/run/banger-agent.lock", "/tmp/banger-agent.lock"};
  for (size_t i = 0; i < 2; i++) {
    int fd = open(paths[i], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      close(fd);
      return errno == EWOULDBLOCK ? 1 : 0;
    }
    return 0; /* fd stays open (and locked) for the life of the process */
  }
  return 0;
}

int agent_main(void) {
  g_phases.agent_start = now_ms();
  g_opts.vsock_fd = g_opts.unix_fd = -1;
  if (unix_path) {
    g_opts.unix_fd = listen_unix(unix_path);
    if (g_opts.unix_fd < 0) return 1;
    g_phases.transport_ready = now_ms();
  } else {
    /* The shim's agent takes the lock too, so a systemd/OpenRC copy started later steps aside. */
    if (take_lock() == 1) {
      logmsg("another banger-agent is running; exiting");
      return 0;
    }
    g_opts.want_serial = g_opts.want_vsock = 1;
  }
  if (!no_config) apply_cmdline_config(cmdline_path, config_root);
  return run_loop();
}

int main(int argc, char **argv) {
  char *base = basename(argv[0]);
  if (!strcmp(base, "banger-init") || getpid() == 1) return init_shim_main(argc, argv);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--version")) {
      printf("banger-agent %s\n", AGENT_VERSION);
      return 0;
    } else if (!strcmp(argv[i], "--listen-unix") && i + 1 < argc) {
      unix_path = argv[++i];
      no_config = 1; /* never touch the host's own hostname or resolv.conf */
    } else if (!strcmp(argv[i], "--cmdline") && i + 2 < argc) {
      /* Tests: apply banger.* settings from FILE to the tree under ROOT. */
      cmdline_path = argv[++i];
      config_root = argv[++i];
      no_config = 0;
    } else {
      fprintf(stderr, "usage: banger-agent [--version] [--listen-unix PATH [--cmdline FILE ROOT]]\n");
      return 2;
    }
  }
  if (!unix_path && !strcmp(config_root, "") && getuid() != 0) logmsg("not root: exec as other users will fail");
  return agent_main();
}

/* exec: runs a command with pipes or a PTY, streams its output, reports its exit code or signal. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "agent.h"

static const struct {
  const char *name;
  int sig;
} signals[] = {
    {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},     {"SIGQUIT", SIGQUIT}, {"SIGILL", SIGILL},
    {"SIGTRAP", SIGTRAP}, {"SIGABRT", SIGABRT},   {"SIGBUS", SIGBUS},   {"SIGFPE", SIGFPE},
    {"SIGKILL", SIGKILL}, {"SIGUSR1", SIGUSR1},   {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2},
    {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM},   {"SIGTERM", SIGTERM}, {"SIGCHLD", SIGCHLD},
    {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP},   {"SIGTSTP", SIGTSTP}, {"SIGTTIN", SIGTTIN},
    {"SIGTTOU", SIGTTOU}, {"SIGURG", SIGURG},     {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ},
    {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH}, {"SIGSYS", SIGSYS},
};

int signal_by_name(const char *name) {
  if (!name) return -1;
  for (size_t i = 0; i < sizeof signals / sizeof *signals; i++)
    if (!strcmp(signals[i].name, name) || !strcmp(signals[i].name + 3, name)) return signals[i].sig;
  return -1;
}

const char *signal_name(int sig) {
  for (size_t i = 0; i < sizeof signals / sizeof *signals; i++)
    if (signals[i].sig == sig) return signals[i].name;
  return "SIGUNKNOWN";
}

struct ident {
  uid_t uid;
  gid_t gid;
  char name[64];
  char home[256];
  int set;
};

/* "name", "uid" or "uid:gid"; names come from the guest's /etc/passwd. */
static int resolve_user(const char *spec, struct ident *id, char *err, size_t errlen) {
  memset(id, 0, sizeof *id);
  strcpy(id->home, "/root");
  strcpy(id->name, "root");
  if (!spec || !*spec) return 0;
  id->set = 1;
  char *end;
  unsigned long uid = strtoul(spec, &end, 10);
  struct passwd *pw;
  if (end != spec && (*end == 0 || *end == ':')) {
    id->uid = (uid_t)uid;
    pw = getpwuid(id->uid);
    id->gid = pw ? pw->pw_gid : (gid_t)uid;
    if (*end == ':') {
      char *gend;
      id->gid = (gid_t)strtoul(end + 1, &gend, 10);
      if (gend == end + 1 || *gend) {
        snprintf(err, errlen, "bad user \"%s\": expected NAME, UID or UID:GID", spec);
        return -1;
      }
    }
  } else {
    pw = getpwnam(spec);
    if (!pw) {
      snprintf(err, errlen, "no user \"%s\" in the guest's /etc/passwd", spec);
      return -1;
    }
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
  }
  if (pw) {
    snprintf(id->name, sizeof id->name, "%s", pw->pw_name);
    snprintf(id->home, sizeof id->home, "%s", pw->pw_dir);
  } else {
    snprintf(id->name, sizeof id->name, "%lu", (unsigned long)id->uid);
    strcpy(id->home, "/");
  }
  return 0;
}

static void env_set(char ***env, size_t *n, const char *key, size_t klen, const char *val) {
  size_t len = klen + 1 + strlen(val) + 1;
  char *kv = malloc(len);
  if (!kv) abort();
  snprintf(kv, len, "%.*s=%s", (int)klen, key, val);
  for (size_t i = 0; i < *n; i++)
    if (!strncmp((*env)[i], key, klen) && (*env)[i][klen] == '=') {
      free((*env)[i]);
      (*env)[i] = kv;
      return;
    }
  *env = realloc(*env, (*n + 2) * sizeof **env);
  if (!*env) abort();
  (*env)[(*n)++] = kv;
  (*env)[*n] = NULL;
}

static void free_strv(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

/* The child side: never returns. Reports a setup failure through errfd as "stage\0errno". */
static void child_exec(char **argv, char **env, const struct ident *id, const char *cwd, int pty_slave,
                       int fds[3], const jv *tty, int errfd) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  for (int sig = 1; sig < 32; sig++) signal(sig, SIG_DFL);
  setsid();
  const char *stage = "io";
  if (pty_slave >= 0) {
    if (ioctl(pty_slave, TIOCSCTTY, 0) < 0) goto fail;
    fds[0] = fds[1] = fds[2] = pty_slave;
  }
  for (int i = 0; i < 3; i++)
    if (dup2(fds[i], i) < 0) goto fail;
  if (id->set) {
    stage = "user";
    if (setgroups(0, NULL) < 0 && errno != EPERM) goto fail;
    if (id->uid != 0 && initgroups(id->name, id->gid) < 0 && errno != EPERM) { /* best effort */ }
    if (setgid(id->gid) < 0 || setuid(id->uid) < 0) goto fail;
  }
  stage = "cwd";
  if (chdir(cwd ? cwd : id->home) < 0 && (cwd || chdir("/") < 0)) goto fail;
  stage = "exec";
  extern char **environ;
  environ = env;
  execvp(argv[0], argv);
fail:;
  int e = errno;
  char msg[32];
  size_t sl = strlen(stage);
  memcpy(msg, stage, sl + 1);
  memcpy(msg + sl + 1, &e, sizeof e);
  if (write(errfd, msg, sl + 1 + sizeof e) < 0) { /* parent will see a plain exit 127 */ }
  (void)tty;
  _exit(127);
}

static int open_pty(int *master, int *slave, const jv *tty) {
  *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*master < 0) return -1;
  if (grantpt(*master) < 0 || unlockpt(*master) < 0) goto fail;
  char *name = ptsname(*master);
  if (!name) goto fail;
  *slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0) goto fail;
  double rows = 24, cols = 80;
  json_num(tty, "rows", &rows);
  json_num(tty, "cols", &cols);
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  ioctl(*slave, TIOCSWINSZ, &ws);
  return 0;
fail:
  close(*master);
  return -1;
}

void exec_start(conn_t *c, uint32_t id, const jv *req) {
  jv *argvj = json_get(req, "argv");
  size_t argc = 0;
  if (argvj && argvj->type == J_ARR)
    for (jv *a = argvj->kids; a; a = a->next) {
      if (a->type != J_STR || strlen(a->s) != a->slen) {
        send_error(c, id, "bad_request", "argv must be an array of strings without NUL bytes");
        return;
      }
      argc++;
    }
  if (!argc) {
    send_error(c, id, "bad_request", "argv must be a non-empty array of strings");
    return;
  }
  jv *envj = json_get(req, "env");
  if (envj && envj->type != J_OBJ && envj->type != J_NULL) {
    send_error(c, id, "bad_request", "env must be an object of strings");
    return;
  }
  jv *tty = json_get(req, "tty");
  int want_pty = tty && tty->type == J_OBJ;
  jv *cwdj = json_get(req, "cwd");
  const char *cwd = json_str(req, "cwd");
  if (cwdj && cwdj->type != J_NULL && !cwd) {
    send_error(c, id, "bad_request", "cwd must be a string");
    return;
  }
  jv *userj = json_get(req, "user");
  const char *user = json_str(req, "user");
  if (userj && userj->type != J_NULL && !user) {
    send_error(c, id, "bad_request", "user must be a string");
    return;
  }
  struct ident ident;
  char err[256];
  if (resolve_user(user, &ident, err, sizeof err) < 0) {
    send_error(c, id, "bad_request", "%s", err);
    return;
  }

  char **argv = calloc(argc + 1, sizeof *argv);
  if (!argv) abort();
  size_t i = 0;
  for (jv *a = argvj->kids; a; a = a->next) argv[i++] = strdup(a->s);
  char **env = calloc(1, sizeof *env);
  size_t envn = 0;
  env_set(&env, &envn, "PATH", 4, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  env_set(&env, &envn, "HOME", 4, ident.home);
  env_set(&env, &envn, "USER", 4, ident.name);
  env_set(&env, &envn, "LOGNAME", 7, ident.name);
  if (want_pty) env_set(&env, &envn, "TERM", 4, "xterm-256color");
  if (envj && envj->type == J_OBJ)
    for (jv *e = envj->kids; e; e = e->next) {
      if (e->type != J_STR || strlen(e->s) != e->slen || !*e->key || strchr(e->key, '=')) {
        send_error(c, id, "bad_request", "env entries must be NAME (no '=') -> string");
        free_strv(argv);
        free_strv(env);
        return;
      }
      env_set(&env, &envn, e->key, strlen(e->key), e->s);
    }

  int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, status[2] = {-1, -1};
  int master = -1, slave = -1;
  int ok = pipe2(status, O_CLOEXEC) == 0;
  if (ok && want_pty) ok = open_pty(&master, &slave, tty) == 0;
  else if (ok) ok = !pipe2(in, O_CLOEXEC) && !pipe2(out, O_CLOEXEC) && !pipe2(errp, O_CLOEXEC);
  pid_t pid = ok ? fork() : -1;
  if (pid == 0) {
    int fds[3] = {in[0], out[1], errp[1]};
    child_exec(argv, env, &ident, cwd, slave, fds, tty, status[1]);
  }
  int e = errno;
  free_strv(argv);
  free_strv(env);
  if (status[1] >= 0) close(status[1]);
  if (slave >= 0) close(slave);
  if (in[0] >= 0) close(in[0]);
  if (out[1] >= 0) close(out[1]);
  if (errp[1] >= 0) close(errp[1]);
  if (pid < 0) {
    int fdsl[] = {status[0], master, in[1], out[0], errp[0]};
    for (size_t k = 0; k < 5; k++)
      if (fdsl[k] >= 0) close(fdsl[k]);
    send_error(c, id, "operation_failed", "cannot start command: %s", strerror(e));
    return;
  }
  /* Wait for exec (the CLOEXEC status pipe closes) or a setup failure report. */
  char msg[32];
  ssize_t got;
  do got = read(status[0], msg, sizeof msg);
  while (got < 0 && errno == EINTR);
  close(status[0]);
  session_t *s = session_new(c, id, S_EXEC);
  s->pid = pid;
  if (want_pty) {
    s->pty = 1;
    s->out_fd = master;
    s->in_fd = dup(master);
  } else {
    s->in_fd = in[1];
    s->out_fd = out[0];
    s->err_fd = errp[0];
  }
  int fdl[] = {s->in_fd, s->out_fd, s->err_fd};
  for (int k = 0; k < 3; k++)
    if (fdl[k] >= 0) fcntl(fdl[k], F_SETFL, fcntl(fdl[k], F_GETFL) | O_NONBLOCK);
  if (got > 0) {
    const char *stage = msg;
    int cerr = 0;
    size_t sl = strnlen(msg, (size_t)got);
    if (sl + 1 + sizeof cerr <= (size_t)got) memcpy(&cerr, msg + sl + 1, sizeof cerr);
    const char *code = !strcmp(stage, "exec") && cerr == ENOENT ? "not_found" : "operation_failed";
    send_error(c, id, code, "%s: %s: %s",
               !strcmp(stage, "exec") ? "cannot execute" : !strcmp(stage, "cwd") ? "cannot enter the working directory"
                                                       : !strcmp(stage, "user") ? "cannot switch user" : "cannot set up stdio",
               !strcmp(stage, "cwd") ? (cwd ? cwd : ident.home) : json_get(req, "argv")->kids->s, strerror(cerr));
    s->conn = NULL; /* the child is still to be reaped; nothing more goes to the host */
    if (s->in_fd >= 0) close(s->in_fd);
    if (s->out_fd >= 0) close(s->out_fd);
    if (s->err_fd >= 0) close(s->err_fd);
    s->in_fd = s->out_fd = s->err_fd = -1;
    if (s->exited) session_free(s);
    return;
  }
  buf_t b = {0};
  buf_addf(&b, "{\"ok\":true,\"pid\":%d}", (int)pid);
  send_json(c, F_REPLY, id, &b);
}

void exec_control(session_t *s, const jv *req) {
  const char *op = json_str(req, "op");
  if (!op) return;
  if (!strcmp(op, "resize") && s->pty && s->out_fd >= 0) {
    double rows = 0, cols = 0;
    if (!json_num(req, "rows", &rows) || !json_num(req, "cols", &cols) || rows < 1 || cols < 1 || rows > 65535 ||
        cols > 65535)
      return;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    ioctl(s->out_fd, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH to the foreground group */
  } else if (!strcmp(op, "signal") && !s->exited) {
    int sig = signal_by_name(json_str(req, "signal"));
    if (sig <= 0) return;
    /* To the whole process group, as a terminal would: the command runs in its own session. */
    if (kill(-s->pid, sig) < 0) kill(s->pid, sig);
  }
}

void exec_stdin(session_t *s, const char *data, size_t n, int eof) {
  if (s->in_fd < 0) return;
  if (eof) {
    s->stdin_eof = 1;
    if (s->pty) buf_add(&s->stdin_q, "\x04", 1); /* VEOF: the terminal's way of saying end of input */
    return;
  }
  buf_add(&s->stdin_q, data, n);
}

void exec_reaped(session_t *s, int status) {
  s->exited = 1;
  s->status = status;
  if (!s->conn) {
    session_free(s);
    return;
  }
  if (s->pty) {
    /* A PTY hands data over asynchronously: keep reading the master until EIO (every slave fd closed). */
    exec_finish_if_done(s);
    return;
  }
  /* Everything the command wrote before exiting is already in the pipe: drain it now, so a background
   * grandchild that keeps the pipe open cannot hold the exit report back. */
  int fds[2] = {s->out_fd, s->err_fd};
  for (int k = 0; k < 2; k++) {
    if (fds[k] < 0) continue;
    char tmp[DATA_CHUNK];
    for (;;) {
      ssize_t n = read(fds[k], tmp, sizeof tmp);
      if (n <= 0) break;
      send_frame(s->conn, k ? F_STDERR : F_DATA, s->id, tmp, (size_t)n);
    }
  }
  if (s->in_fd >= 0) close(s->in_fd);
  if (s->out_fd >= 0) close(s->out_fd);
  if (s->err_fd >= 0) close(s->err_fd);
  s->in_fd = s->out_fd = s->err_fd = -1;
  exec_finish_if_done(s);
}

void exec_finish_if_done(session_t *s) {
  if (!s->exited || (s->out_fd >= 0 && !s->pty_eof) || s->err_fd >= 0) return;
  buf_t b = {0};
  if (WIFSIGNALED(s->status)) buf_addf(&b, "{\"exitCode\":null,\"signal\":\"%s\"}", signal_name(WTERMSIG(s->status)));
  else buf_addf(&b, "{\"exitCode\":%d,\"signal\":null}", WEXITSTATUS(s->status));
  send_json(s->conn, F_EXIT, s->id, &b);
  session_free(s);
}

void exec_kill(session_t *s) {
  if (!s->exited && s->pid > 0 && kill(-s->pid, SIGKILL) < 0) kill(s->pid, SIGKILL);
  s->conn = NULL;
  if (s->in_fd >= 0) close(s->in_fd);
  if (s->out_fd >= 0) close(s->out_fd);
  if (s->err_fd >= 0) close(s->err_fd);
  s->in_fd = s->out_fd = s->err_fd = -1;
  if (s->exited) session_free(s);
}

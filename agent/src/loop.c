/* The event loop: one poll() over listeners, connections, exec pipes/PTYs and a SIGCHLD self-pipe. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "loop.h"

session_t *g_sessions;
conn_t *g_conns;
struct loop_opts g_opts;

static int sigchld_pipe[2] = {-1, -1};
static int exit_action;
static int64_t exit_deadline;

int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void loop_request_exit(int action) {
  exit_action = action;
  exit_deadline = now_ms() + 2000;
}

session_t *session_find(conn_t *c, uint32_t id) {
  for (session_t *s = g_sessions; s; s = s->next)
    if (s->conn == c && s->id == id) return s;
  return NULL;
}

session_t *session_new(conn_t *c, uint32_t id, int type) {
  session_t *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->conn = c;
  s->id = id;
  s->type = type;
  s->in_fd = s->out_fd = s->err_fd = -1;
  s->pid = -1;
  s->next = g_sessions;
  g_sessions = s;
  return s;
}

void session_free(session_t *s) {
  for (session_t **pp = &g_sessions; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  if (s->in_fd >= 0) close(s->in_fd);
  if (s->out_fd >= 0) close(s->out_fd);
  if (s->err_fd >= 0) close(s->err_fd);
  buf_free(&s->stdin_q);
  free(s->path);
  free(s->tmp);
  free(s);
}

void conn_reset(conn_t *c) {
  session_t *s = g_sessions;
  while (s) {
    session_t *next = s->next;
    if (s->conn == c) {
      if (s->type == S_EXEC) exec_kill(s);
      else if (s->type == S_WRITE) write_file_abort(s);
      else if (s->type == S_CONN) connect_abort(s);
      else session_free(s);
    }
    s = next;
  }
  buf_free(&c->in);
  buf_free(&c->out);
  c->discard = 0;
}

static conn_t *conn_add(int fd, int kind) {
  conn_t *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->fd = fd;
  c->kind = kind;
  c->next = g_conns;
  g_conns = c;
  return c;
}

static void conn_close(conn_t *c) {
  conn_reset(c);
  if (c->fd >= 0) close(c->fd);
  for (conn_t **pp = &g_conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  free(c);
}

/* The host went away (stream closed, or the serial port reports EOF). */
static void conn_lost(conn_t *c) {
  if (c->kind == CONN_SERIAL) {
    conn_reset(c);
    c->retry_at_ms = now_ms() + 100; /* EOF on virtio-serial means "host not connected": wait, retry */
  } else conn_close(c);
}

static void conn_protocol_error(conn_t *c) {
  if (c->kind == CONN_SERIAL) {
    /* Keep the error frame, drop everything else; ignore input until the host reconnects. */
    buf_t keep = c->out;
    c->out = (buf_t){0};
    conn_reset(c);
    c->out = keep;
    c->discard = 1;
  } else c->closing = 1;
}

static int conn_input_throttled(conn_t *c);

/* Reads what the connection has, up to CONN_READ_BURST per wake-up: a virtio-serial read returns a few KiB
 * at a time, and one read per poll() would make the loop's overhead the limit on throughput. */
#define CONN_READ_BURST (512u * 1024)
static void conn_read(conn_t *c) {
  char tmp[65536];
  for (size_t total = 0; total < CONN_READ_BURST;) {
    ssize_t n = read(c->fd, tmp, sizeof tmp);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      conn_lost(c);
      return;
    }
    if (n == 0) {
      conn_lost(c);
      return;
    }
    total += (size_t)n;
    if (c->discard || c->closing) return;
    buf_add(&c->in, tmp, (size_t)n);
    if (conn_process_input(c) < 0) {
      conn_protocol_error(c);
      return;
    }
    if (conn_input_throttled(c)) return;
  }
}

static void conn_write(conn_t *c) {
  size_t pending = buf_pending(&c->out);
  if (!pending) return;
  ssize_t n = write(c->fd, c->out.p + c->out.off, pending);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    conn_lost(c);
    return;
  }
  buf_consume(&c->out, (size_t)n);
}

static void on_sigchld(int sig) {
  int saved = errno;
  if (write(sigchld_pipe[1], "x", 1) < 0) { /* full pipe: a wakeup is already pending */ }
  errno = saved;
}

static void reap(void) {
  char drain[64];
  while (read(sigchld_pipe[0], drain, sizeof drain) > 0) {}
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    for (session_t *s = g_sessions; s; s = s->next)
      if (s->type == S_EXEC && s->pid == pid) {
        exec_reaped(s, status);
        break;
      }
    /* Unknown pids: orphans we adopted as PID 1 (or subreaper); reaping them is all we owe. */
  }
}

/* Reads one chunk of exec output (or file content) and forwards it. */
static void session_read(session_t *s, int which) {
  int fd = which == 2 ? s->err_fd : s->out_fd;
  char tmp[DATA_CHUNK];
  ssize_t n = read(fd, tmp, sizeof tmp);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0) {
    send_frame(s->conn, which == 2 ? F_STDERR : F_DATA, s->id, tmp, (size_t)n);
    return;
  }
  /* EOF, or EIO from a PTY master whose slave side is closed. */
  if (n < 0 && !(s->pty && errno == EIO)) logmsg("read stream %u: %s", s->id, strerror(errno));
  if (s->pty && !s->exited) {
    /* Closing the master now would hang up a command that is still exiting (SIGHUP). */
    s->pty_eof = 1;
    return;
  }
  if (s->type == S_READ) {
    send_frame(s->conn, F_EOF, s->id, NULL, 0);
    session_free(s);
    return;
  }
  close(fd);
  if (which == 2) s->err_fd = -1;
  else {
    if (s->pty && s->in_fd >= 0) {
      close(s->in_fd);
      s->in_fd = -1;
    }
    s->out_fd = -1;
  }
  exec_finish_if_done(s);
}

static void session_write_stdin(session_t *s) {
  size_t pending = buf_pending(&s->stdin_q);
  if (pending) {
    ssize_t n = write(s->in_fd, s->stdin_q.p + s->stdin_q.off, pending);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      /* EPIPE: the command closed its stdin; the rest is dropped, as a shell pipe would. */
      buf_free(&s->stdin_q);
      if (!s->pty) {
        close(s->in_fd);
        s->in_fd = -1;
      }
      return;
    }
    buf_consume(&s->stdin_q, (size_t)n);
  }
  if (!buf_pending(&s->stdin_q) && s->stdin_eof && !s->pty) {
    close(s->in_fd);
    s->in_fd = -1;
  }
}

static int conn_input_throttled(conn_t *c) {
  /* connect streams are bounded by their window instead (a stalled guest server must not stop the
   * connection, where exec, health and the other forwards travel too) */
  for (session_t *s = g_sessions; s; s = s->next)
    if (s->conn == c && s->type != S_CONN && buf_pending(&s->stdin_q) > OUT_HIGH_WATER) return 1;
  return 0;
}

static void maybe_open_transports(int64_t now) {
  static int64_t next_try;
  if (now < next_try) return;
  next_try = now + 1000;
  if (g_opts.want_serial && !g_opts.serial_conn) {
    int fd = open_serial_port(AGENT_SERIAL_NAME);
    if (fd >= 0) {
      g_opts.serial_conn = conn_add(fd, CONN_SERIAL);
      if (!g_phases.transport_ready) g_phases.transport_ready = now_ms();
      logmsg("listening on virtio-serial port %s", AGENT_SERIAL_NAME);
    }
  }
  if (g_opts.want_vsock && g_opts.vsock_fd < 0) {
    g_opts.vsock_fd = listen_vsock(AGENT_VSOCK_PORT);
    if (g_opts.vsock_fd >= 0) {
      if (!g_phases.transport_ready) g_phases.transport_ready = now_ms();
      logmsg("listening on vsock port %d", AGENT_VSOCK_PORT);
    }
  }
}

enum { P_LISTEN, P_CONN, P_OUT, P_ERR, P_IN, P_SOCK, P_SIGCHLD };
struct slot {
  int kind;
  void *ptr;
};

int run_loop(void) {
  if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) < 0) return 1;
  struct sigaction sa = {0};
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  reap(); /* children that died before the handler was installed */

  size_t cap = 64;
  struct pollfd *pfds = malloc(cap * sizeof *pfds);
  struct slot *slots = malloc(cap * sizeof *slots);
  if (!pfds || !slots) return 1;
  int listeners[2];

  for (;;) {
    int64_t now = now_ms();
    maybe_open_transports(now);
    if (exit_action) {
      int flushed = 1;
      for (conn_t *c = g_conns; c; c = c->next)
        if (buf_pending(&c->out)) flushed = 0;
      if (flushed || now >= exit_deadline) power_action(exit_action);
    }

    size_t n = 0;
#define ADD(fd_, ev_, kind_, ptr_)                                   \
  do {                                                               \
    if (n == cap) {                                                  \
      cap *= 2;                                                      \
      pfds = realloc(pfds, cap * sizeof *pfds);                      \
      slots = realloc(slots, cap * sizeof *slots);                   \
      if (!pfds || !slots) abort();                                  \
    }                                                                \
    pfds[n] = (struct pollfd){.fd = (fd_), .events = (short)(ev_)}; \
    slots[n++] = (struct slot){(kind_), (ptr_)};                     \
  } while (0)

    ADD(sigchld_pipe[0], POLLIN, P_SIGCHLD, NULL);
    listeners[0] = g_opts.vsock_fd;
    listeners[1] = g_opts.unix_fd;
    for (int i = 0; i < 2; i++)
      if (listeners[i] >= 0) ADD(listeners[i], POLLIN, P_LISTEN, &listeners[i]);
    int timeout = 1000;
    for (conn_t *c = g_conns; c; c = c->next) {
      if (c->kind == CONN_SERIAL && c->retry_at_ms) {
        if (c->retry_at_ms > now) {
          int wait = (int)(c->retry_at_ms - now);
          if (wait < timeout) timeout = wait;
          continue;
        }
        c->retry_at_ms = 0;
      }
      short ev = 0;
      if (!c->closing && !conn_input_throttled(c)) ev |= POLLIN;
      if (buf_pending(&c->out)) ev |= POLLOUT;
      ADD(c->fd, ev, P_CONN, c);
    }
    int connect_wait = connect_expire(now);
    if (connect_wait >= 0 && connect_wait < timeout) timeout = connect_wait;
    for (session_t *s = g_sessions; s; s = s->next) {
      int room = s->conn && buf_pending(&s->conn->out) < OUT_HIGH_WATER;
      if (s->type == S_CONN) {
        short ev = connect_events(s, room);
        if (ev) ADD(s->out_fd, ev, P_SOCK, s);
        continue;
      }
      if (room && s->out_fd >= 0 && !s->pty_eof && s->type != S_WRITE) ADD(s->out_fd, POLLIN, P_OUT, s);
      if (room && s->err_fd >= 0) ADD(s->err_fd, POLLIN, P_ERR, s);
      if (s->type == S_EXEC && s->in_fd >= 0 && (buf_pending(&s->stdin_q) || (s->stdin_eof && !s->pty)))
        ADD(s->in_fd, POLLOUT, P_IN, s);
    }
    if (exit_action) timeout = 50;
#undef ADD

    int r = poll(pfds, n, timeout);
    if (r < 0 && errno != EINTR) {
      logmsg("poll: %s", strerror(errno));
      return 1;
    }
    if (r <= 0) continue;
    /* Handle events; an object freed by one handler must not be touched by a later slot, so each slot
     * re-checks that its object is still alive. */
    for (size_t i = 0; i < n; i++) {
      short re = pfds[i].revents;
      if (!re) continue;
      struct slot sl = slots[i];
      if (sl.kind == P_SIGCHLD) reap();
      else if (sl.kind == P_LISTEN) {
        /* Drain the whole backlog: a client opening many connections at once must not find it full
         * (connect would fail with EAGAIN) while the agent takes one per wakeup. */
        int fd;
        while ((fd = accept4(*(int *)sl.ptr, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
          conn_add(fd, CONN_STREAM);
      } else if (sl.kind == P_CONN) {
        conn_t *c = NULL;
        for (c = g_conns; c && c != sl.ptr; c = c->next) {}
        if (!c || c->fd != pfds[i].fd) continue;
        if (re & POLLOUT) conn_write(c);
        for (c = g_conns; c && c != sl.ptr; c = c->next) {}
        if (!c) continue;
        if (re & (POLLIN | POLLHUP | POLLERR)) conn_read(c);
        for (c = g_conns; c && c != sl.ptr; c = c->next) {}
        if (c && c->closing && !buf_pending(&c->out)) conn_close(c);
      } else {
        session_t *s = NULL;
        for (s = g_sessions; s && s != sl.ptr; s = s->next) {}
        if (!s) continue;
        if (sl.kind == P_OUT && s->out_fd == pfds[i].fd) session_read(s, 1);
        else if (sl.kind == P_ERR && s->err_fd == pfds[i].fd) session_read(s, 2);
        else if (sl.kind == P_IN && s->in_fd == pfds[i].fd) session_write_stdin(s);
        else if (sl.kind == P_SOCK && s->out_fd == pfds[i].fd) connect_ready(s, re);
      }
    }
    /* Try to flush replies right away: most are small and fit the socket buffer. */
    for (conn_t *c = g_conns, *next; c; c = next) {
      next = c->next;
      if (buf_pending(&c->out) && !(c->kind == CONN_SERIAL && c->retry_at_ms)) {
        conn_write(c);
        int alive = 0;
        for (conn_t *k = g_conns; k; k = k->next) alive |= k == c;
        if (!alive) continue;
      }
      if (c->closing && !buf_pending(&c->out)) conn_close(c);
    }
  }
}

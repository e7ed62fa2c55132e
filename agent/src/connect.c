/* connect: a TCP connection from the agent to a port of the guest itself, relayed both ways over one
 * stream (port forwarding). The host's bytes go to the socket, the socket's bytes come back as DATA; each
 * direction ends on its own (EOF frame <-> shutdown/FIN), so half-closes pass through; a reset on either
 * side becomes a reset on the other. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "agent.h"

/* A local connect that is neither accepted nor refused in this time fails. A full listen backlog drops SYNs
 * and the kernel retries them (1 s, 3 s, 7 s …): a busy server under TCG needs that patience. */
#define CONNECT_TIMEOUT_MS 30000

enum { C_CONNECTING, C_OPEN };

union addr {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
};

static socklen_t parse_addr(const char *text, unsigned port, union addr *a) {
  memset(a, 0, sizeof *a);
  if (inet_pton(AF_INET, text, &a->in.sin_addr) == 1) {
    a->in.sin_family = AF_INET;
    a->in.sin_port = htons((uint16_t)port);
    return sizeof a->in;
  }
  if (inet_pton(AF_INET6, text, &a->in6.sin6_addr) == 1) {
    a->in6.sin6_family = AF_INET6;
    a->in6.sin6_port = htons((uint16_t)port);
    return sizeof a->in6;
  }
  return 0;
}

static const char *reason_of(int e) {
  switch (e) {
    case ECONNREFUSED: return "refused";
    case ETIMEDOUT: return "timeout";
    case ENETUNREACH:
    case EHOSTUNREACH: return "unreachable";
    default: return "failed";
  }
}

static void connect_error(conn_t *c, uint32_t id, int e, const char *address, unsigned port) {
  char msg[256];
  snprintf(msg, sizeof msg, "cannot connect to %s port %u in the guest: %s", address, port, strerror(e));
  buf_t b = {0};
  buf_add(&b, "{\"ok\":false,\"error\":{", 21);
  json_kv_str(&b, "code", "operation_failed", 0);
  json_kv_str(&b, "message", msg, 1);
  json_kv_str(&b, "reason", reason_of(e), 1);
  buf_add(&b, "}}", 2);
  send_json(c, F_REPLY, id, &b);
}

/* Closes with SO_LINGER 0, so the guest's end sees a reset rather than an orderly close. */
static void close_with_reset(session_t *s) {
  if (s->out_fd >= 0) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(s->out_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  session_free(s);
}

static void end_stream(session_t *s, int reset, const char *why) {
  buf_t b = {0};
  buf_addf(&b, "{\"reset\":%s", reset ? "true" : "false");
  if (why) json_kv_str(&b, "message", why, 1);
  buf_add(&b, "}", 1);
  send_json(s->conn, F_EXIT, s->id, &b);
  if (reset) close_with_reset(s);
  else session_free(s);
}

void connect_start(conn_t *c, uint32_t id, const jv *req) {
  double portd = 0;
  if (!json_num(req, "port", &portd) || portd < 1 || portd > 65535 || portd != (double)(unsigned)portd) {
    send_error(c, id, "bad_request", "port must be an integer from 1 to 65535");
    return;
  }
  unsigned port = (unsigned)portd;
  jv *addrj = json_get(req, "address");
  const char *address = json_str(req, "address");
  if (addrj && addrj->type != J_NULL && !address) {
    send_error(c, id, "bad_request", "address must be a string");
    return;
  }
  if (!address) address = "127.0.0.1";
  union addr a;
  socklen_t alen = parse_addr(address, port, &a);
  if (!alen) {
    send_error(c, id, "bad_request", "address \"%.64s\" is not an IPv4 or IPv6 address", address);
    return;
  }
  int fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    connect_error(c, id, errno, address, port);
    return;
  }
  /* Only the guest's own addresses: the agent is not a way into the guest's network. Binding to the
   * address (any port) succeeds exactly when it is local. */
  union addr local = a;
  if (local.sa.sa_family == AF_INET) local.in.sin_port = 0;
  else local.in6.sin6_port = 0;
  if (bind(fd, &local.sa, alen) < 0) {
    int e = errno;
    close(fd);
    if (e == EADDRNOTAVAIL) send_error(c, id, "bad_request", "%s is not an address of this guest", address);
    else connect_error(c, id, e, address, port);
    return;
  }
  session_t *s = session_new(c, id, S_CONN);
  s->out_fd = fd;
  s->sock_state = C_CONNECTING;
  s->deadline_ms = now_ms() + CONNECT_TIMEOUT_MS;
  s->port = port;
  snprintf(s->address, sizeof s->address, "%s", address);
  if (connect(fd, &a.sa, alen) == 0) {
    s->sock_state = C_OPEN;
    send_frame(c, F_REPLY, id, "{\"ok\":true}", 11);
  } else if (errno != EINPROGRESS) {
    int e = errno;
    session_free(s);
    connect_error(c, id, e, address, port);
  }
}

void connect_host_data(session_t *s, const char *data, size_t n, int eof) {
  if (eof) s->stdin_eof = 1;
  else if (!s->stdin_eof) {
    if (buf_pending(&s->stdin_q) + n > 2 * CONN_WINDOW) {
      end_stream(s, 1, "the host sent past its window");
      return;
    }
    buf_add(&s->stdin_q, data, n);
  }
}

void connect_control(session_t *s, const jv *req) {
  const char *op = json_str(req, "op");
  if (!op) return;
  /* The host's client reset its connection (or gave up): pass the reset on; the host forgot the stream. */
  if (!strcmp(op, "reset")) close_with_reset(s);
  else if (!strcmp(op, "ack")) {
    double n = 0;
    if (!json_num(req, "bytes", &n) || n < 0) return;
    s->tx_unacked = n >= (double)s->tx_unacked ? 0 : s->tx_unacked - (size_t)n;
  }
}

/* Tells the host how many of its bytes reached the socket, so it may send that many more. */
static void ack_host(session_t *s, int force) {
  if (!s->rx_written || (!force && s->rx_written < CONN_ACK_STEP)) return;
  buf_t b = {0};
  buf_addf(&b, "{\"ack\":%zu}", s->rx_written);
  send_json(s->conn, F_CONTROL, s->id, &b);
  s->rx_written = 0;
}

short connect_events(const session_t *s, int room) {
  if (s->sock_state == C_CONNECTING) return POLLOUT;
  short ev = 0;
  if (room && !s->rd_eof && s->tx_unacked < CONN_WINDOW) ev |= POLLIN;
  if (buf_pending(&s->stdin_q) || (s->stdin_eof && !s->wr_shut)) ev |= POLLOUT;
  return ev;
}

static void finish_if_done(session_t *s) {
  if (s->rd_eof && s->wr_shut) end_stream(s, 0, NULL);
}

void connect_ready(session_t *s, short revents) {
  if (s->sock_state == C_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->out_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return;
    if (err) {
      conn_t *c = s->conn;
      uint32_t id = s->id;
      char address[64];
      unsigned port = s->port;
      snprintf(address, sizeof address, "%s", s->address);
      session_free(s);
      connect_error(c, id, err, address, port);
      return;
    }
    s->sock_state = C_OPEN;
    send_frame(s->conn, F_REPLY, s->id, "{\"ok\":true}", 11);
    return;
  }
  if (revents & POLLOUT) {
    size_t pending = buf_pending(&s->stdin_q);
    if (pending) {
      ssize_t n = send(s->out_fd, s->stdin_q.p + s->stdin_q.off, pending, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        end_stream(s, 1, strerror(errno));
        return;
      }
      if (n > 0) {
        buf_consume(&s->stdin_q, (size_t)n);
        s->rx_written += (size_t)n;
        ack_host(s, !buf_pending(&s->stdin_q));
      }
    }
    if (!buf_pending(&s->stdin_q) && s->stdin_eof && !s->wr_shut) {
      shutdown(s->out_fd, SHUT_WR);
      s->wr_shut = 1;
      buf_free(&s->stdin_q);
      finish_if_done(s);
      return;
    }
  }
  if (revents & (POLLIN | POLLHUP | POLLERR)) {
    char tmp[DATA_CHUNK];
    size_t want = CONN_WINDOW - s->tx_unacked;
    if (want > sizeof tmp) want = sizeof tmp;
    if (!want) want = 1; /* POLLHUP/POLLERR with a full window: read 1 byte to learn of a reset */
    ssize_t n = recv(s->out_fd, tmp, want, 0);
    if (n > 0) {
      send_frame(s->conn, F_DATA, s->id, tmp, (size_t)n);
      s->tx_unacked += (size_t)n;
      return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) {
      end_stream(s, 1, strerror(errno));
      return;
    }
    if (s->rd_eof) return;
    s->rd_eof = 1;
    send_frame(s->conn, F_EOF, s->id, NULL, 0);
    finish_if_done(s);
  }
}

int connect_expire(int64_t now) {
  int wait = -1;
  for (session_t *s = g_sessions, *next; s; s = next) {
    next = s->next;
    if (s->type != S_CONN || s->sock_state != C_CONNECTING) continue;
    if (now >= s->deadline_ms) {
      conn_t *c = s->conn;
      uint32_t id = s->id;
      char address[64];
      unsigned port = s->port;
      snprintf(address, sizeof address, "%s", s->address);
      session_free(s);
      connect_error(c, id, ETIMEDOUT, address, port);
      continue;
    }
    int left = (int)(s->deadline_ms - now);
    if (wait < 0 || left < wait) wait = left;
  }
  return wait;
}

void connect_abort(session_t *s) {
  close_with_reset(s);
}

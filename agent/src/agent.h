/* banger-agent: shared types. One event loop (loop.c) drives connections (conn.c) and sessions
 * (exec.c, files.c); frames are parsed in proto.c, JSON in json.c. See docs/agent-protocol.md. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_VERSION "0.1.0"
#define AGENT_VSOCK_PORT 1024
#define AGENT_SERIAL_NAME "org.banger.agent"

/* Frame types (docs/agent-protocol.md). */
enum {
  F_OPEN = 1,    /* host->agent: JSON request, opens a stream */
  F_REPLY = 2,   /* agent->host: JSON reply */
  F_DATA = 3,    /* stdin / stdout / file bytes */
  F_STDERR = 4,  /* agent->host: stderr bytes */
  F_EOF = 5,     /* end of stdin / end of file bytes */
  F_CONTROL = 6, /* host->agent: JSON {op: resize|signal} */
  F_EXIT = 7,    /* agent->host: JSON {exitCode, signal}; ends an exec stream */
};
#define FRAME_HEADER 9
#define MAX_PAYLOAD (1u << 20)
#define DATA_CHUNK 32768
#define OUT_HIGH_WATER (1u << 20)
/* connect streams: bytes either side may have in flight unacknowledged (per-stream flow control, so one
 * stalled reader never stalls the connection's other streams); acks go out every ACK_STEP bytes. */
#define CONN_WINDOW (256u * 1024)
#define CONN_ACK_STEP (64u * 1024)

/* A growable byte buffer; bytes before off are consumed. */
typedef struct {
  char *p;
  size_t len, cap, off;
} buf_t;
void buf_add(buf_t *b, const void *data, size_t n);
void buf_addf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(buf_t *b, size_t n);
size_t buf_pending(const buf_t *b);
void buf_free(buf_t *b);

/* JSON: a tiny tree parser for requests and an escaper for replies. */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct jv {
  int type;
  char *key; /* member name inside an object */
  char *s;
  size_t slen;
  double n;
  int b;
  struct jv *kids, *next;
} jv;
jv *json_parse(const char *text, size_t len);
void json_free(jv *v);
jv *json_get(const jv *obj, const char *key);
const char *json_str(const jv *obj, const char *key);
int json_num(const jv *obj, const char *key, double *out);
void json_escape(buf_t *b, const char *s, size_t n);
void json_kv_str(buf_t *b, const char *key, const char *val, int comma);

typedef struct conn conn_t;
typedef struct session session_t;

enum { CONN_STREAM, CONN_SERIAL };
struct conn {
  int fd;
  int kind;
  buf_t in, out;
  int discard;          /* serial: after a protocol error, drop input until the host reconnects */
  int64_t retry_at_ms;  /* serial: host not connected, poll again at this time */
  int closing;          /* stream: close once out is flushed */
  conn_t *next;
};

enum { S_EXEC, S_READ, S_WRITE, S_CONN };
struct session {
  conn_t *conn; /* NULL once the host went away (exec still to be reaped) */
  uint32_t id;
  int type;
  pid_t pid;
  int in_fd, out_fd, err_fd; /* -1 when closed; with a PTY out_fd is the master and in_fd a dup of it */
  int pty;
  int pty_eof; /* master read EIO: output done, but keep it open until the child is reaped */
  buf_t stdin_q;
  int stdin_eof;
  int exited, status;
  /* write_file */
  char *path, *tmp;
  int mode, uid, gid;
  /* connect: the socket is out_fd; stdin_q/stdin_eof carry the host's bytes to it */
  int sock_state;
  int rd_eof, wr_shut; /* the guest's end sent FIN (EOF forwarded); we shut our write side down */
  size_t tx_unacked;   /* bytes sent to the host that it has not acknowledged yet */
  size_t rx_written;   /* host bytes written to the socket and not yet acknowledged to the host */
  int64_t deadline_ms; /* while connecting */
  unsigned port;
  char address[64];
  session_t *next;
};

/* proto.c */
void send_frame(conn_t *c, int type, uint32_t id, const void *payload, size_t n);
void send_json(conn_t *c, int type, uint32_t id, buf_t *json);
void send_error(conn_t *c, uint32_t id, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Parses complete frames from c->in and dispatches them; returns -1 on a protocol error. */
int conn_process_input(conn_t *c);

/* dispatch.c */
void handle_frame(conn_t *c, int type, uint32_t id, const char *payload, size_t n);

/* loop.c */
extern session_t *g_sessions;
extern conn_t *g_conns;
session_t *session_find(conn_t *c, uint32_t id);
session_t *session_new(conn_t *c, uint32_t id, int type);
void session_free(session_t *s);
void conn_reset(conn_t *c); /* drops every session of this connection */
int64_t now_ms(void);        /* CLOCK_BOOTTIME in ms */
int run_loop(void);
void loop_request_exit(int action); /* 1 poweroff, 2 reboot: after replies are flushed */

/* exec.c */
void exec_start(conn_t *c, uint32_t id, const jv *req);
void exec_control(session_t *s, const jv *req);
void exec_stdin(session_t *s, const char *data, size_t n, int eof);
void exec_reaped(session_t *s, int status);
void exec_kill(session_t *s);
void exec_finish_if_done(session_t *s);
int signal_by_name(const char *name);
const char *signal_name(int sig);

/* files.c */
void read_file_start(conn_t *c, uint32_t id, const jv *req);
void write_file_start(conn_t *c, uint32_t id, const jv *req);
void write_file_data(session_t *s, const char *data, size_t n, int eof);
void write_file_abort(session_t *s);
void list_dir_reply(conn_t *c, uint32_t id, const jv *req);

/* connect.c: a TCP connection to a port of the guest, relayed over one stream (forwards) */
void connect_start(conn_t *c, uint32_t id, const jv *req);
void connect_host_data(session_t *s, const char *data, size_t n, int eof);
void connect_control(session_t *s, const jv *req);
short connect_events(const session_t *s, int room); /* poll events wanted now; 0: none */
void connect_ready(session_t *s, short revents);
int connect_expire(int64_t now); /* fails connects past their deadline; ms to the next one, or -1 */
void connect_abort(session_t *s);  /* the host went away: reset the guest's end */

/* sysinfo.c */
struct boot_phases {
  int64_t shim_start, agent_start, config_applied, transport_ready;
};
extern struct boot_phases g_phases;
extern int g_is_pid1;
void health_reply(conn_t *c, uint32_t id);
void ports_reply(conn_t *c, uint32_t id);
void apply_cmdline_config(const char *cmdline_path, const char *root);
char *cmdline_value(const char *cmdline, const char *key);

/* net.c: banger.ip=ADDR/PREFIX,GW,IFACE; g_network is "none" | "configured" | "already" | "error: ..." */
extern char g_network[160];
void apply_network(const char *spec);

/* transport.c */
int listen_vsock(unsigned port);
int listen_unix(const char *path);
int open_serial_port(const char *name);

/* power.c */
void power_action(int action); /* 1 poweroff, 2 reboot; syncs first; returns only on failure */

/* init.c */
int init_shim_main(int argc, char **argv);

/* log.c */
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Framing: [u32 BE length of what follows][u8 type][u32 BE stream id][payload]. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "agent.h"

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void send_frame(conn_t *c, int type, uint32_t id, const void *payload, size_t n) {
  if (!c || c->discard) return;
  unsigned char h[FRAME_HEADER];
  put32(h, (uint32_t)(n + 5));
  h[4] = (unsigned char)type;
  put32(h + 5, id);
  buf_add(&c->out, h, sizeof h);
  buf_add(&c->out, payload, n);
}

void send_json(conn_t *c, int type, uint32_t id, buf_t *json) {
  send_frame(c, type, id, json->p + json->off, buf_pending(json));
  buf_free(json);
}

void send_error(conn_t *c, uint32_t id, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  buf_t b = {0};
  buf_add(&b, "{\"ok\":false,\"error\":{", 21);
  json_kv_str(&b, "code", code, 0);
  json_kv_str(&b, "message", msg, 1);
  buf_add(&b, "}}", 2);
  send_json(c, F_REPLY, id, &b);
}

int conn_process_input(conn_t *c) {
  for (;;) {
    size_t avail = buf_pending(&c->in);
    if (avail < 4) return 0;
    const unsigned char *p = (const unsigned char *)c->in.p + c->in.off;
    uint32_t len = get32(p);
    if (len < 5 || len > MAX_PAYLOAD + 5) {
      send_error(c, 0, "bad_request", "bad frame length %u", len);
      return -1;
    }
    if (avail < 4 + (size_t)len) return 0;
    int type = p[4];
    if (type < F_OPEN || type > F_EXIT) {
      send_error(c, 0, "bad_request", "unknown frame type %d", type);
      return -1;
    }
    uint32_t id = get32(p + 5);
    /* Copy out: handlers may append to c->in's neighbour buffers but never to c->in itself. */
    handle_frame(c, type, id, (const char *)p + FRAME_HEADER, len - 5);
    buf_consume(&c->in, 4 + (size_t)len);
    if (c->discard || c->fd < 0) return 0;
  }
}

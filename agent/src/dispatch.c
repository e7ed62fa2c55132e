/* Routes a decoded frame to the operation it belongs to. */
#include <string.h>
#include "agent.h"

static void open_stream(conn_t *c, uint32_t id, const char *payload, size_t n) {
  if (id == 0) {
    send_error(c, 0, "bad_request", "stream id 0 is reserved");
    return;
  }
  if (session_find(c, id)) {
    send_error(c, id, "bad_request", "stream %u is already open", id);
    return;
  }
  jv *req = json_parse(payload, n);
  const char *op = json_str(req, "op");
  if (!op) send_error(c, id, "bad_request", "request is not a JSON object with a string \"op\"");
  else if (!strcmp(op, "health")) health_reply(c, id);
  else if (!strcmp(op, "ports")) ports_reply(c, id);
  else if (!strcmp(op, "exec")) exec_start(c, id, req);
  else if (!strcmp(op, "read_file")) read_file_start(c, id, req);
  else if (!strcmp(op, "write_file")) write_file_start(c, id, req);
  else if (!strcmp(op, "list_dir")) list_dir_reply(c, id, req);
  else if (!strcmp(op, "connect")) connect_start(c, id, req);
  else if (!strcmp(op, "shutdown") || !strcmp(op, "reboot")) {
    send_frame(c, F_REPLY, id, "{\"ok\":true}", 11);
    loop_request_exit(!strcmp(op, "shutdown") ? 1 : 2);
  } else send_error(c, id, "unknown_method", "unknown op \"%s\"", op);
  json_free(req);
}

void handle_frame(conn_t *c, int type, uint32_t id, const char *payload, size_t n) {
  if (type == F_OPEN) {
    open_stream(c, id, payload, n);
    return;
  }
  session_t *s = session_find(c, id);
  if (!s) return; /* late frames for a finished stream are expected: drop them */
  switch (type) {
    case F_DATA:
    case F_EOF:
      if (s->type == S_EXEC) exec_stdin(s, payload, n, type == F_EOF);
      else if (s->type == S_WRITE) write_file_data(s, payload, n, type == F_EOF);
      else if (s->type == S_CONN) connect_host_data(s, payload, n, type == F_EOF);
      break;
    case F_CONTROL:
      if (s->type == S_EXEC || s->type == S_CONN) {
        jv *req = json_parse(payload, n);
        if (s->type == S_EXEC) exec_control(s, req);
        else connect_control(s, req);
        json_free(req);
      }
      break;
    default:
      break; /* agent->host types sent by the host: ignored */
  }
}

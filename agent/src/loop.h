/* Event loop options (set by main.c before run_loop). */
#pragma once
#include "agent.h"

struct loop_opts {
  int want_serial, want_vsock;
  int vsock_fd, unix_fd;
  conn_t *serial_conn;
};
extern struct loop_opts g_opts;

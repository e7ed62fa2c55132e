/* Byte buffers and logging. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent.h"

static void buf_reserve(buf_t *b, size_t extra) {
  if (b->off && b->off == b->len) b->off = b->len = 0;
  if (b->len + extra <= b->cap) return;
  if (b->off > b->cap / 2) { /* compact before growing */
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->len + extra <= b->cap) return;
  }
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    logmsg("out of memory");
    abort();
  }
  b->p = p;
  b->cap = cap;
}

void buf_add(buf_t *b, const void *data, size_t n) {
  if (!n) return;
  buf_reserve(b, n);
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

void buf_addf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  buf_reserve(b, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void buf_consume(buf_t *b, size_t n) {
  b->off += n;
  if (b->off >= b->len) b->off = b->len = 0;
}

size_t buf_pending(const buf_t *b) { return b->len - b->off; }

void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = b->off = 0;
}

void logmsg(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "banger-agent: %s\n", line);
}

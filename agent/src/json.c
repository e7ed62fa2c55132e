/* A small JSON parser (requests are small, trusted in shape only after checks) and an escaper for replies.
 * Depth and size are bounded so hostile frames cannot exhaust the stack. */
#include <stdlib.h>
#include <string.h>
#include "agent.h"

typedef struct {
  const char *p, *end;
  int depth;
} parser;

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static void put_utf8(buf_t *b, unsigned cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  buf_add(b, u, n);
}

static int hex4(parser *ps, unsigned *out) {
  if (ps->end - ps->p < 4) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *ps->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static char *parse_string(parser *ps, size_t *len) {
  if (ps->p >= ps->end || *ps->p != '"') return NULL;
  ps->p++;
  buf_t b = {0};
  while (ps->p < ps->end && *ps->p != '"') {
    char c = *ps->p++;
    if ((unsigned char)c < 0x20) goto fail;
    if (c != '\\') { buf_add(&b, &c, 1); continue; }
    if (ps->p >= ps->end) goto fail;
    c = *ps->p++;
    switch (c) {
      case '"': case '\\': case '/': buf_add(&b, &c, 1); break;
      case 'b': buf_add(&b, "\b", 1); break;
      case 'f': buf_add(&b, "\f", 1); break;
      case 'n': buf_add(&b, "\n", 1); break;
      case 'r': buf_add(&b, "\r", 1); break;
      case 't': buf_add(&b, "\t", 1); break;
      case 'u': {
        unsigned cp;
        if (hex4(ps, &cp)) goto fail;
        if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
          unsigned lo;
          ps->p += 2;
          if (hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) goto fail;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        put_utf8(&b, cp);
        break;
      }
      default: goto fail;
    }
  }
  if (ps->p >= ps->end) goto fail;
  ps->p++;
  buf_add(&b, "", 1); /* NUL terminator */
  *len = b.len - 1;
  return b.p;
fail:
  buf_free(&b);
  return NULL;
}

static jv *parse_value(parser *ps);

static jv *new_jv(int type) {
  jv *v = calloc(1, sizeof *v);
  if (!v) abort();
  v->type = type;
  return v;
}

static jv *parse_container(parser *ps, int type) {
  char close = type == J_OBJ ? '}' : ']';
  jv *v = new_jv(type), **tail = &v->kids;
  ps->p++;
  if (++ps->depth > 32) goto fail;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) { ps->p++; ps->depth--; return v; }
  for (;;) {
    char *key = NULL;
    size_t klen;
    skip_ws(ps);
    if (type == J_OBJ) {
      key = parse_string(ps, &klen);
      if (!key) goto fail;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') { free(key); goto fail; }
      ps->p++;
    }
    jv *kid = parse_value(ps);
    if (!kid) { free(key); goto fail; }
    kid->key = key;
    *tail = kid;
    tail = &kid->next;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
    if (ps->p < ps->end && *ps->p == close) { ps->p++; break; }
    goto fail;
  }
  ps->depth--;
  return v;
fail:
  json_free(v);
  return NULL;
}

static jv *parse_value(parser *ps) {
  skip_ws(ps);
  if (ps->p >= ps->end) return NULL;
  char c = *ps->p;
  if (c == '{') return parse_container(ps, J_OBJ);
  if (c == '[') return parse_container(ps, J_ARR);
  if (c == '"') {
    size_t n;
    char *s = parse_string(ps, &n);
    if (!s) return NULL;
    jv *v = new_jv(J_STR);
    v->s = s;
    v->slen = n;
    return v;
  }
  static const struct { const char *word; int type, b; } words[] = {
      {"true", J_BOOL, 1}, {"false", J_BOOL, 0}, {"null", J_NULL, 0}};
  for (size_t i = 0; i < 3; i++) {
    size_t wl = strlen(words[i].word);
    if ((size_t)(ps->end - ps->p) >= wl && !memcmp(ps->p, words[i].word, wl)) {
      ps->p += wl;
      jv *v = new_jv(words[i].type);
      v->b = words[i].b;
      return v;
    }
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    char num[64];
    size_t n = 0;
    while (ps->p < ps->end && n < sizeof num - 1 && strchr("+-0123456789.eE", *ps->p)) num[n++] = *ps->p++;
    num[n] = 0;
    char *endp;
    double d = strtod(num, &endp);
    if (*endp) return NULL;
    jv *v = new_jv(J_NUM);
    v->n = d;
    return v;
  }
  return NULL;
}

jv *json_parse(const char *text, size_t len) {
  parser ps = {text, text + len, 0};
  jv *v = parse_value(&ps);
  if (!v) return NULL;
  skip_ws(&ps);
  if (ps.p != ps.end) { json_free(v); return NULL; }
  return v;
}

void json_free(jv *v) {
  while (v) {
    jv *next = v->next;
    json_free(v->kids);
    free(v->key);
    free(v->s);
    free(v);
    v = next;
  }
}

jv *json_get(const jv *obj, const char *key) {
  if (!obj || obj->type != J_OBJ) return NULL;
  for (jv *k = obj->kids; k; k = k->next)
    if (!strcmp(k->key, key)) return k;
  return NULL;
}

const char *json_str(const jv *obj, const char *key) {
  jv *v = json_get(obj, key);
  /* Strings with NUL bytes are refused: they would be silently cut by every C API downstream. */
  return v && v->type == J_STR && strlen(v->s) == v->slen ? v->s : NULL;
}

int json_num(const jv *obj, const char *key, double *out) {
  jv *v = json_get(obj, key);
  if (!v || v->type != J_NUM) return 0;
  *out = v->n;
  return 1;
}

void json_escape(buf_t *b, const char *s, size_t n) {
  buf_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') { buf_add(b, "\\", 1); buf_add(b, &s[i], 1); }
    else if (c == '\n') buf_add(b, "\\n", 2);
    else if (c < 0x20 || c == 0x7f) buf_addf(b, "\\u%04x", c);
    else buf_add(b, &s[i], 1);
  }
  buf_add(b, "\"", 1);
}

void json_kv_str(buf_t *b, const char *key, const char *val, int comma) {
  if (comma) buf_add(b, ",", 1);
  json_escape(b, key, strlen(key));
  buf_add(b, ":", 1);
  if (val) json_escape(b, val, strlen(val));
  else buf_add(b, "null", 4);
}

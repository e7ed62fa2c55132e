/* read_file streams a file's bytes; write_file writes to a temporary name beside the target, then fsyncs and
 * renames, so a half-sent file never replaces a good one; list_dir replies with a directory's entries. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent.h"

static const char *path_arg(conn_t *c, uint32_t id, const jv *req) {
  const char *path = json_str(req, "path");
  if (!path || path[0] != '/') {
    send_error(c, id, "bad_request", "path must be an absolute path");
    return NULL;
  }
  return path;
}

void read_file_start(conn_t *c, uint32_t id, const jv *req) {
  const char *path = path_arg(c, id, req);
  if (!path) return;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    send_error(c, id, e == ENOENT ? "not_found" : "operation_failed", "%s: %s", path, strerror(e));
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    send_error(c, id, "bad_request", "%s is not a regular file", path);
    return;
  }
  /* The host's cap: refusing here keeps the connection (the host drops it on bytes past the cap). */
  double max = -1;
  json_num(req, "maxBytes", &max);
  if (max >= 0 && (double)st.st_size > max) {
    close(fd);
    send_error(c, id, "bad_request", "%s is %lld bytes, over the %.0f-byte limit", path, (long long)st.st_size, max);
    return;
  }
  buf_t b = {0};
  buf_addf(&b, "{\"ok\":true,\"size\":%lld,\"mode\":%u,\"uid\":%u,\"gid\":%u}", (long long)st.st_size,
           (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid);
  send_json(c, F_REPLY, id, &b);
  session_t *s = session_new(c, id, S_READ);
  s->out_fd = fd; /* the loop reads it like exec output and ends the stream with F_EOF */
}

void write_file_start(conn_t *c, uint32_t id, const jv *req) {
  const char *path = path_arg(c, id, req);
  if (!path) return;
  double mode = 0644, uid = -1, gid = -1;
  json_num(req, "mode", &mode);
  json_num(req, "uid", &uid);
  json_num(req, "gid", &gid);
  if (mode < 0 || mode > 07777 || uid < -1 || gid < -1 || uid > 4294967294.0 || gid > 4294967294.0) {
    send_error(c, id, "bad_request", "mode, uid or gid out of range");
    return;
  }
  size_t len = strlen(path) + 32;
  char *tmp = malloc(len);
  if (!tmp) abort();
  const char *slash = strrchr(path, '/');
  snprintf(tmp, len, "%.*s/.banger-tmp-%d-%u", (int)(slash - path), path, (int)getpid(), id);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    send_error(c, id, e == ENOENT ? "not_found" : "operation_failed", "cannot create a file beside %s: %s", path,
               strerror(e));
    return;
  }
  session_t *s = session_new(c, id, S_WRITE);
  s->out_fd = fd;
  s->tmp = tmp;
  s->path = strdup(path);
  s->mode = (int)mode;
  s->uid = (int)uid;
  s->gid = (int)gid;
}

void write_file_abort(session_t *s) {
  if (s->tmp) unlink(s->tmp);
  session_free(s);
}

static void fail(session_t *s, const char *what) {
  int e = errno;
  conn_t *c = s->conn;
  uint32_t id = s->id;
  char *path = strdup(s->path);
  write_file_abort(s);
  send_error(c, id, "operation_failed", "%s %s: %s", what, path, strerror(e));
  free(path);
}

void write_file_data(session_t *s, const char *data, size_t n, int eof) {
  while (n) {
    ssize_t w = write(s->out_fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(s, "cannot write");
      return;
    }
    data += w;
    n -= (size_t)w;
  }
  if (!eof) return;
  if (fchmod(s->out_fd, (mode_t)s->mode) < 0) {
    fail(s, "cannot chmod");
    return;
  }
  if ((s->uid >= 0 || s->gid >= 0) && fchown(s->out_fd, (uid_t)s->uid, (gid_t)s->gid) < 0) {
    fail(s, "cannot chown");
    return;
  }
  if (fsync(s->out_fd) < 0) {
    fail(s, "cannot fsync");
    return;
  }
  if (rename(s->tmp, s->path) < 0) {
    fail(s, "cannot rename into");
    return;
  }
  free(s->tmp);
  s->tmp = NULL;
  send_frame(s->conn, F_REPLY, s->id, "{\"ok\":true}", 11);
  session_free(s);
}

/* A reply must fit one frame: entries stop (and "truncated" is set) before the reply could pass this. */
#define LIST_MAX_REPLY (MAX_PAYLOAD - 8192)

static const char *entry_type(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "symlink";
  return "other";
}

void list_dir_reply(conn_t *c, uint32_t id, const jv *req) {
  const char *path = path_arg(c, id, req);
  if (!path) return;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    int e = errno;
    if (fd >= 0) close(fd);
    send_error(c, id, e == ENOENT ? "not_found" : e == ENOTDIR ? "bad_request" : "operation_failed", "%s: %s",
               path, strerror(e));
    return;
  }
  buf_t b = {0};
  buf_addf(&b, "{\"ok\":true,\"entries\":[");
  int first = 1, truncated = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (b.len - b.off > LIST_MAX_REPLY) {
      truncated = 1;
      break;
    }
    struct stat st;
    /* Never follows a symlink: the entry is the link itself. A name gone since readdir is skipped. */
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    buf_add(&b, first ? "{" : ",{", first ? 1 : 2);
    first = 0;
    json_kv_str(&b, "name", de->d_name, 0);
    json_kv_str(&b, "type", entry_type(st.st_mode), 1);
    buf_addf(&b, ",\"size\":%lld,\"mode\":%u,\"uid\":%u,\"gid\":%u,\"mtime\":%lld}", (long long)st.st_size,
             (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_mtime);
  }
  closedir(d);
  buf_addf(&b, "],\"truncated\":%s}", truncated ? "true" : "false");
  send_json(c, F_REPLY, id, &b);
}

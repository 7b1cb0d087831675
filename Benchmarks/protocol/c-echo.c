// c-echo: the physical limit of the protocol benchmark. Splits Content-Length frames from stdin and answers every
// request with a fixed-shape `health` result carrying the request's id; no JSON parsing, no allocation per message.
// The answers to all frames of one read go out in one write. Exits at EOF.

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void write_all(const char *bytes, size_t count) {
  while (count > 0) {
    ssize_t written = write(STDOUT_FILENO, bytes, count);
    if (written < 0) {
      if (errno == EINTR) continue;
      exit(1);
    }
    bytes += written;
    count -= (size_t)written;
  }
}

// Copies the raw token after "id": (a number or a quoted string); returns its length, 0 for a notification.
static size_t copy_id(const char *body, size_t length, char *id, size_t capacity) {
  const char *key = memmem(body, length, "\"id\":", 5);
  if (!key) return 0;
  const char *start = key + 5, *end = body + length;
  while (start < end && *start == ' ') start++;
  const char *stop = start;
  if (stop < end && *stop == '"') {
    stop++;
    while (stop < end && *stop != '"') stop += *stop == '\\' ? 2 : 1;
    stop++;
  } else {
    while (stop < end && *stop != ',' && *stop != '}' && *stop != ' ') stop++;
  }
  if (stop > end || (size_t)(stop - start) >= capacity) return 0;
  memcpy(id, start, (size_t)(stop - start));
  return (size_t)(stop - start);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  size_t capacity = 1 << 20, start = 0, end = 0;
  char *in = malloc(capacity);
  size_t out_capacity = 1 << 20, out_length = 0;
  char *out = malloc(out_capacity);
  if (!in || !out) return 1;
  for (;;) {
    if (capacity - end < (1 << 16)) {
      memmove(in, in + start, end - start);
      end -= start;
      start = 0;
      if (capacity - end < (1 << 16)) {
        capacity *= 2;
        if (!(in = realloc(in, capacity))) return 1;
      }
    }
    ssize_t count = read(STDIN_FILENO, in + end, capacity - end);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) return 0;
    end += (size_t)count;
    for (;;) {
      const char *base = in + start;
      const char *header_end = memmem(base, end - start, "\r\n\r\n", 4);
      if (!header_end) break;
      long declared = -1;
      for (const char *line = base; line < header_end;) {
        const char *eol = memmem(line, (size_t)(header_end - line) + 2, "\r\n", 2);
        if (strncasecmp(line, "Content-Length:", 15) == 0) declared = strtol(line + 15, NULL, 10);
        line = eol + 2;
      }
      if (declared < 0) return 2;
      size_t header_bytes = (size_t)(header_end - base) + 4;
      if (end - start < header_bytes + (size_t)declared) break;
      char id[128];
      size_t id_length = copy_id(header_end + 4, (size_t)declared, id, sizeof id);
      start += header_bytes + (size_t)declared;
      if (id_length == 0) continue;
      char body[256];
      int body_length = snprintf(body, sizeof body,
                                 "{\"jsonrpc\":\"2.0\",\"id\":%.*s,\"result\":{\"inFlight\":0,\"status\":\"ok\","
                                 "\"uptimeMs\":0,\"version\":\"0.1.0\"}}",
                                 (int)id_length, id);
      if (out_capacity - out_length < 512) {
        write_all(out, out_length);
        out_length = 0;
      }
      out_length += (size_t)snprintf(out + out_length, out_capacity - out_length, "Content-Length: %d\r\n\r\n%s",
                                     body_length, body);
    }
    if (out_length > 0) {
      write_all(out, out_length);
      out_length = 0;
    }
  }
}

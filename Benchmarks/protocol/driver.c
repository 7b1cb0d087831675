// proto-driver: drives JSON-RPC servers over stdin/stdout pipes (LSP framing) and measures, side by side,
// startup (spawn -> first `initialize` result), `health` round trip with one request outstanding, pipelined
// `health` throughput with a window of outstanding requests, and idle RSS after `initialize`.
//
// Written in C because the driver must be faster than every server it measures (a Python asyncio parent tops out
// near 30k msg/s on this kind of machine). Servers are measured in alternation (run 1 of each, then run 2 of each,
// ...) so that load from other processes on a shared machine spreads over all of them instead of one.
//
// Usage: proto-driver [options] NAME=COMMAND...   (COMMAND is split on spaces; no shell)
// Prints one tab-separated line per server on stdout:
//   name  startup_ms  rtt_p50_us  rtt_p99_us  msgs_per_s  rss_mb
// Progress and errors go to stderr. Every child is reaped before exit (and dies with the driver: PDEATHSIG).
// Exits 1 if any server misbehaves (no answer, wrong id, error response, early exit).
//
// It is also the load generator for profiling (see Benchmarks/protocol/profile): `proto-driver --only pipe
// --pipe-runs 1 --pipe-msgs 30000 sidecar="valgrind --tool=callgrind .build/release/social-sidecar"`.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_SERVERS = 8, MAX_ARGS = 32, READ_CHUNK = 1 << 16 };

typedef struct {
  const char *name;
  char *argv[MAX_ARGS];
} Server;

typedef struct {
  pid_t pid;
  int to_child;    // the child's stdin
  int from_child;  // the child's stdout
  char *buf;       // bytes read from the child, not yet consumed
  size_t start, end, cap;
} Child;

typedef struct {
  int startup_runs, rtt_warmup, rtt_count, pipe_msgs, pipe_runs, window, timeout_ms, rss_settle_ms;
  const char *only;       // NULL (all), or a comma-separated subset of startup, rtt, pipe, rss
  const char *stderr_dir; // where each server's stderr goes; NULL = /dev/null
} Options;

static Options opt = {
    .startup_runs = 20, .rtt_warmup = 2000, .rtt_count = 20000, .pipe_msgs = 200000, .pipe_runs = 3,
    .window = 64, .timeout_ms = 15000, .rss_settle_ms = 300, .only = NULL, .stderr_dir = NULL};

static const char *current_server = "?";

static void fail(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fprintf(stderr, "proto-driver: %s: ", current_server);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  // Children die with us (PR_SET_PDEATHSIG), so nothing is left running.
  exit(1);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// MARK: Children

static Child spawn(const Server *server) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) fail("pipe: %s", strerror(errno));
  int err = -1;
  if (opt.stderr_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.stderr", opt.stderr_dir, server->name);
    err = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  } else {
    err = open("/dev/null", O_WRONLY | O_CLOEXEC);
  }
  if (err < 0) fail("cannot open the stderr file: %s", strerror(errno));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) fail("fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    execvp(server->argv[0], server->argv);
    dprintf(err, "exec %s: %s\n", server->argv[0], strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err);
  Child child = {.pid = pid, .to_child = in[1], .from_child = out[0], .cap = 1 << 20};
  child.buf = malloc(child.cap);
  if (!child.buf) fail("out of memory");
  return child;
}

// Closes the child's stdin (the protocol's "parent is done"), waits up to 5 s for it to exit, then kills it.
static void finish(Child *child) {
  close(child->to_child);
  close(child->from_child);
  int status;
  for (int waited = 0; waited < 5000; waited += 2) {
    pid_t reaped = waitpid(child->pid, &status, WNOHANG);
    if (reaped == child->pid || (reaped < 0 && errno == ECHILD)) goto done;
    sleep_ms(2);
  }
  fprintf(stderr, "proto-driver: %s: did not exit 5 s after stdin closed; killed\n", current_server);
  kill(child->pid, SIGKILL);
  waitpid(child->pid, &status, 0);
done:
  free(child->buf);
  child->buf = NULL;
}

static void write_all(Child *child, const char *bytes, size_t count) {
  while (count > 0) {
    ssize_t written = write(child->to_child, bytes, count);
    if (written < 0) {
      if (errno == EINTR) continue;
      fail("write to the server: %s", strerror(errno));
    }
    bytes += written;
    count -= (size_t)written;
  }
}

// Reads more bytes from the child into its buffer; fails on EOF or after the timeout.
static void fill(Child *child) {
  if (child->start > 0 && (child->start == child->end || child->cap - child->end < READ_CHUNK)) {
    memmove(child->buf, child->buf + child->start, child->end - child->start);
    child->end -= child->start;
    child->start = 0;
  }
  if (child->cap - child->end < READ_CHUNK) {
    child->cap *= 2;
    child->buf = realloc(child->buf, child->cap);
    if (!child->buf) fail("out of memory");
  }
  for (;;) {
    ssize_t count = read(child->from_child, child->buf + child->end, child->cap - child->end);
    if (count > 0) {
      child->end += (size_t)count;
      return;
    }
    if (count == 0) fail("the server closed stdout (exited?); see its stderr");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) fail("read from the server: %s", strerror(errno));
  }
}

// Waits until the child has something to read, or fails after the timeout.
static void await_readable(Child *child) {
  struct pollfd pfd = {.fd = child->from_child, .events = POLLIN};
  for (;;) {
    int ready = poll(&pfd, 1, opt.timeout_ms);
    if (ready > 0) return;
    if (ready == 0) fail("no answer within %d ms", opt.timeout_ms);
    if (errno != EINTR) fail("poll: %s", strerror(errno));
  }
}

// Returns the next complete frame body in the buffer (and consumes it), or NULL if more bytes are needed.
static const char *next_frame(Child *child, size_t *length) {
  const char *base = child->buf + child->start;
  size_t available = child->end - child->start;
  const char *header_end = memmem(base, available, "\r\n\r\n", 4);
  if (!header_end) {
    if (available > 4096) fail("no frame header end in %zu bytes", available);
    return NULL;
  }
  long declared = -1;
  for (const char *line = base; line < header_end;) {
    const char *eol = memmem(line, (size_t)(header_end - line) + 2, "\r\n", 2);
    if (strncasecmp(line, "Content-Length:", 15) == 0) declared = strtol(line + 15, NULL, 10);
    line = eol + 2;
  }
  if (declared < 0) fail("frame without Content-Length");
  size_t header_bytes = (size_t)(header_end - base) + 4;
  if (available < header_bytes + (size_t)declared) return NULL;
  child->start += header_bytes + (size_t)declared;
  *length = (size_t)declared;
  return header_end + 4;
}

// Blocks until one whole frame has arrived.
static const char *read_frame(Child *child, size_t *length) {
  const char *body;
  while (!(body = next_frame(child, length))) {
    await_readable(child);
    fill(child);
  }
  return body;
}

// The integer id of a response, after checking it is a result (not an error).
static long response_id(const char *body, size_t length) {
  if (!memmem(body, length, "\"result\"", 8)) fail("not a result: %.*s", (int)length, body);
  const char *key = memmem(body, length, "\"id\":", 5);
  if (!key) fail("response without an id: %.*s", (int)length, body);
  return strtol(key + 5, NULL, 10);
}

static size_t health_frame(char *out, size_t capacity, long id) {
  char body[96];
  int body_length = snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"health\"}", id);
  int frame_length = snprintf(out, capacity, "Content-Length: %d\r\n\r\n%s", body_length, body);
  return (size_t)frame_length;
}

// Spawns, sends `initialize`, waits for its result. Returns the time it took in ns.
static double start_initialized(const Server *server, Child *child) {
  static const char body[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}";
  char frame[160];
  int frame_length = snprintf(frame, sizeof frame, "Content-Length: %zu\r\n\r\n%s", sizeof body - 1, body);
  double t0 = now_ns();
  *child = spawn(server);
  write_all(child, frame, (size_t)frame_length);
  size_t length;
  const char *reply = read_frame(child, &length);
  double elapsed = now_ns() - t0;
  if (response_id(reply, length) != 1) fail("initialize answered with another id: %.*s", (int)length, reply);
  return elapsed;
}

// MARK: Measurements

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// Nearest-rank percentile of a sorted array.
static double percentile(const double *sorted, int count, double p) {
  int rank = (int)(p * count + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > count) rank = count;
  return sorted[rank - 1];
}

static double median(double *values, int count) {
  qsort(values, (size_t)count, sizeof *values, compare_doubles);
  return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

static double startup_ms(const Server *server) {
  Child child;
  double elapsed = start_initialized(server, &child);
  finish(&child);
  return elapsed / 1e6;
}

static long vm_rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *file = fopen(path, "r");
  if (!file) fail("cannot read %s", path);
  long kb = -1;
  while (fgets(line, sizeof line, file)) {
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  }
  fclose(file);
  if (kb < 0) fail("no VmRSS in %s", path);
  return kb;
}

// Idle RSS: initialize, let start-up threads settle, read VmRSS.
static double idle_rss_mb(const Server *server) {
  Child child;
  start_initialized(server, &child);
  sleep_ms(opt.rss_settle_ms);
  long kb = vm_rss_kb(child.pid);
  finish(&child);
  return kb / 1024.0;
}

// One request outstanding: p50 and p99 of write -> whole response read, in µs.
static void round_trip(const Server *server, double *p50, double *p99) {
  Child child;
  start_initialized(server, &child);
  double *samples = malloc(sizeof(double) * (size_t)opt.rtt_count);
  if (!samples) fail("out of memory");
  char frame[128];
  long id = 2;
  for (int i = 0; i < opt.rtt_warmup + opt.rtt_count; i++, id++) {
    size_t frame_length = health_frame(frame, sizeof frame, id);
    double t0 = now_ns();
    write_all(&child, frame, frame_length);
    size_t length;
    const char *reply = read_frame(&child, &length);
    double elapsed = now_ns() - t0;
    if (response_id(reply, length) != id) fail("expected id %ld: %.*s", id, (int)length, reply);
    if (i >= opt.rtt_warmup) samples[i - opt.rtt_warmup] = elapsed / 1e3;
  }
  finish(&child);
  qsort(samples, (size_t)opt.rtt_count, sizeof *samples, compare_doubles);
  *p50 = percentile(samples, opt.rtt_count, 0.50);
  *p99 = percentile(samples, opt.rtt_count, 0.99);
  free(samples);
}

// Sends `total` health requests with `window` outstanding; every id must come back once, as a result.
// Requests freed by one read are written back in one write, as an efficient parent would. Returns msg/s.
static double pipelined(Child *child, long first_id, int total) {
  unsigned char *seen = calloc((size_t)total, 1);
  size_t out_capacity = (size_t)opt.window * 96 + 96;
  char *out = malloc(out_capacity);
  if (!seen || !out) fail("out of memory");
  int sent = 0, received = 0;
  size_t out_length = 0;
  while (sent < total && sent < opt.window) out_length += health_frame(out + out_length, 96, first_id + sent++);
  double t0 = now_ns();
  write_all(child, out, out_length);
  while (received < total) {
    await_readable(child);
    fill(child);
    out_length = 0;
    size_t length;
    const char *reply;
    while ((reply = next_frame(child, &length))) {
      long index = response_id(reply, length) - first_id;
      if (index < 0 || index >= sent || seen[index]) fail("unexpected or repeated id: %.*s", (int)length, reply);
      seen[index] = 1;
      received++;
      if (sent < total) out_length += health_frame(out + out_length, 96, first_id + sent++);
      if (out_length + 96 > out_capacity) {
        write_all(child, out, out_length);
        out_length = 0;
      }
    }
    if (out_length > 0) write_all(child, out, out_length);
  }
  double elapsed = now_ns() - t0;
  free(seen);
  free(out);
  return total / (elapsed / 1e9);
}

static double throughput(const Server *server) {
  Child child;
  start_initialized(server, &child);
  int warmup = opt.pipe_msgs / 20 < 2000 ? 2000 : opt.pipe_msgs / 20;
  pipelined(&child, 2, warmup);
  double rate = pipelined(&child, 2 + warmup, opt.pipe_msgs);
  finish(&child);
  return rate;
}

// MARK: Main

// True when `metric` is in the comma-separated --only list (or there is no list).
static int wants(const char *metric) {
  if (!opt.only) return 1;
  size_t length = strlen(metric);
  for (const char *item = opt.only; item; item = strchr(item, ',') ? strchr(item, ',') + 1 : NULL) {
    if (strncmp(item, metric, length) == 0 && (item[length] == ',' || item[length] == '\0')) return 1;
  }
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: proto-driver [--startup-runs N] [--rtt-warmup N] [--rtt N] [--pipe-msgs N] [--pipe-runs N]\n"
          "                    [--window N] [--timeout-ms N] [--rss-settle-ms N] [--stderr-dir DIR]\n"
          "                    [--only startup,rtt,pipe,rss] NAME=COMMAND...\n");
  exit(2);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  Server servers[MAX_SERVERS];
  int server_count = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    int *number = NULL;
    if (strcmp(arg, "--startup-runs") == 0) number = &opt.startup_runs;
    else if (strcmp(arg, "--rtt-warmup") == 0) number = &opt.rtt_warmup;
    else if (strcmp(arg, "--rtt") == 0) number = &opt.rtt_count;
    else if (strcmp(arg, "--pipe-msgs") == 0) number = &opt.pipe_msgs;
    else if (strcmp(arg, "--pipe-runs") == 0) number = &opt.pipe_runs;
    else if (strcmp(arg, "--window") == 0) number = &opt.window;
    else if (strcmp(arg, "--timeout-ms") == 0) number = &opt.timeout_ms;
    else if (strcmp(arg, "--rss-settle-ms") == 0) number = &opt.rss_settle_ms;
    if (number) {
      if (++i >= argc || (*number = atoi(argv[i])) < 1) usage();
      continue;
    }
    if (strcmp(arg, "--stderr-dir") == 0 && i + 1 < argc) {
      opt.stderr_dir = argv[++i];
      continue;
    }
    if (strcmp(arg, "--only") == 0 && i + 1 < argc) {
      opt.only = argv[++i];
      continue;
    }
    const char *equals = strchr(arg, '=');
    if (arg[0] == '-' || !equals || server_count == MAX_SERVERS) usage();
    Server *server = &servers[server_count++];
    server->name = strndup(arg, (size_t)(equals - arg));
    char *command = strdup(equals + 1);
    int count = 0;
    for (char *word = strtok(command, " "); word && count < MAX_ARGS - 1; word = strtok(NULL, " ")) {
      server->argv[count++] = word;
    }
    server->argv[count] = NULL;
    if (count == 0) usage();
  }
  if (server_count == 0) usage();

  double startup[MAX_SERVERS] = {0}, p50[MAX_SERVERS] = {0}, p99[MAX_SERVERS] = {0};
  double rate[MAX_SERVERS] = {0}, rss[MAX_SERVERS] = {0};

  if (wants("startup")) {
    double (*runs)[MAX_SERVERS] = calloc((size_t)opt.startup_runs, sizeof *runs);
    for (int run = 0; run < opt.startup_runs; run++) {
      for (int s = 0; s < server_count; s++) {
        current_server = servers[s].name;
        runs[run][s] = startup_ms(&servers[s]);
      }
    }
    for (int s = 0; s < server_count; s++) {
      double column[opt.startup_runs];
      for (int run = 0; run < opt.startup_runs; run++) column[run] = runs[run][s];
      startup[s] = median(column, opt.startup_runs);
    }
    free(runs);
    fprintf(stderr, "  startup: %d runs each\n", opt.startup_runs);
  }
  if (wants("rss")) {
    for (int s = 0; s < server_count; s++) {
      current_server = servers[s].name;
      rss[s] = idle_rss_mb(&servers[s]);
    }
    fprintf(stderr, "  idle RSS: read %d ms after initialize\n", opt.rss_settle_ms);
  }
  if (wants("rtt")) {
    for (int s = 0; s < server_count; s++) {
      current_server = servers[s].name;
      round_trip(&servers[s], &p50[s], &p99[s]);
    }
    fprintf(stderr, "  round trip: %d requests each after %d warm-up\n", opt.rtt_count, opt.rtt_warmup);
  }
  if (wants("pipe")) {
    double (*runs)[MAX_SERVERS] = calloc((size_t)opt.pipe_runs, sizeof *runs);
    for (int run = 0; run < opt.pipe_runs; run++) {
      for (int s = 0; s < server_count; s++) {
        current_server = servers[s].name;
        runs[run][s] = throughput(&servers[s]);
      }
    }
    for (int s = 0; s < server_count; s++) {
      double column[opt.pipe_runs];
      for (int run = 0; run < opt.pipe_runs; run++) column[run] = runs[run][s];
      rate[s] = median(column, opt.pipe_runs);
    }
    free(runs);
    fprintf(stderr, "  pipelined: %d messages x %d runs each, %d outstanding\n", opt.pipe_msgs, opt.pipe_runs,
            opt.window);
  }
  for (int s = 0; s < server_count; s++) {
    printf("%s\t%.2f\t%.1f\t%.1f\t%.0f\t%.1f\n", servers[s].name, startup[s], p50[s], p99[s], rate[s], rss[s]);
  }
  return 0;
}

// libcurl resolved at run time. Our own declarations follow curl 7.88's ABI; see ccurl.h.
#define _GNU_SOURCE
#include "ccurl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Option, info and return numbers used only here.
enum {
  OPT_WRITEDATA = 10001,
  OPT_READDATA = 10009,
  OPT_ERRORBUFFER = 10010,
  OPT_WRITEFUNCTION = 20011,
  OPT_READFUNCTION = 20012,
  OPT_HTTPHEADER = 10023,
  OPT_RESOLVE = 10203,
  OPT_HEADERDATA = 10029,
  OPT_HEADERFUNCTION = 20079,
  OPT_NOSIGNAL = 99,
  OPT_PRIVATE = 10103,
  OPT_SEEKFUNCTION = 20167,
  OPT_SEEKDATA = 10168,
  OPT_UPLOAD_BUFFERSIZE = 280,
  OPT_POSTFIELDS = 10015,
  OPT_POSTFIELDSIZE_LARGE = 30120,
  OPT_MAXAGE_CONN = 288,
  OPT_PREREQFUNCTION = 20312,
  OPT_PREREQDATA = 10313,
  OPT_CAPATH = 10097,
  OPT_SHARE = 10100,
  SHOPT_SHARE = 1,
  SHOPT_LOCKFUNC = 3,
  SHOPT_UNLOCKFUNC = 4,
  LOCK_DATA_LAST = 8,
  LOCK_DATA_SSL_SESSION = 4,
  PREREQFUNC_OK = 0,
  PREREQFUNC_ABORT = 1,
  MOPT_PIPELINING = 3,
  MOPT_MAXCONNECTS = 6,
  MOPT_MAX_HOST_CONNECTIONS = 7,
  PIPE_MULTIPLEX = 2,
  INFO_PRIVATE = 0x100000 + 21,
  INFO_RESPONSE_CODE = 0x200000 + 2,
  INFO_REQUEST_SIZE = 0x200000 + 12,
  INFO_HTTP_VERSION = 0x200000 + 46,
  INFO_CAINFO = 0x100000 + 61,
  GLOBAL_ALL = 3,
  ERROR_SIZE = 256,
  MSG_DONE = 1,
  SEEK_OK = 0,
  SEEK_FAIL = 1,
  SEEK_CANTSEEK = 2,
};
#define READFUNC_ABORT ((size_t)0x10000000)
#define HEADER_CAP ((size_t)256 * 1024)

struct curl_slist;
struct msg {  // CURLMsg
  int msg;
  void *easy;
  union {
    void *whatever;
    int result;
  } data;
};

static struct {
  void *(*easy_init)(void);
  void (*easy_cleanup)(void *);
  void (*easy_reset)(void *);
  int (*easy_setopt)(void *, int, ...);
  int (*easy_getinfo)(void *, int, ...);
  const char *(*easy_strerror)(int);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  void *(*multi_init)(void);
  int (*multi_cleanup)(void *);
  int (*multi_setopt)(void *, int, ...);
  int (*multi_add_handle)(void *, void *);
  int (*multi_remove_handle)(void *, void *);
  int (*multi_perform)(void *, int *);
  int (*multi_poll)(void *, void *, unsigned int, int, int *);
  int (*multi_wakeup)(void *);
  struct msg *(*multi_info_read)(void *, int *);
  int (*global_init)(long);
  char *(*version)(void);
  void *(*share_init)(void);
  int (*share_setopt)(void *, int, ...);
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];
static int load_status = -1;

// TLS set-up done once per process instead of once per connection (docs/performance.md, "TLS connection set-up").
//
// libcurl keeps the CA store it built from a CA file in the multi handle and hands it to every new connection, but
// only when no CA directory is configured, and Debian's libcurl configures /etc/ssl/certs by default: every
// connection then parsed the whole CA bundle again (tens of ms of CPU). `ca_file_is_default_trust` says that the
// built-in CA file exists, so that the directory can be dropped without trusting anything less (the distribution
// generates both from the same certificates).
static int ca_file_is_default_trust;
// One share handle for every transfer of the process: TLS sessions, so that a new connection to a host resumes a
// session instead of running a full handshake. Transfers of several multi handles (threads) use it, hence the locks.
static void *shared;
static pthread_mutex_t share_locks[LOCK_DATA_LAST];

static void share_lock(void *easy, int data, int access, void *context) {
  (void)easy, (void)access, (void)context;
  pthread_mutex_lock(&share_locks[data < LOCK_DATA_LAST ? data : 0]);
}

static void share_unlock(void *easy, int data, void *context) {
  (void)easy, (void)context;
  pthread_mutex_unlock(&share_locks[data < LOCK_DATA_LAST ? data : 0]);
}

static void prepare_tls_sharing(void) {
  void *probe = api.easy_init();
  if (probe != NULL) {
    const char *ca_file = NULL;  // CURLINFO_CAINFO (7.84): the built-in default
    if (api.easy_getinfo(probe, INFO_CAINFO, &ca_file) == 0 && ca_file != NULL)
      ca_file_is_default_trust = access(ca_file, R_OK) == 0;
    api.easy_cleanup(probe);
  }
  for (int i = 0; i < LOCK_DATA_LAST; i++) pthread_mutex_init(&share_locks[i], NULL);
  shared = api.share_init();
  if (shared == NULL) return;
  if (api.share_setopt(shared, SHOPT_LOCKFUNC, share_lock) != 0 ||
      api.share_setopt(shared, SHOPT_UNLOCKFUNC, share_unlock) != 0 ||
      api.share_setopt(shared, SHOPT_SHARE, (int)LOCK_DATA_SSL_SESSION) != 0)
    shared = NULL;  // never attached to a transfer: nothing to clean up
}

#define RESOLVE(field, name)                                                       \
  do {                                                                             \
    *(void **)(&api.field) = dlsym(lib, name);                                     \
    if (api.field == NULL) {                                                       \
      snprintf(load_error, sizeof load_error, "libcurl lacks %s (too old?)", name); \
      return;                                                                      \
    }                                                                              \
  } while (0)

static void load(void) {
#ifdef __APPLE__
  static const char *const names[] = {"libcurl.4.dylib", "libcurl.dylib"};
#else
  static const char *const names[] = {"libcurl.so.4", "libcurl.so"};
#endif
  // SOCIAL_SIDECAR_LIBCURL names the one library to load instead (a path or a file name).
  const char *chosen = getenv("SOCIAL_SIDECAR_LIBCURL");
  const char *const *tried = names;
  size_t count = sizeof names / sizeof names[0];
  if (chosen != NULL && *chosen != '\0') {
    tried = &chosen;
    count = 1;
  }
  void *lib = NULL;
  char why[200] = "not found";  // the first name's failure: the one that names the library people install
  for (size_t i = 0; i < count && lib == NULL; i++) {
    lib = dlopen(tried[i], RTLD_NOW | RTLD_LOCAL);
    const char *error = lib == NULL ? dlerror() : NULL;
    if (i == 0 && error != NULL) snprintf(why, sizeof why, "%s", error);
  }
  if (lib == NULL) {
    snprintf(load_error, sizeof load_error, "cannot load libcurl: %s", why);
    return;
  }
  RESOLVE(easy_init, "curl_easy_init");
  RESOLVE(easy_cleanup, "curl_easy_cleanup");
  RESOLVE(easy_reset, "curl_easy_reset");
  RESOLVE(easy_setopt, "curl_easy_setopt");
  RESOLVE(easy_getinfo, "curl_easy_getinfo");
  RESOLVE(easy_strerror, "curl_easy_strerror");
  RESOLVE(slist_append, "curl_slist_append");
  RESOLVE(slist_free_all, "curl_slist_free_all");
  RESOLVE(multi_init, "curl_multi_init");
  RESOLVE(multi_cleanup, "curl_multi_cleanup");
  RESOLVE(multi_setopt, "curl_multi_setopt");
  RESOLVE(multi_add_handle, "curl_multi_add_handle");
  RESOLVE(multi_remove_handle, "curl_multi_remove_handle");
  RESOLVE(multi_perform, "curl_multi_perform");
  RESOLVE(multi_poll, "curl_multi_poll");      // 7.66.0
  RESOLVE(multi_wakeup, "curl_multi_wakeup");  // 7.68.0
  RESOLVE(multi_info_read, "curl_multi_info_read");
  RESOLVE(global_init, "curl_global_init");
  RESOLVE(version, "curl_version");
  RESOLVE(share_init, "curl_share_init");
  RESOLVE(share_setopt, "curl_share_setopt");
  int rc = api.global_init(GLOBAL_ALL);
  if (rc != 0) {
    snprintf(load_error, sizeof load_error, "curl_global_init failed (%d)", rc);
    return;
  }
  prepare_tls_sharing();
  load_status = 0;
}

int ccurl_load(char *reason, size_t reason_len) {
  pthread_once(&load_once, load);
  if (load_status != 0 && reason != NULL && reason_len > 0) snprintf(reason, reason_len, "%s", load_error);
  return load_status;
}

const char *ccurl_version(void) { return load_status == 0 ? api.version() : ""; }
const char *ccurl_strerror(int code) { return load_status == 0 ? api.easy_strerror(code) : "libcurl not loaded"; }

// MARK: - Multi

struct ccurl_multi {
  void *handle;
};

ccurl_multi *ccurl_multi_new(long max_host_connections, long max_cached_connections) {
  if (load_status != 0) return NULL;
  ccurl_multi *multi = calloc(1, sizeof *multi);
  if (multi == NULL) return NULL;
  multi->handle = api.multi_init();
  if (multi->handle == NULL) {
    free(multi);
    return NULL;
  }
  api.multi_setopt(multi->handle, MOPT_PIPELINING, (long)PIPE_MULTIPLEX);
  if (max_host_connections > 0) api.multi_setopt(multi->handle, MOPT_MAX_HOST_CONNECTIONS, max_host_connections);
  if (max_cached_connections > 0) api.multi_setopt(multi->handle, MOPT_MAXCONNECTS, max_cached_connections);
  return multi;
}

void ccurl_multi_free(ccurl_multi *multi) {
  if (multi == NULL) return;
  api.multi_cleanup(multi->handle);
  free(multi);
}

struct ccurl_transfer {
  void *easy;
  uint64_t tag;
  struct curl_slist *headers;
  // CURLOPT_RESOLVE entries: "host:port:address[,address]" (DNS pinning).
  struct curl_slist *resolve;
  char error[ERROR_SIZE];
  int flags;
  // At most once: how many times libcurl was about to send the request (see ccurl_transfer_send_at_most_once).
  int at_most_once;
  int send_starts;
  // Request body: memory (POSTFIELDS) or a file range (read callback).
  unsigned char *upload;
  int upload_fd;
  int64_t upload_offset;
  int64_t upload_length;
  int64_t upload_position;
  // Response body: memory (body/length/capacity) or a descriptor.
  int response_fd;
  int64_t response_cap;
  int64_t response_bytes;
  unsigned char *body;
  size_t body_capacity;
  // Header block of the latest response.
  char *head;
  size_t head_length;
  size_t head_capacity;
};

int ccurl_multi_add(ccurl_multi *multi, ccurl_transfer *transfer) {
  return api.multi_add_handle(multi->handle, transfer->easy);
}

int ccurl_multi_remove(ccurl_multi *multi, ccurl_transfer *transfer) {
  return api.multi_remove_handle(multi->handle, transfer->easy);
}

int ccurl_multi_perform(ccurl_multi *multi, int *running) { return api.multi_perform(multi->handle, running); }

int ccurl_multi_poll(ccurl_multi *multi, int timeout_ms) {
  return api.multi_poll(multi->handle, NULL, 0, timeout_ms, NULL);
}

int ccurl_multi_wakeup(ccurl_multi *multi) { return api.multi_wakeup(multi->handle); }

ccurl_transfer *ccurl_multi_next_done(ccurl_multi *multi, int *result) {
  int left = 0;
  struct msg *m;
  while ((m = api.multi_info_read(multi->handle, &left)) != NULL) {
    if (m->msg != MSG_DONE) continue;
    char *owner = NULL;
    api.easy_getinfo(m->easy, INFO_PRIVATE, &owner);
    *result = m->data.result;
    return (ccurl_transfer *)owner;
  }
  return NULL;
}

// MARK: - Transfer

ccurl_transfer *ccurl_transfer_new(void) {
  if (load_status != 0) return NULL;
  ccurl_transfer *t = calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  t->easy = api.easy_init();
  if (t->easy == NULL) {
    free(t);
    return NULL;
  }
  t->upload_fd = -1;
  t->response_fd = -1;
  if (shared != NULL) api.easy_setopt(t->easy, OPT_SHARE, shared);  // kept across curl_easy_reset
  return t;
}

static void clear(ccurl_transfer *t) {
  if (t->headers != NULL) api.slist_free_all(t->headers);
  t->headers = NULL;
  if (t->resolve != NULL) api.slist_free_all(t->resolve);
  t->resolve = NULL;
  free(t->upload);
  t->upload = NULL;
  if (t->upload_fd >= 0) close(t->upload_fd);
  if (t->response_fd >= 0) close(t->response_fd);
  t->upload_fd = t->response_fd = -1;
  t->upload_offset = t->upload_length = t->upload_position = 0;
  t->response_cap = t->response_bytes = 0;
  // Keep small buffers for the next request; let big ones go.
  if (t->body_capacity > 64 * 1024) {
    free(t->body);
    t->body = NULL;
    t->body_capacity = 0;
  }
  t->head_length = 0;
  t->at_most_once = t->send_starts = 0;
  t->flags = 0;
  t->error[0] = 0;
  t->tag = 0;
}

void ccurl_transfer_free(ccurl_transfer *t) {
  if (t == NULL) return;
  clear(t);
  free(t->body);
  free(t->head);
  api.easy_cleanup(t->easy);
  free(t);
}

void ccurl_transfer_reset(ccurl_transfer *t) {
  clear(t);
  api.easy_reset(t->easy);
}

void ccurl_transfer_set_tag(ccurl_transfer *t, uint64_t tag) { t->tag = tag; }
uint64_t ccurl_transfer_tag(const ccurl_transfer *t) { return t->tag; }

int ccurl_transfer_setopt_long(ccurl_transfer *t, int option, long value) {
  return api.easy_setopt(t->easy, option, value);
}

int ccurl_transfer_setopt_string(ccurl_transfer *t, int option, const char *value) {
  return api.easy_setopt(t->easy, option, value);  // libcurl copies strings
}

int ccurl_transfer_setopt_off(ccurl_transfer *t, int option, int64_t value) {
  return api.easy_setopt(t->easy, option, (long long)value);
}

int ccurl_transfer_trust(ccurl_transfer *t, const char *ca_file) {
  int rc = 0;
  if (ca_file != NULL) rc |= api.easy_setopt(t->easy, CCURLOPT_CAINFO, ca_file);
  // Without a CA directory libcurl builds the store from the file once per multi handle and reuses it.
  if (ca_file != NULL || ca_file_is_default_trust) rc |= api.easy_setopt(t->easy, OPT_CAPATH, (char *)NULL);
  return rc == 0 ? 0 : -1;
}

int ccurl_transfer_add_header(ccurl_transfer *t, const char *line) {
  struct curl_slist *next = api.slist_append(t->headers, line);
  if (next == NULL) return -1;
  t->headers = next;
  return 0;
}

int ccurl_transfer_add_resolve(ccurl_transfer *t, const char *entry) {
  struct curl_slist *next = api.slist_append(t->resolve, entry);
  if (next == NULL) return -1;
  t->resolve = next;
  return 0;
}

int ccurl_transfer_set_body_bytes(ccurl_transfer *t, const void *bytes, size_t length) {
  t->upload = malloc(length > 0 ? length : 1);  // POSTFIELDS must not be NULL, even for an empty body
  if (t->upload == NULL) return -1;
  if (length > 0) memcpy(t->upload, bytes, length);
  t->upload_length = (int64_t)length;
  // The size first, so that libcurl never looks for a terminating NUL. Our copy outlives the transfer.
  int rc = api.easy_setopt(t->easy, OPT_POSTFIELDSIZE_LARGE, (long long)length);
  rc |= api.easy_setopt(t->easy, OPT_POSTFIELDS, (void *)t->upload);
  return rc == 0 ? 0 : -1;
}

int ccurl_transfer_set_upload_fd(ccurl_transfer *t, int fd, int64_t offset, int64_t length) {
  t->upload_fd = fd;
  api.easy_setopt(t->easy, OPT_UPLOAD_BUFFERSIZE, 65536L);
  t->upload_offset = offset;
  t->upload_length = length;
  return 0;
}

// Refuses early on a Content-Length over the cap; on_body enforces it for the rest.
void ccurl_transfer_set_response_memory(ccurl_transfer *t, int64_t cap) {
  t->response_cap = cap;
  api.easy_setopt(t->easy, CCURLOPT_MAXFILESIZE_LARGE, (long long)cap);
}

void ccurl_transfer_set_response_fd(ccurl_transfer *t, int fd, int64_t cap) {
  t->response_fd = fd;
  ccurl_transfer_set_response_memory(t, cap);
}

static size_t on_body(char *data, size_t size, size_t count, void *context) {
  ccurl_transfer *t = context;
  size_t n = size * count;
  if (t->response_bytes + (int64_t)n > t->response_cap) {
    t->flags |= CCURL_FLAG_BODY_TOO_LARGE;
    return 0;
  }
  if (t->response_fd >= 0) {
    size_t done = 0;
    while (done < n) {
      ssize_t w = write(t->response_fd, data + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        t->flags |= CCURL_FLAG_DOWNLOAD_WRITE_FAILED;
        return 0;
      }
      done += (size_t)w;
    }
  } else {
    size_t need = (size_t)t->response_bytes + n;
    if (need > t->body_capacity) {
      size_t capacity = t->body_capacity < 4096 ? 4096 : t->body_capacity;
      while (capacity < need) capacity *= 2;
      unsigned char *grown = realloc(t->body, capacity);
      if (grown == NULL) return 0;
      t->body = grown;
      t->body_capacity = capacity;
    }
    memcpy(t->body + t->response_bytes, data, n);
  }
  t->response_bytes += (int64_t)n;
  return n;
}

static size_t on_header(char *data, size_t size, size_t count, void *context) {
  ccurl_transfer *t = context;
  size_t n = size * count;
  // A new status line starts a new response (after 1xx or an unfollowed redirect): keep the last.
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) t->head_length = 0;
  if (t->head_length + n > HEADER_CAP) {
    t->flags |= CCURL_FLAG_HEADERS_TOO_LARGE;
    return 0;
  }
  if (t->head_length + n > t->head_capacity) {
    size_t capacity = t->head_capacity < 1024 ? 1024 : t->head_capacity;
    while (capacity < t->head_length + n) capacity *= 2;
    char *grown = realloc(t->head, capacity);
    if (grown == NULL) return 0;
    t->head = grown;
    t->head_capacity = capacity;
  }
  memcpy(t->head + t->head_length, data, n);
  t->head_length += n;
  return n;
}

static size_t on_read(char *buffer, size_t size, size_t count, void *context) {
  ccurl_transfer *t = context;
  int64_t left = t->upload_length - t->upload_position;
  size_t n = size * count;
  if (left <= 0) return 0;
  if ((int64_t)n > left) n = (size_t)left;
  if (t->upload_fd < 0) return READFUNC_ABORT;  // in-memory bodies go as POSTFIELDS, never through here
  ssize_t r;
  do r = pread(t->upload_fd, buffer, n, (off_t)(t->upload_offset + t->upload_position));
  while (r < 0 && errno == EINTR);
  if (r <= 0) {  // the file shrank or failed under us
    t->flags |= CCURL_FLAG_UPLOAD_READ_FAILED;
    return READFUNC_ABORT;
  }
  n = (size_t)r;
  t->upload_position += (int64_t)n;
  return n;
}

// Lets curl replay the body, e.g. when a reused connection turned out dead before the response.
static int on_seek(void *context, int64_t offset, int origin) {
  ccurl_transfer *t = context;
  if (origin != SEEK_SET) return SEEK_CANTSEEK;
  if (offset < 0 || offset > t->upload_length) return SEEK_FAIL;
  t->upload_position = offset;
  return SEEK_OK;
}

// Called by libcurl on a connection, new or reused, just before it sends the request. A second call for one
// transfer means libcurl is about to re-send it on its own, which only an at-most-once transfer refuses.
static int on_send_start(void *context, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  (void)primary_ip, (void)local_ip, (void)primary_port, (void)local_port;
  ccurl_transfer *t = context;
  if (++t->send_starts > 1) {
    t->flags |= CCURL_FLAG_RESEND_REFUSED;
    return PREREQFUNC_ABORT;
  }
  return PREREQFUNC_OK;
}

int ccurl_transfer_send_at_most_once(ccurl_transfer *t, long max_idle_seconds) {
  t->at_most_once = 1;
  return api.easy_setopt(t->easy, OPT_MAXAGE_CONN, max_idle_seconds) == 0 ? 0 : -1;
}

int ccurl_transfer_prepare(ccurl_transfer *t) {
  int rc = 0;
  rc |= api.easy_setopt(t->easy, OPT_NOSIGNAL, 1L);
  // libcurl gives an uploading transfer a 64 KiB buffer by default. Only file uploads need one that large; an
  // in-memory body needs none up to 64 KiB (it leaves with the headers) and a small one beyond.
  rc |= api.easy_setopt(t->easy, OPT_UPLOAD_BUFFERSIZE, t->upload_fd >= 0 ? 65536L : 16384L);
  rc |= api.easy_setopt(t->easy, OPT_PRIVATE, (void *)t);
  rc |= api.easy_setopt(t->easy, OPT_ERRORBUFFER, t->error);
  rc |= api.easy_setopt(t->easy, OPT_WRITEFUNCTION, on_body);
  rc |= api.easy_setopt(t->easy, OPT_WRITEDATA, (void *)t);
  rc |= api.easy_setopt(t->easy, OPT_HEADERFUNCTION, on_header);
  rc |= api.easy_setopt(t->easy, OPT_HEADERDATA, (void *)t);
  rc |= api.easy_setopt(t->easy, OPT_READFUNCTION, on_read);
  rc |= api.easy_setopt(t->easy, OPT_READDATA, (void *)t);
  rc |= api.easy_setopt(t->easy, OPT_SEEKFUNCTION, on_seek);
  rc |= api.easy_setopt(t->easy, OPT_SEEKDATA, (void *)t);
  if (t->headers != NULL) rc |= api.easy_setopt(t->easy, OPT_HTTPHEADER, t->headers);
  if (t->resolve != NULL) rc |= api.easy_setopt(t->easy, OPT_RESOLVE, t->resolve);
  if (t->at_most_once) {
    rc |= api.easy_setopt(t->easy, OPT_PREREQFUNCTION, on_send_start);
    rc |= api.easy_setopt(t->easy, OPT_PREREQDATA, (void *)t);
  }
  return rc;
}

long ccurl_transfer_status(ccurl_transfer *t) {
  long status = 0;
  api.easy_getinfo(t->easy, INFO_RESPONSE_CODE, &status);
  return status;
}

int64_t ccurl_transfer_request_size(ccurl_transfer *t) {
  long size = 0;
  api.easy_getinfo(t->easy, INFO_REQUEST_SIZE, &size);
  return size;
}

long ccurl_transfer_http_version(ccurl_transfer *t) {
  long version = 0;
  api.easy_getinfo(t->easy, INFO_HTTP_VERSION, &version);
  return version;
}

const char *ccurl_transfer_headers(const ccurl_transfer *t, size_t *length) {
  *length = t->head_length;
  return t->head;
}

void *ccurl_transfer_take_body(ccurl_transfer *t, size_t *length) {
  *length = (size_t)t->response_bytes;
  if (t->response_fd >= 0 || t->response_bytes == 0) {
    *length = 0;
    return NULL;
  }
  void *body = t->body;
  t->body = NULL;
  t->body_capacity = 0;
  return body;
}

int64_t ccurl_transfer_body_bytes(const ccurl_transfer *t) { return t->response_bytes; }
int ccurl_transfer_flags(const ccurl_transfer *t) { return t->flags; }
const char *ccurl_transfer_error(const ccurl_transfer *t) { return t->error; }

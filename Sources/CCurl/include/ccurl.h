#ifndef CCURL_H
#define CCURL_H

// The handful of libcurl declarations SidecarHTTP uses, resolved from libcurl.so.4 at run time with
// dlopen/dlsym so that no libcurl development package is needed to build. Numbers are libcurl's own
// (stable ABI since 7.x; checked against curl 7.88's curl.h and multi.h).
//
// Ownership: a ccurl_transfer is owned by exactly one thread at a time. While it is added to a
// multi handle only the thread driving that multi handle may touch it.

#include <stddef.h>
#include <stdint.h>

typedef struct ccurl_transfer ccurl_transfer;
typedef struct ccurl_multi ccurl_multi;

// CURLcode values the transport tells apart.
#define CCURLE_OK 0
#define CCURLE_UNSUPPORTED_PROTOCOL 1
#define CCURLE_URL_MALFORMAT 3
#define CCURLE_COULDNT_RESOLVE_PROXY 5
#define CCURLE_COULDNT_RESOLVE_HOST 6
#define CCURLE_COULDNT_CONNECT 7
#define CCURLE_WRITE_ERROR 23
#define CCURLE_READ_ERROR 26
#define CCURLE_OPERATION_TIMEDOUT 28
#define CCURLE_SSL_CONNECT_ERROR 35
#define CCURLE_ABORTED_BY_CALLBACK 42
#define CCURLE_INTERFACE_FAILED 45
#define CCURLE_SSL_ENGINE_NOTFOUND 53
#define CCURLE_SSL_CERTPROBLEM 58
#define CCURLE_SSL_CIPHER 59
#define CCURLE_PEER_FAILED_VERIFICATION 60
#define CCURLE_FILESIZE_EXCEEDED 63
#define CCURLE_SSL_CACERT_BADFILE 77
#define CCURLE_SSL_CRL_BADFILE 82
#define CCURLE_SSL_ISSUER_ERROR 83
#define CCURLE_SSL_PINNEDPUBKEYNOTMATCH 90
#define CCURLE_SSL_INVALIDCERTSTATUS 91
#define CCURLE_SSL_CLIENTCERT 98

// CURLoption numbers (type base + number: LONG 0, OBJECTPOINT 10000, OFF_T 30000).
#define CCURLOPT_URL 10002
#define CCURLOPT_USERAGENT 10018
#define CCURLOPT_CUSTOMREQUEST 10036
#define CCURLOPT_NOBODY 44
#define CCURLOPT_UPLOAD 46
#define CCURLOPT_FOLLOWLOCATION 52
#define CCURLOPT_SSL_VERIFYPEER 64
#define CCURLOPT_CAINFO 10065
#define CCURLOPT_MAXREDIRS 68
#define CCURLOPT_HTTPGET 80
#define CCURLOPT_SSL_VERIFYHOST 81
#define CCURLOPT_HTTP_VERSION 84
#define CCURLOPT_INFILESIZE_LARGE 30115
#define CCURLOPT_MAXFILESIZE_LARGE 30117
#define CCURLOPT_TIMEOUT_MS 155
#define CCURLOPT_CONNECTTIMEOUT_MS 156
#define CCURLOPT_PIPEWAIT 237
#define CCURLOPT_PROTOCOLS_STR 10318
#define CCURLOPT_REDIR_PROTOCOLS_STR 10319

// CURL_HTTP_VERSION_* values.
#define CCURL_HTTP_VERSION_1_1 2
#define CCURL_HTTP_VERSION_2TLS 4

// Bits of ccurl_transfer_flags: why our own callbacks stopped a transfer.
#define CCURL_FLAG_BODY_TOO_LARGE 1
#define CCURL_FLAG_HEADERS_TOO_LARGE 2
#define CCURL_FLAG_UPLOAD_READ_FAILED 4
#define CCURL_FLAG_DOWNLOAD_WRITE_FAILED 8
#define CCURL_FLAG_RESEND_REFUSED 16

/// Loads libcurl and runs curl_global_init once per process. Returns 0 on success; otherwise writes
/// a reason into `reason` (NUL-terminated, at most `reason_len` bytes) and returns -1. Thread-safe.
int ccurl_load(char *reason, size_t reason_len);
/// libcurl's version string (e.g. "libcurl/7.88.1 OpenSSL/3.0 nghttp2/1.52"); "" before loading.
const char *ccurl_version(void);
/// curl_easy_strerror.
const char *ccurl_strerror(int code);

/// A multi handle with HTTP/2 multiplexing on and the given connection caps (0 keeps curl's default).
ccurl_multi *ccurl_multi_new(long max_host_connections, long max_cached_connections);
void ccurl_multi_free(ccurl_multi *multi);
int ccurl_multi_add(ccurl_multi *multi, ccurl_transfer *transfer);
int ccurl_multi_remove(ccurl_multi *multi, ccurl_transfer *transfer);
int ccurl_multi_perform(ccurl_multi *multi, int *running);
/// curl_multi_poll without extra descriptors: sleeps until socket activity, curl's next timer,
/// `timeout_ms`, or ccurl_multi_wakeup.
int ccurl_multi_poll(ccurl_multi *multi, int timeout_ms);
/// curl_multi_wakeup: the one call that is safe from any thread.
int ccurl_multi_wakeup(ccurl_multi *multi);
/// The next finished transfer and its CURLcode, or NULL when none is left.
ccurl_transfer *ccurl_multi_next_done(ccurl_multi *multi, int *result);

/// A transfer: an easy handle plus the buffers and descriptors its callbacks use.
ccurl_transfer *ccurl_transfer_new(void);
void ccurl_transfer_free(ccurl_transfer *transfer);
/// curl_easy_reset plus clearing our state (closes descriptors, frees the header list), ready for reuse.
void ccurl_transfer_reset(ccurl_transfer *transfer);
void ccurl_transfer_set_tag(ccurl_transfer *transfer, uint64_t tag);
uint64_t ccurl_transfer_tag(const ccurl_transfer *transfer);

int ccurl_transfer_setopt_long(ccurl_transfer *transfer, int option, long value);
int ccurl_transfer_setopt_string(ccurl_transfer *transfer, int option, const char *value);
int ccurl_transfer_setopt_off(ccurl_transfer *transfer, int option, int64_t value);
/// Verifies the server against `ca_file` (a PEM bundle; NULL: libcurl's built-in default, the system's bundle), and
/// against nothing else: no CA directory, which lets libcurl load the bundle once per multi handle rather than once
/// per connection. Where libcurl's default is a directory alone, that default is left as it is.
int ccurl_transfer_trust(ccurl_transfer *transfer, const char *ca_file);
/// Appends a "Name: value" request header line (copied).
int ccurl_transfer_add_header(ccurl_transfer *transfer, const char *line);
/// Pins a host's addresses for this transfer ("host:port:address[,address]", IPv6 in brackets; CURLOPT_RESOLVE):
/// libcurl connects to them rather than resolving the name again.
int ccurl_transfer_add_resolve(ccurl_transfer *transfer, const char *entry);
/// An in-memory request body (copied), sent as POSTFIELDS: libcurl needs no upload buffer for it, and a body under
/// 64 KiB leaves in the same write as the headers. Makes the request a POST unless CUSTOMREQUEST says otherwise.
int ccurl_transfer_set_body_bytes(ccurl_transfer *transfer, const void *bytes, size_t length);
/// A request body of `length` bytes of `fd` at `offset` (the transfer takes ownership of `fd`), read in
/// chunks as curl asks for them; the caller sets UPLOAD and the body size.
int ccurl_transfer_set_upload_fd(ccurl_transfer *transfer, int fd, int64_t offset, int64_t length);
/// The response body goes to memory, or to `fd` (ownership taken); at most `cap` bytes either way.
void ccurl_transfer_set_response_memory(ccurl_transfer *transfer, int64_t cap);
void ccurl_transfer_set_response_fd(ccurl_transfer *transfer, int fd, int64_t cap);
/// Never lets libcurl re-send the request by itself. libcurl re-sends a request, on a new connection, when the
/// reused connection it went out on closes before any response byte: for a publish the platform may already have
/// processed, that is a duplicate post. Such a transfer instead fails with CCURL_FLAG_RESEND_REFUSED (the request
/// was sent). Only connections idle for at most `max_idle_seconds` are reused for it, which keeps a server's
/// keep-alive timeout from closing one just as the request leaves. Needs libcurl 7.80 (CURLOPT_PREREQFUNCTION).
int ccurl_transfer_send_at_most_once(ccurl_transfer *transfer, long max_idle_seconds);
/// Installs callbacks, the header list and the error buffer; call last, before adding to a multi.
int ccurl_transfer_prepare(ccurl_transfer *transfer);

long ccurl_transfer_status(ccurl_transfer *transfer);
/// Bytes of request (headers and body) handed to the connection; 0 means nothing was sent.
int64_t ccurl_transfer_request_size(ccurl_transfer *transfer);
/// 1 (HTTP/1.0), 2 (1.1), 3 (2), 30 (3) or 0.
long ccurl_transfer_http_version(ccurl_transfer *transfer);
/// The raw header block of the final response (status line first, CRLF-separated).
const char *ccurl_transfer_headers(const ccurl_transfer *transfer, size_t *length);
/// Hands over the in-memory body (free() it); NULL with length 0 when empty.
void *ccurl_transfer_take_body(ccurl_transfer *transfer, size_t *length);
int64_t ccurl_transfer_body_bytes(const ccurl_transfer *transfer);
int ccurl_transfer_flags(const ccurl_transfer *transfer);
/// curl's detailed error text for the last failure ("" when none).
const char *ccurl_transfer_error(const ccurl_transfer *transfer);

#endif

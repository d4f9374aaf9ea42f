/*
 * common.h: argument checking and return helpers shared by every addon file.
 *
 * Responsible for turning JS arguments into C values (or throwing a TypeError
 * that quotes the function's usage line) and for turning results into JS
 * numbers. No syscalls live here. Leans on the Node-API reference
 * (napi_get_cb_info, napi_get_typedarray_info) and errno(3).
 *
 * Convention: every exported function has a usage string such as
 *   "notifRespond(fd, idLo, idHi, val, error, flags)"
 * and the helpers take the argument index; the argument's name is read back
 * out of the usage string, so error messages look like
 *   "notifRespond(fd, idLo, idHi, val, error, flags): fd must be a number".
 */
#ifndef SOCKSWITCH_COMMON_H
#define SOCKSWITCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <node_api.h>

#define SW_MAX_ARGS 8

typedef struct {
  napi_env env;
  const char *usage;
  size_t argc;
  napi_value argv[SW_MAX_ARGS];
  void *data; /* the function's data pointer (napi_create_function) */
} sw_args;

/* Copies the name of argument `idx` out of `usage` into `out`. */
static inline void sw_arg_name(const char *usage, size_t idx, char *out, size_t outlen) {
  const char *p = strchr(usage, '(');
  size_t n = 0;
  snprintf(out, outlen, "argument %zu", idx + 1);
  if (p == NULL) return;
  p++;
  while (*p != '\0' && n < idx) {
    if (*p == ',') n++;
    p++;
  }
  while (*p == ' ') p++;
  size_t len = strcspn(p, ",):= ");
  if (len == 0) return;
  if (len >= outlen) len = outlen - 1;
  memcpy(out, p, len);
  out[len] = '\0';
}

/* Throws "usage: <name> <what>" as a TypeError. Always returns false. */
static inline bool sw_type_error(sw_args *a, size_t idx, const char *what) {
  char name[48];
  char msg[256];
  sw_arg_name(a->usage, idx, name, sizeof name);
  snprintf(msg, sizeof msg, "%s: %s %s", a->usage, name, what);
  napi_throw_type_error(a->env, NULL, msg);
  return false;
}

/* Reads the arguments; throws a TypeError unless at least `want` were given. */
static inline bool sw_get_args(napi_env env, napi_callback_info info, sw_args *a, const char *usage,
                               size_t want) {
  a->env = env;
  a->usage = usage;
  a->argc = SW_MAX_ARGS;
  a->data = NULL;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, &a->data) != napi_ok) return false;
  if (a->argc < want) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: expected %zu arguments, got %zu", usage, want, a->argc);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  return true;
}

static inline bool sw_is_number(sw_args *a, size_t idx) {
  napi_valuetype t;
  return napi_typeof(a->env, a->argv[idx], &t) == napi_ok && t == napi_number;
}

/* Any number, truncated to int32 (like `x | 0`). */
static inline bool sw_i32(sw_args *a, size_t idx, int32_t *out) {
  if (!sw_is_number(a, idx)) return sw_type_error(a, idx, "must be a number");
  return napi_get_value_int32(a->env, a->argv[idx], out) == napi_ok;
}

/* Any number, truncated to uint32 (like `x >>> 0`). */
static inline bool sw_u32(sw_args *a, size_t idx, uint32_t *out) {
  if (!sw_is_number(a, idx)) return sw_type_error(a, idx, "must be a number");
  return napi_get_value_uint32(a->env, a->argv[idx], out) == napi_ok;
}

/* Any number, as int64 (non-integers truncated toward zero). */
static inline bool sw_i64(sw_args *a, size_t idx, int64_t *out) {
  if (!sw_is_number(a, idx)) return sw_type_error(a, idx, "must be a number");
  return napi_get_value_int64(a->env, a->argv[idx], out) == napi_ok;
}

/* A non-negative integer number up to 2^53 (memory addresses, lengths). */
static inline bool sw_u53(sw_args *a, size_t idx, uint64_t *out) {
  double d;
  if (!sw_is_number(a, idx)) return sw_type_error(a, idx, "must be a number");
  if (napi_get_value_double(a->env, a->argv[idx], &d) != napi_ok) return false;
  if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d)
    return sw_type_error(a, idx, "must be a non-negative integer no larger than 2^53");
  *out = (uint64_t)d;
  return true;
}

/* A typed array of exactly `type`; returns its data and length in elements. */
static inline bool sw_typed(sw_args *a, size_t idx, napi_typedarray_type type, const char *tname,
                            void **data, size_t *length) {
  bool is;
  napi_typedarray_type got;
  char what[64];
  snprintf(what, sizeof what, "must be a %s", tname);
  if (napi_is_typedarray(a->env, a->argv[idx], &is) != napi_ok || !is) return sw_type_error(a, idx, what);
  if (napi_get_typedarray_info(a->env, a->argv[idx], &got, length, data, NULL, NULL) != napi_ok)
    return false;
  if (got != type) return sw_type_error(a, idx, what);
  return true;
}

/* A Uint8Array (Buffers are Uint8Arrays too); *len is byteLength. */
static inline bool sw_bytes(sw_args *a, size_t idx, uint8_t **data, size_t *len) {
  return sw_typed(a, idx, napi_uint8_array, "Uint8Array", (void **)data, len);
}

/* Throws unless `len` fits in a buffer of `cap` bytes (arg idx is the length). */
static inline bool sw_len_fits(sw_args *a, size_t idx, int64_t len, size_t cap) {
  if (len < 0 || (uint64_t)len > cap) return sw_type_error(a, idx, "must be between 0 and buf.byteLength");
  return true;
}

static inline napi_value sw_num(napi_env env, int64_t v) {
  napi_value r = NULL;
  napi_create_int64(env, v, &r);
  return r;
}

/* Result of a libc call that returns -1 and sets errno: the value, or -errno. */
static inline napi_value sw_ret(napi_env env, int64_t rc) {
  return sw_num(env, rc < 0 ? -(int64_t)errno : rc);
}

/* Registration entry: addon.c walks every file's table. */
typedef struct {
  const char *name;
  napi_callback fn;
} sw_export;

/* Each file exports its functions through one of these (see addon.c). */
extern const sw_export sw_notify_exports[];
extern const sw_export sw_diag_exports[];
extern const sw_export sw_fdops_exports[];
extern const sw_export sw_unix_exports[];
extern const sw_export sw_proc_exports[];
extern const sw_export sw_poll_exports[];
extern const sw_export sw_dgram_exports[];
extern const sw_export sw_ptrace_exports[];
extern const sw_export sw_closer_exports[];
extern const sw_export sw_netns_exports[];
extern const sw_export sw_bpf_exports[];
extern const sw_export sw_bpf_ring_exports[];
extern const sw_export sw_kernel_exports[];
extern const sw_export sw_responder_exports[];

/* notify.c: kernel sizes read at module load; 0 until then. */
/* closer.c: a connect/accept on an app's socket bounded in time (EINTR past the bound). */
bool sw_bounded_begin(void);
void sw_bounded_end(void);
bool sw_notify_init(napi_env env);

/* notify.c: the size RECV may write (the running kernel's struct, at least ours), and a
 * received call as the words notifRecv gives JavaScript (src/trap/notification.ts). */
#define SW_NOTIF_WORDS 18
struct seccomp_notif;
size_t sw_notif_size(void);
void sw_notif_words(const struct seccomp_notif *n, uint32_t out[SW_NOTIF_WORDS]);

/* closer.c, for the socket responder (responder.c): the watchdog started for the event
 * loop's thread (call there first); then, on each of the responder's threads (at most
 * SW_RESPONDERS_MAX), that thread taken under the watchdog too, and closing a TCP socket it
 * made, bounded in time. */
#define SW_RESPONDERS_MAX 64
/* answer.c: a trapped socket() answered on a responder thread (see there). */
bool sw_answer_socket(int listener, int map_fd, const uint8_t *value, const struct seccomp_notif *n);
bool sw_watchdog_start(void);
void sw_responder_guard(void);
int sw_responder_close_tcp(int fd);

/* poll.c: per-environment watcher table; the pointer is passed as function data. */
void *sw_poll_state_new(napi_env env);

#endif

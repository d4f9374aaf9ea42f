/*
 * bpf.c: loading the BPF programs (native/bpf/NAME.bpf.c) and the map syscalls.
 *
 * Responsible for opening and loading an embedded object (a libbpf skeleton's
 * bytes, built by native/bpf/Makefile) with its maps pinned in bpffs, attaching
 * its cgroup programs through links (pinned, or swapped into a pinned link left
 * by an earlier daemon), the map syscalls (update, lookup, delete, next key),
 * mounting bpffs, and handing back libbpf's own messages for error reports
 * (ring buffers: bpf-ring.c). No decisions: which object, which
 * cgroup and what goes into the maps is TypeScript's (src/bpf/).
 *
 * Built without BPF (out/enabled is 0: clang, bpftool or libbpf-dev missing),
 * every function but bpfBuilt returns -ENOSYS.
 *
 * Leans on bpf(2), libbpf's API (bpf_object__open_mem, bpf_map__set_pin_path,
 * bpf_program__attach_cgroup, bpf_link__pin, bpf_link__update_program) and
 * mount(2) and pthread_sigmask(3) (no signal interrupts the verifier).
 */
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#ifdef SW_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "objects.h"
#endif

#define SW_BPF_HANDLES 16
#define SW_BPF_LINKS 32
#define SW_BPF_LOG 4096

/* A string argument into buf (at most len - 1 bytes); false after throwing. */
static bool sw_str(sw_args *a, size_t idx, char *buf, size_t len) {
  napi_valuetype t;
  size_t got;
  if (napi_typeof(a->env, a->argv[idx], &t) != napi_ok || t != napi_string)
    return sw_type_error(a, idx, "must be a string");
  if (napi_get_value_string_utf8(a->env, a->argv[idx], buf, len, &got) != napi_ok) return false;
  if (got >= len - 1) return sw_type_error(a, idx, "is too long");
  return true;
}

/* bpfBuilt() -> 1 when the addon was built with the BPF programs, 0 when not. */
static napi_value bpf_built(napi_env env, napi_callback_info info) {
  (void)info;
#ifdef SW_HAVE_BPF
  return sw_num(env, 1);
#else
  return sw_num(env, 0);
#endif
}

/*
 * bpfMount(fstype, path) -> 0 | -errno: mount(2) of a bpffs ("bpf", mode 0700) or of the
 * cgroup v2 hierarchy ("cgroup2") at path (an existing directory); -EINVAL for any other type.
 */
static napi_value bpf_mount(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfMount(fstype, path)";
  sw_args a;
  char type[16], path[512];
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_str(&a, 0, type, sizeof type) ||
      !sw_str(&a, 1, path, sizeof path))
    return NULL;
  if (strcmp(type, "bpf") == 0) return sw_ret(env, mount("bpf", path, "bpf", 0, "mode=0700"));
  if (strcmp(type, "cgroup2") == 0) return sw_ret(env, mount("cgroup2", path, "cgroup2", 0, NULL));
  return sw_num(env, -EINVAL);
}

#ifdef SW_HAVE_BPF

/* libbpf's messages since the last bpfLog(), cut to the last SW_BPF_LOG bytes. */
static char log_buf[SW_BPF_LOG];
static size_t log_len;

static int on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[1024];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n <= 0) return 0;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  if ((size_t)n >= SW_BPF_LOG) return 0;
  if (log_len + (size_t)n > SW_BPF_LOG) {
    size_t drop = log_len + (size_t)n - SW_BPF_LOG;
    memmove(log_buf, log_buf + drop, log_len - drop);
    log_len -= drop;
  }
  memcpy(log_buf + log_len, line, (size_t)n);
  log_len += (size_t)n;
  return n;
}

typedef const void *(*elf_bytes_fn)(size_t *sz);

static const struct {
  const char *name;
  elf_bytes_fn bytes;
} embedded[] = {
#define SW_BPF_OBJECT(n) {#n, n##__elf_bytes},
    SW_BPF_OBJECTS
#undef SW_BPF_OBJECT
};

typedef struct {
  struct bpf_object *obj;
  struct bpf_link *links[SW_BPF_LINKS];
  int nlinks;
} sw_bpf_handle;

static sw_bpf_handle handles[SW_BPF_HANDLES]; /* slot i is handle i + 1 */

static sw_bpf_handle *handle_of(int32_t id) {
  if (id < 1 || id > SW_BPF_HANDLES || handles[id - 1].obj == NULL) return NULL;
  return &handles[id - 1];
}

/*
 * bpfOpen(name, pinDir) -> handle (>= 1) | -errno. Opens the embedded object
 * `name` and loads it. With a pinDir (an existing directory in bpffs) every map
 * is pinned there by its name, and a map already pinned there (by an earlier
 * daemon) is reused with its contents. bpfLog() tells why a load failed.
 */
static napi_value bpf_open(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfOpen(name, pinDir)";
  sw_args a;
  char name[64], dir[400], path[512];
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_str(&a, 0, name, sizeof name) ||
      !sw_str(&a, 1, dir, sizeof dir))
    return NULL;
  libbpf_set_print(on_libbpf_print);
  elf_bytes_fn bytes = NULL;
  for (size_t i = 0; i < sizeof embedded / sizeof embedded[0]; i++)
    if (strcmp(embedded[i].name, name) == 0) bytes = embedded[i].bytes;
  if (bytes == NULL) return sw_num(env, -ENOENT);
  int slot = -1;
  for (int i = 0; i < SW_BPF_HANDLES && slot < 0; i++)
    if (handles[i].obj == NULL) slot = i;
  if (slot < 0) return sw_num(env, -EMFILE);

  size_t sz;
  const void *elf = bytes(&sz);
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
  struct bpf_object *obj = bpf_object__open_mem(elf, sz, &opts);
  if (obj == NULL) return sw_num(env, -errno);
  struct bpf_map *map;
  int err = 0;
  if (dir[0] != '\0') {
    bpf_object__for_each_map(map, obj) {
      if (bpf_map__is_internal(map)) continue;
      if (snprintf(path, sizeof path, "%s/%s", dir, bpf_map__name(map)) >= (int)sizeof path) {
        err = -ENAMETOOLONG;
        break;
      }
      err = bpf_map__set_pin_path(map, path);
      if (err) break;
    }
  }
  if (!err) {
    /* The verifier gives up with EAGAIN when a signal is pending (libbpf retries five
     * times): under a sampling profiler (SIGPROF every millisecond) or a burst of
     * SIGCHLD the programs would never load. Signals wait until the load is done. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    err = bpf_object__load(obj);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  if (err) {
    bpf_object__close(obj);
    return sw_num(env, err < 0 ? err : -err);
  }
  handles[slot].obj = obj;
  handles[slot].nlinks = 0;
  return sw_num(env, slot + 1);
}

/* bpfMapFd(handle, map) -> fd | -errno (the object owns the fd: do not close it). */
static napi_value bpf_map_fd(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfMapFd(handle, map)";
  sw_args a;
  int32_t id;
  char name[64];
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &id) || !sw_str(&a, 1, name, sizeof name))
    return NULL;
  sw_bpf_handle *h = handle_of(id);
  if (h == NULL) return sw_num(env, -EBADF);
  struct bpf_map *m = bpf_object__find_map_by_name(h->obj, name);
  if (m == NULL) return sw_num(env, -ENOENT);
  return sw_num(env, bpf_map__fd(m));
}

/*
 * bpfAttachCgroup(handle, program, cgroupFd, linkPath) -> 0 | -errno. Attaches
 * the program to the cgroup through a link (several programs per hook may
 * coexist: BPF_F_ALLOW_MULTI). With a linkPath, a link pinned there already (an
 * earlier daemon's) gets this program instead (bpf_link__update_program: the
 * hook is never left empty); otherwise the new link is pinned there. The link
 * lives until bpfClose and, when pinned, until its pin is removed.
 */
static napi_value bpf_attach_cgroup(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfAttachCgroup(handle, program, cgroupFd, linkPath)";
  sw_args a;
  int32_t id, cgfd;
  char prog_name[64], path[512];
  if (!sw_get_args(env, info, &a, usage, 4) || !sw_i32(&a, 0, &id) ||
      !sw_str(&a, 1, prog_name, sizeof prog_name) || !sw_i32(&a, 2, &cgfd) || !sw_str(&a, 3, path, sizeof path))
    return NULL;
  sw_bpf_handle *h = handle_of(id);
  if (h == NULL) return sw_num(env, -EBADF);
  if (h->nlinks >= SW_BPF_LINKS) return sw_num(env, -EMFILE);
  struct bpf_program *p = bpf_object__find_program_by_name(h->obj, prog_name);
  if (p == NULL) return sw_num(env, -ENOENT);
  struct bpf_link *link = NULL;
  if (path[0] != '\0' && access(path, F_OK) == 0) {
    link = bpf_link__open(path);
    if (link == NULL) return sw_num(env, -errno);
    int err = bpf_link__update_program(link, p);
    if (err) {
      bpf_link__disconnect(link);
      bpf_link__destroy(link);
      return sw_num(env, err);
    }
  } else {
    link = bpf_program__attach_cgroup(p, cgfd);
    if (link == NULL) return sw_num(env, -errno);
    if (path[0] != '\0') {
      int err = bpf_link__pin(link, path);
      if (err) {
        bpf_link__destroy(link);
        return sw_num(env, err);
      }
    }
  }
  h->links[h->nlinks++] = link;
  return sw_num(env, 0);
}

/*
 * bpfClose(handle) -> 0 | -EBADF. Closes the object and its links: an unpinned
 * link detaches its program; a pinned one stays attached (a restarted daemon
 * takes it over).
 */
static napi_value bpf_close(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfClose(handle)";
  sw_args a;
  int32_t id;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_i32(&a, 0, &id)) return NULL;
  sw_bpf_handle *h = handle_of(id);
  if (h == NULL) return sw_num(env, -EBADF);
  for (int i = 0; i < h->nlinks; i++) bpf_link__destroy(h->links[i]);
  bpf_object__close(h->obj);
  memset(h, 0, sizeof *h);
  return sw_num(env, 0);
}

/* bpfLog() -> libbpf's warnings since the last call (and clears them). */
static napi_value bpf_log(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, log_buf, log_len, &s);
  log_len = 0;
  return s;
}

/* bpfMapUpdate(fd, key, value, flags) -> 0 | -errno. For socket storage the key is a socket fd (4 bytes). */
static napi_value bpf_map_update(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfMapUpdate(fd, key: Uint8Array, value: Uint8Array, flags)";
  sw_args a;
  int32_t fd;
  uint32_t flags;
  uint8_t *k, *v;
  size_t kl, vl;
  if (!sw_get_args(env, info, &a, usage, 4) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &k, &kl) ||
      !sw_bytes(&a, 2, &v, &vl) || !sw_u32(&a, 3, &flags))
    return NULL;
  int r = bpf_map_update_elem(fd, k, v, flags);
  return sw_num(env, r < 0 ? -errno : 0);
}

/* bpfMapLookup(fd, key, valueOut) -> 0 | -errno (-ENOENT: no such key). */
static napi_value bpf_map_lookup(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfMapLookup(fd, key: Uint8Array, valueOut: Uint8Array)";
  sw_args a;
  int32_t fd;
  uint8_t *k, *v;
  size_t kl, vl;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &k, &kl) ||
      !sw_bytes(&a, 2, &v, &vl))
    return NULL;
  int r = bpf_map_lookup_elem(fd, k, v);
  return sw_num(env, r < 0 ? -errno : 0);
}

/* bpfMapDelete(fd, key) -> 0 | -errno. */
static napi_value bpf_map_delete(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfMapDelete(fd, key: Uint8Array)";
  sw_args a;
  int32_t fd;
  uint8_t *k;
  size_t kl;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &k, &kl)) return NULL;
  int r = bpf_map_delete_elem(fd, k);
  return sw_num(env, r < 0 ? -errno : 0);
}

/* bpfMapNextKey(fd, key | null, nextOut) -> 0 | -errno (-ENOENT after the last key). */
static napi_value bpf_map_next_key(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfMapNextKey(fd, key: Uint8Array | null, nextOut: Uint8Array)";
  sw_args a;
  int32_t fd;
  uint8_t *k = NULL, *n;
  size_t kl, nl;
  napi_valuetype t;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &fd)) return NULL;
  if (napi_typeof(env, a.argv[1], &t) != napi_ok) return NULL;
  if (t != napi_null && !sw_bytes(&a, 1, &k, &kl)) return NULL;
  if (!sw_bytes(&a, 2, &n, &nl)) return NULL;
  int r = bpf_map_get_next_key(fd, k, n);
  return sw_num(env, r < 0 ? -errno : 0);
}

#else /* built without BPF */

static napi_value bpf_enosys(napi_env env, napi_callback_info info) {
  (void)info;
  return sw_num(env, -ENOSYS);
}

static napi_value bpf_log(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, "this addon was built without BPF", NAPI_AUTO_LENGTH, &s);
  return s;
}

#define bpf_open bpf_enosys
#define bpf_map_fd bpf_enosys
#define bpf_attach_cgroup bpf_enosys
#define bpf_close bpf_enosys
#define bpf_map_update bpf_enosys
#define bpf_map_lookup bpf_enosys
#define bpf_map_delete bpf_enosys
#define bpf_map_next_key bpf_enosys

#endif

const sw_export sw_bpf_exports[] = {
    {"bpfBuilt", bpf_built},
    {"bpfMount", bpf_mount},
    {"bpfOpen", bpf_open},
    {"bpfMapFd", bpf_map_fd},
    {"bpfAttachCgroup", bpf_attach_cgroup},
    {"bpfClose", bpf_close},
    {"bpfLog", bpf_log},
    {"bpfMapUpdate", bpf_map_update},
    {"bpfMapLookup", bpf_map_lookup},
    {"bpfMapDelete", bpf_map_delete},
    {"bpfMapNextKey", bpf_map_next_key},
    {NULL, NULL},
};

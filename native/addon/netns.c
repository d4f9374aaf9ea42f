/*
 * netns.c: the daemon's shadow network namespaces.
 *
 * A shadow namespace holds an app's virtual addresses on its `lo`, and the daemon makes a
 * shadow socket there for every bind of the app, so that the kernel itself decides what the
 * app's bind would give on a host where its virtual addresses were real (conflicts, port 0,
 * IPV6_V6ONLY, SO_REUSEADDR/SO_REUSEPORT). Responsible for creating such a namespace
 * (netnsCreate), making a socket inside one (socketIn), and binding without
 * CAP_NET_BIND_SERVICE for an app that lacks it (bindUnprivileged).
 *
 * Both namespace functions switch the calling (main) thread into the namespace and back
 * before they return: setns(2) and unshare(2) act on the calling thread only, so libuv's
 * other threads never see it, and nothing else runs on this thread meanwhile. If the way
 * back fails the process aborts: every later socket of the daemon would otherwise be made in
 * the wrong namespace. Leans on unshare(2), setns(2), network_namespaces(7), capset(2),
 * capabilities(7) and ../shared/rtnl.c.
 */
#include "common.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../shared/rtnl.h"

#define ADDR_RECORD 17 /* family (4 or 6), then 16 address bytes (4 used for IPv4) */

/* The daemon's own network namespace, opened on first use. */
static int home_ns = -1;

static int home(void) {
  if (home_ns < 0) home_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  return home_ns;
}

static void go_home(void) {
  if (setns(home_ns, CLONE_NEWNET) < 0) {
    fprintf(stderr, "sockswitch: cannot return to the daemon's network namespace (%s); aborting\n",
            strerror(errno));
    abort();
  }
}

/* Sets up the new namespace of the calling thread: lo up, the addresses on it. 0 or errno. */
static int populate(const uint8_t *addrs, size_t n) {
  int ifindex;
  int err = rtnl_lo_up(&ifindex);
  if (err || n == 0) return err;
  int s = rtnl_open();
  if (s < 0) return -s;
  for (size_t i = 0; i < n && !err; i++) {
    const uint8_t *r = addrs + i * ADDR_RECORD;
    char why[256];
    err = rtnl_add_address(s, ifindex, r[0] == 6 ? AF_INET6 : AF_INET, r + 1, (unsigned)i + 1, why, sizeof why);
  }
  close(s);
  return err;
}

/*
 * netnsCreate(addrs: Uint8Array) -> fd | -errno: a new network namespace with lo up and each
 * address of addrs (17-byte records: 4 or 6, then the address) on it; the fd refers to it
 * (close it to let the namespace go once its sockets are closed too).
 */
static napi_value ns_create(napi_env env, napi_callback_info info) {
  static const char usage[] = "netnsCreate(addrs: Uint8Array)";
  sw_args a;
  uint8_t *addrs;
  size_t len;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_bytes(&a, 0, &addrs, &len)) return NULL;
  if (len % ADDR_RECORD != 0) {
    sw_type_error(&a, 0, "must hold 17-byte address records");
    return NULL;
  }
  if (home() < 0) return sw_num(env, -errno);
  if (unshare(CLONE_NEWNET) < 0) return sw_num(env, -errno);
  int err = populate(addrs, len / ADDR_RECORD);
  int fd = err ? -1 : open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (!err && fd < 0) err = errno;
  go_home();
  return sw_num(env, err ? -err : fd);
}

/* socketIn(nsFd, domain, type, protocol) -> fd | -errno: socket(2) made inside that namespace. */
static napi_value ns_socket_in(napi_env env, napi_callback_info info) {
  static const char usage[] = "socketIn(nsFd, domain, type, protocol)";
  sw_args a;
  int32_t ns, domain, type, proto;
  if (!sw_get_args(env, info, &a, usage, 4) || !sw_i32(&a, 0, &ns) || !sw_i32(&a, 1, &domain) ||
      !sw_i32(&a, 2, &type) || !sw_i32(&a, 3, &proto))
    return NULL;
  if (home() < 0) return sw_num(env, -errno);
  if (setns(ns, CLONE_NEWNET) < 0) return sw_num(env, -errno);
  int fd = socket(domain, type | SOCK_CLOEXEC, proto);
  int err = fd < 0 ? errno : 0;
  go_home();
  return sw_num(env, fd < 0 ? -err : fd);
}

/*
 * bindUnprivileged(fd, addr: Uint8Array, len) -> 0 | -errno: bind(2) with
 * CAP_NET_BIND_SERVICE out of this thread's effective set for the call, so that the kernel
 * answers a port below ip_unprivileged_port_start as it would to an app without it (EACCES).
 */
static napi_value ns_bind_unprivileged(napi_env env, napi_callback_info info) {
  static const char usage[] = "bindUnprivileged(fd, addr: Uint8Array, len)";
  sw_args a;
  int32_t fd;
  uint8_t *addr;
  size_t cap;
  int64_t len;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &fd) || !sw_bytes(&a, 1, &addr, &cap) ||
      !sw_i64(&a, 2, &len) || !sw_len_fits(&a, 2, len, cap))
    return NULL;
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct saved[2], dropped[2];
  if (syscall(SYS_capget, &h, saved) < 0) return sw_num(env, -errno);
  memcpy(dropped, saved, sizeof saved);
  dropped[CAP_NET_BIND_SERVICE / 32].effective &= ~(1u << (CAP_NET_BIND_SERVICE % 32));
  if (syscall(SYS_capset, &h, dropped) < 0) return sw_num(env, -errno);
  int r = bind(fd, (const struct sockaddr *)addr, (socklen_t)len);
  int err = r < 0 ? errno : 0;
  if (syscall(SYS_capset, &h, saved) < 0) {
    fprintf(stderr, "sockswitch: cannot restore the daemon's capabilities (%s); aborting\n", strerror(errno));
    abort();
  }
  return sw_num(env, -err);
}

const sw_export sw_netns_exports[] = {
    {"netnsCreate", ns_create},
    {"socketIn", ns_socket_in},
    {"bindUnprivileged", ns_bind_unprivileged},
    {NULL, NULL},
};

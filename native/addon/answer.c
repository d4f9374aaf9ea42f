/*
 * answer.c: a trapped socket(2) answered with a socket of the daemon, for the socket
 * responder's threads (responder.c).
 *
 * Responsible for sw_answer_socket: what src/trap/socket.ts does for such a call, in C so
 * that a responder thread answers without a round trip through JavaScript. A socket() with
 * arguments the daemon serves by making a socket (AF_INET or AF_INET6; SOCK_STREAM with
 * protocol 0 or IPPROTO_TCP, SOCK_DGRAM with 0 or IPPROTO_UDP) gets the same socket(2) in the
 * daemon's network namespace, stamped with the bytes TypeScript gave for the app (an update
 * of the socket storage map it named, keyed by the fd), installed with ADDFD and FLAG_SEND;
 * the daemon's copy is then closed (a TCP one bounded in time: closer.c). Anything else, and
 * such a call when socket(2) or the stamp fails, is left to JavaScript, which answers it with
 * the kernel's errno or logs why it refused. Leans on seccomp_unotify(2), socket(2) and
 * bpf(2) (BPF_MAP_UPDATE_ELEM on a BPF_MAP_TYPE_SK_STORAGE map).
 */
#include "common.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * The call n, received on listener: true if answered here (installed, or refused with the
 * errno the install failed with); false if JavaScript is to answer it (nothing was sent).
 * value: the stamp, as many bytes as map_fd's values. Call on a responder thread (closer.c).
 */
bool sw_answer_socket(int listener, int map_fd, const uint8_t *value, const struct seccomp_notif *n) {
  if (n->data.nr != SYS_socket) return false;
  int domain = (int)(uint32_t)n->data.args[0];
  int type = (int)(uint32_t)n->data.args[1];
  int protocol = (int)(uint32_t)n->data.args[2];
  int kind = type & 0xf;
  if (domain != AF_INET && domain != AF_INET6) return false;
  bool tcp = kind == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
  bool udp = kind == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP);
  if (!tcp && !udp) return false;
  int fd = socket(domain, type, protocol);
  if (fd < 0) return false;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = (uint32_t)map_fd;
  attr.key = (uint64_t)(uintptr_t)&fd;
  attr.value = (uint64_t)(uintptr_t)value;
  attr.flags = BPF_ANY;
  if (syscall(SYS_bpf, BPF_MAP_UPDATE_ELEM, &attr, sizeof attr) != 0) {
    close(fd);
    return false;
  }
  struct seccomp_notif_addfd add;
  memset(&add, 0, sizeof add);
  add.id = n->id;
  add.flags = SECCOMP_ADDFD_FLAG_SEND;
  add.srcfd = (uint32_t)fd;
  add.newfd_flags = (type & SOCK_CLOEXEC) ? O_CLOEXEC : 0;
  int r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
  int err = errno;
  if (tcp)
    sw_responder_close_tcp(fd);
  else
    close(fd);
  if (r < 0 && err != ENOENT) {
    /* Not installed (e.g. EMFILE in the app): the call is the daemon's to answer still. */
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = n->id;
    resp.error = -err;
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }
  return true;
}

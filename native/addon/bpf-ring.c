/*
 * bpf-ring.c: reading a BPF ring buffer map (BPF_MAP_TYPE_RINGBUF) without
 * libbpf's callbacks, so that nothing is consumed that the caller has no room
 * for: the daemon maps it, watches its fd for readability, and copies whole
 * records into a buffer of its own (src/bpf/datapath-events.ts).
 *
 * Built without BPF, every function returns -ENOSYS.
 *
 * Leans on the kernel's ring buffer layout (Documentation/bpf/ringbuf.rst),
 * bpf(2) (BPF_OBJ_GET_INFO_BY_FD) and mmap(2).
 */
#include "common.h"

#include <sys/mman.h>
#include <unistd.h>

#ifdef SW_HAVE_BPF
#include <bpf/bpf.h>
#include <linux/bpf.h>

#define SW_BPF_RINGS 8

/*
 * A BPF_MAP_TYPE_RINGBUF read directly: the consumer position page (read-write)
 * and the producer page followed by the data pages mapped twice over
 * (read-only), as the kernel lays them out.
 */
typedef struct {
  int fd;
  size_t size; /* data size: the map's max_entries, a power of two */
  unsigned long *consumer;
  unsigned long *producer;
  uint8_t *data;
  size_t page;
} sw_ring;

static sw_ring rings[SW_BPF_RINGS]; /* slot i is id i + 1; fd 0 marks a free slot */

#define RINGBUF_BUSY (1u << 31)
#define RINGBUF_DISCARD (1u << 30)
#define RINGBUF_HDR 8

/* bpfRingOpen(mapFd) -> id | -errno. Poll the map's fd for readability (watch). */
static napi_value bpf_ring_open(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfRingOpen(mapFd)";
  sw_args a;
  int32_t fd;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_i32(&a, 0, &fd)) return NULL;
  struct bpf_map_info mi;
  uint32_t len = sizeof mi;
  memset(&mi, 0, sizeof mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) < 0) return sw_num(env, -errno);
  if (mi.type != BPF_MAP_TYPE_RINGBUF) return sw_num(env, -EINVAL);
  int slot = -1;
  for (int i = 0; i < SW_BPF_RINGS && slot < 0; i++)
    if (rings[i].fd == 0) slot = i;
  if (slot < 0) return sw_num(env, -EMFILE);
  sw_ring *r = &rings[slot];
  r->page = (size_t)sysconf(_SC_PAGESIZE);
  r->size = mi.max_entries;
  void *c = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (c == MAP_FAILED) return sw_num(env, -errno);
  void *p = mmap(NULL, r->page + 2 * r->size, PROT_READ, MAP_SHARED, fd, (off_t)r->page);
  if (p == MAP_FAILED) {
    int e = errno;
    munmap(c, r->page);
    return sw_num(env, -e);
  }
  r->fd = fd;
  r->consumer = c;
  r->producer = p;
  r->data = (uint8_t *)p + r->page;
  return sw_num(env, slot + 1);
}

/*
 * bpfRingRead(id, out) -> bytes | -errno. Copies whole records into out, each
 * as a little-endian u32 length and the record's bytes padded to 8, and
 * consumes exactly those (a record that does not fit stays for the next call).
 */
static napi_value bpf_ring_read(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfRingRead(id, out: Uint8Array)";
  sw_args a;
  int32_t id;
  uint8_t *out;
  size_t cap;
  if (!sw_get_args(env, info, &a, usage, 2) || !sw_i32(&a, 0, &id) || !sw_bytes(&a, 1, &out, &cap)) return NULL;
  if (id < 1 || id > SW_BPF_RINGS || rings[id - 1].fd == 0) return sw_num(env, -EBADF);
  sw_ring *r = &rings[id - 1];
  unsigned long cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE);
  unsigned long prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
  size_t used = 0;
  while (cons < prod) {
    uint32_t hdr = __atomic_load_n((uint32_t *)(r->data + (cons & (r->size - 1))), __ATOMIC_ACQUIRE);
    if (hdr & RINGBUF_BUSY) break;
    uint32_t len = hdr & ~(RINGBUF_BUSY | RINGBUF_DISCARD);
    size_t step = (RINGBUF_HDR + len + 7) & ~(size_t)7;
    if (!(hdr & RINGBUF_DISCARD)) {
      size_t need = (4 + len + 7) & ~(size_t)7;
      if (used + need > cap) break;
      memcpy(out + used, &len, 4);
      /* data is mapped twice in a row: a record that wraps is still contiguous */
      memcpy(out + used + 4, r->data + ((cons + RINGBUF_HDR) & (r->size - 1)), len);
      used += need;
    }
    cons += step;
    __atomic_store_n(r->consumer, cons, __ATOMIC_RELEASE);
  }
  return sw_num(env, (int64_t)used);
}

/* bpfRingClose(id) -> 0 | -EBADF (the map's fd stays open: its object owns it). */
static napi_value bpf_ring_close(napi_env env, napi_callback_info info) {
  static const char usage[] = "bpfRingClose(id)";
  sw_args a;
  int32_t id;
  if (!sw_get_args(env, info, &a, usage, 1) || !sw_i32(&a, 0, &id)) return NULL;
  if (id < 1 || id > SW_BPF_RINGS || rings[id - 1].fd == 0) return sw_num(env, -EBADF);
  sw_ring *r = &rings[id - 1];
  munmap(r->consumer, r->page);
  munmap(r->producer, r->page + 2 * r->size);
  memset(r, 0, sizeof *r);
  return sw_num(env, 0);
}

#else /* built without BPF */

static napi_value bpf_ring_enosys(napi_env env, napi_callback_info info) {
  (void)info;
  return sw_num(env, -ENOSYS);
}

#define bpf_ring_open bpf_ring_enosys
#define bpf_ring_read bpf_ring_enosys
#define bpf_ring_close bpf_ring_enosys

#endif

const sw_export sw_bpf_ring_exports[] = {
    {"bpfRingOpen", bpf_ring_open},
    {"bpfRingRead", bpf_ring_read},
    {"bpfRingClose", bpf_ring_close},
    {NULL, NULL},
};

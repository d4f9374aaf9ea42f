/*
 * poll.c: fd readiness watchers on Node's event loop (libuv uv_poll_t).
 *
 * Responsible for watch, unwatch, rewatch, ref and unref, the table that maps
 * the integer ids handed to JS onto watchers, and closing every watcher when
 * the Node environment (main thread or worker) is torn down. Callbacks enter
 * JS through napi_make_callback with an async context, so promise
 * continuations and nextTicks queued by the callback run right after it.
 * Leans on the libuv poll handle docs (uv_poll_t), poll(2), epoll(7) and the
 * Node-API docs for napi_make_callback and napi_add_async_cleanup_hook.
 */
#include "common.h"

#include <fcntl.h>
#include <stdlib.h>
#include <uv.h>

#define SW_EVENTS (UV_READABLE | UV_WRITABLE | UV_DISCONNECT) /* 1, 2, 4: same bits as the JS API */
#define SW_SLOT_BITS 24                                      /* id = gen * 2^24 + slot + 1 */
#define SW_SLOT_MASK ((1u << SW_SLOT_BITS) - 1)

struct sw_poll_state;

typedef struct {
  uv_poll_t handle; /* first member: a uv_poll_t* is a sw_watcher* */
  struct sw_poll_state *state;
  napi_ref cb;
  napi_async_context actx;
} sw_watcher;

typedef struct {
  sw_watcher *w;   /* NULL when free */
  uint32_t gen;    /* bumped on every release so stale ids never match */
  int32_t next;    /* free-list link */
} sw_slot;

typedef struct sw_poll_state {
  napi_env env;
  uv_loop_t *loop;
  sw_slot *slots;
  uint32_t nslots, cap;
  int32_t free_head; /* -1: none */
  size_t live;       /* watchers allocated and not yet freed (includes closing ones) */
  bool tearing_down;
  napi_async_cleanup_hook_handle hook;
} sw_poll_state;

static void on_env_cleanup(napi_async_cleanup_hook_handle hook, void *arg);

void *sw_poll_state_new(napi_env env) {
  sw_poll_state *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->env = env;
  s->free_head = -1;
  if (napi_get_uv_event_loop(env, &s->loop) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_env_cleanup, s, NULL) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

static void state_free(sw_poll_state *s) {
  napi_remove_async_cleanup_hook(s->hook);
  free(s->slots);
  free(s);
}

/* Takes a free slot for w and returns its id, or -ENOMEM. */
static int64_t slot_take(sw_poll_state *s, sw_watcher *w) {
  uint32_t i;
  if (s->free_head >= 0) {
    i = (uint32_t)s->free_head;
    s->free_head = s->slots[i].next;
  } else {
    if (s->nslots == s->cap) {
      uint32_t cap = s->cap ? s->cap * 2 : 64;
      if (cap > SW_SLOT_MASK) return -ENOMEM;
      sw_slot *n = realloc(s->slots, cap * sizeof *n);
      if (n == NULL) return -ENOMEM;
      s->slots = n;
      s->cap = cap;
    }
    i = s->nslots++;
    s->slots[i].gen = 1;
  }
  s->slots[i].w = w;
  return (int64_t)s->slots[i].gen * (SW_SLOT_MASK + 1) + i + 1;
}

/* The watcher for id, or NULL if the id is unknown or stale. */
static sw_watcher *slot_find(sw_poll_state *s, int64_t id, uint32_t *index) {
  if (id <= 0) return NULL;
  uint64_t low = (uint64_t)id & SW_SLOT_MASK;
  uint64_t gen = (uint64_t)id >> SW_SLOT_BITS;
  if (low == 0 || low > s->nslots) return NULL;
  sw_slot *slot = &s->slots[low - 1];
  if (slot->w == NULL || slot->gen != gen) return NULL;
  *index = (uint32_t)(low - 1);
  return slot->w;
}

static void slot_release(sw_poll_state *s, uint32_t i) {
  s->slots[i].w = NULL;
  s->slots[i].gen = (s->slots[i].gen + 1) & ((1u << (53 - SW_SLOT_BITS)) - 1);
  if (s->slots[i].gen == 0) s->slots[i].gen = 1;
  s->slots[i].next = s->free_head;
  s->free_head = (int32_t)i;
}

static void on_close(uv_handle_t *h) {
  sw_watcher *w = (sw_watcher *)h;
  sw_poll_state *s = w->state;
  napi_handle_scope hs;
  bool scoped = napi_open_handle_scope(s->env, &hs) == napi_ok;
  if (w->cb != NULL) napi_delete_reference(s->env, w->cb);
  if (w->actx != NULL) napi_async_destroy(s->env, w->actx);
  if (scoped) napi_close_handle_scope(s->env, hs);
  free(w);
  if (--s->live == 0 && s->tearing_down) state_free(s);
}

static void watcher_close(sw_watcher *w) {
  uv_poll_stop(&w->handle);
  uv_close((uv_handle_t *)&w->handle, on_close);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sw_watcher *w = (sw_watcher *)h;
  napi_env env = w->state->env;
  napi_handle_scope hs;
  napi_value cb, recv, argv[2], result;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  if (napi_get_reference_value(env, w->cb, &cb) == napi_ok && cb != NULL && napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_create_int32(env, events & SW_EVENTS, &argv[1]) == napi_ok &&
      napi_make_callback(env, w->actx, recv, cb, 2, argv, &result) != napi_ok) {
    /* A throwing callback is an uncaught exception, as for any event-loop callback. */
    bool pending = false;
    napi_value exc;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &exc) == napi_ok)
      napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, hs);
}

/*
 * watch(fd, events, callback) -> id > 0 | -errno. uv_poll_init sets O_NONBLOCK
 * on the fd's open file description; that is undone here when the fd was
 * blocking, because the description may be shared with a trapped app.
 */
static napi_value poll_watch(napi_env env, napi_callback_info info) {
  static const char usage[] = "watch(fd, events, callback)";
  sw_args a;
  int32_t fd;
  uint32_t events;
  napi_valuetype t;
  napi_value name;
  if (!sw_get_args(env, info, &a, usage, 3) || !sw_i32(&a, 0, &fd) || !sw_u32(&a, 1, &events)) return NULL;
  if (events & ~(uint32_t)SW_EVENTS) {
    sw_type_error(&a, 1, "must be a mask of 1 (readable), 2 (writable) and 4 (disconnect)");
    return NULL;
  }
  if (napi_typeof(env, a.argv[2], &t) != napi_ok || t != napi_function) {
    sw_type_error(&a, 2, "must be a function");
    return NULL;
  }
  sw_poll_state *s = a.data;

  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return sw_num(env, -errno);
  sw_watcher *w = calloc(1, sizeof *w);
  if (w == NULL) return sw_num(env, -ENOMEM);
  w->state = s;
  int rc = uv_poll_init(s->loop, &w->handle, fd);
  if (!(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl);
  if (rc != 0) {
    free(w);
    return sw_num(env, rc);
  }
  s->live++;
  if (napi_create_reference(env, a.argv[2], 1, &w->cb) != napi_ok ||
      napi_create_string_utf8(env, "sockswitch.watch", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &w->actx) != napi_ok) {
    watcher_close(w);
    return NULL; /* exception pending */
  }
  int64_t id = slot_take(s, w);
  if (id < 0) {
    watcher_close(w);
    return sw_num(env, id);
  }
  rc = uv_poll_start(&w->handle, (int)events, on_poll);
  if (rc != 0) {
    slot_release(s, (uint32_t)((id & SW_SLOT_MASK) - 1));
    watcher_close(w);
    return sw_num(env, rc);
  }
  return sw_num(env, id);
}

/* Shared by unwatch/rewatch/ref/unref: reads (handleId, ...); *w is NULL for an unknown id. */
static bool poll_lookup(napi_env env, napi_callback_info info, const char *usage, size_t want, sw_args *a,
                        sw_watcher **w, uint32_t *index) {
  int64_t id;
  if (!sw_get_args(env, info, a, usage, want) || !sw_i64(a, 0, &id)) return false;
  *w = slot_find(a->data, id, index);
  return true;
}

/* unwatch(handleId) -> 0 | -EBADF. The watcher is freed in the uv_close callback. */
static napi_value poll_unwatch(napi_env env, napi_callback_info info) {
  sw_args a;
  sw_watcher *w;
  uint32_t i;
  if (!poll_lookup(env, info, "unwatch(handleId)", 1, &a, &w, &i)) return NULL;
  if (w == NULL) return sw_num(env, -EBADF);
  slot_release(a.data, i);
  watcher_close(w);
  return sw_num(env, 0);
}

/* rewatch(handleId, events) -> 0 | -errno; events 0 pauses the watcher. */
static napi_value poll_rewatch(napi_env env, napi_callback_info info) {
  sw_args a;
  sw_watcher *w;
  uint32_t i, events;
  if (!poll_lookup(env, info, "rewatch(handleId, events)", 2, &a, &w, &i) || !sw_u32(&a, 1, &events))
    return NULL;
  if (events & ~(uint32_t)SW_EVENTS) {
    sw_type_error(&a, 1, "must be a mask of 1 (readable), 2 (writable) and 4 (disconnect)");
    return NULL;
  }
  if (w == NULL) return sw_num(env, -EBADF);
  return sw_num(env, uv_poll_start(&w->handle, (int)events, on_poll));
}

/* Shared by ref/unref. */
static napi_value poll_set_ref(napi_env env, napi_callback_info info, const char *usage, bool ref) {
  sw_args a;
  sw_watcher *w;
  uint32_t i;
  if (!poll_lookup(env, info, usage, 1, &a, &w, &i)) return NULL;
  if (w == NULL) return sw_num(env, -EBADF);
  if (ref)
    uv_ref((uv_handle_t *)&w->handle);
  else
    uv_unref((uv_handle_t *)&w->handle);
  return sw_num(env, 0);
}

/* ref(handleId) -> 0 | -EBADF: the watcher keeps the event loop alive (the default). */
static napi_value poll_ref(napi_env env, napi_callback_info info) {
  return poll_set_ref(env, info, "ref(handleId)", true);
}

/* unref(handleId) -> 0 | -EBADF: the watcher no longer keeps the event loop alive. */
static napi_value poll_unref(napi_env env, napi_callback_info info) {
  return poll_set_ref(env, info, "unref(handleId)", false);
}

/* Environment teardown: close every watcher; the hook is removed once all are freed. */
static void on_env_cleanup(napi_async_cleanup_hook_handle hook, void *arg) {
  sw_poll_state *s = arg;
  s->hook = hook;
  s->tearing_down = true;
  for (uint32_t i = 0; i < s->nslots; i++) {
    sw_watcher *w = s->slots[i].w;
    if (w == NULL) continue;
    slot_release(s, i);
    watcher_close(w);
  }
  if (s->live == 0) state_free(s);
}

const sw_export sw_poll_exports[] = {
    {"watch", poll_watch},
    {"unwatch", poll_unwatch},
    {"rewatch", poll_rewatch},
    {"ref", poll_ref},
    {"unref", poll_unref},
    {NULL, NULL},
};

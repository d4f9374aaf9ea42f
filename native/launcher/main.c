/*
 * main.c: sockswitch-launch's steps, in order.
 *
 *   sockswitch-launch [--socket PATH] run [options of `sockswitch run`] -- CMD [ARG...]
 *
 * The entry point of an app: `sockswitch run` execs it (so it keeps that pid), and a
 * container image runs it as its entrypoint. Steps: read the options (options.c); be the
 * first process of a PID namespace of the app's own (pidns.c: in a container the launcher
 * already is; on a host it makes one and goes on in its init); connect and HELLO to the
 * daemon; unless --new-netns=false, a new network namespace with lo up and the granted
 * addresses; a mount namespace of the app's own, with its /proc and, with --dns-override,
 * the daemon's resolv.conf as /etc/resolv.conf; fork the app, which installs the filter
 * and hands its listener back; hand the listener and a pidfd of the app to the daemon; on
 * GO let the app exec; then forward signals, reap orphans, and exit with its status.
 * Exit 2 for a bad option, 125 when the launcher fails, 126/127 when CMD cannot run.
 *
 * Man pages: seccomp(2), seccomp_unotify(2), unix(7), rtnetlink(7), netdevice(7),
 * mount_namespaces(7), pid_namespaces(7) (through the files named in launcher.h).
 */
#include "launcher.h"

#include <unistd.h>

int main(int argc, char **argv) {
  struct options o;
  options_parse(argc, argv, &o);

  /* From here on this process is pid 1 of the app's PID namespace. */
  bool own_proc = getpid() != 1;
  pidns_become_init();

  struct daemon_conn *dc = handshake_connect(o.socket_path);
  struct grant g = {0};
  handshake_hello(dc, o.hello, &g);

  /* Before the fork and before any filter exists: these sockets are not trapped. */
  if (o.netns) netns_setup(&g);
  /* Also before the fork: the app inherits the mount namespace, and the app's side of
   * the fork stays as short as it is (no failure path there to report through). A
   * container's runtime has mounted its /proc already. */
  if (own_proc || o.resolv_conf) mountns_enter(o.resolv_conf);
  if (own_proc) pidns_mount_proc();
  if (o.resolv_conf) mountns_resolv_conf(o.resolv_conf);

  signals_block();
  struct app app;
  app_spawn(&app, &o, &g, dc->fd);
  signals_forward_to(app.pid);

  int listener = app_await_listener(&app);
  if (listener < 0) return app_reap_now(&app);
  /* The listener and the daemon connection stay open for the launcher's life. */
  if (!handshake_hand_over(dc, app.pid, listener, app.ctl)) return app_reap_now(&app);
  app_release(&app);
  return signals_supervise(app.pid, dc);
}

// Podman for end-to-end tests, on this machine's terms (../shared/research/containers.md):
// runc with the cgroupfs manager (crun refuses the hybrid cgroup layout), no default
// ulimits (a containers.conf given by CONTAINERS_CONF, not /etc), and every piece of state
// (storage, run root, libpod's tmp, network config, volumes) in a temporary directory, so
// that a test leaves nothing behind. There is no registry: images are imported from a root
// filesystem tarball (a static busybox, see `busyboxImage`).

import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Result } from "./harness.js";

/** Why the podman tests cannot run here, or null when they can. */
export function podmanMissing(): string | null {
  const r = spawnSync("podman", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0)
    return "podman is not installed (Debian: apt-get install podman runc uidmap fuse-overlayfs slirp4netns)";
  if (spawnSync("runc", ["--version"]).status !== 0)
    return "runc is not installed (Debian: apt-get install runc)";
  return null;
}

export class Podman {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  /** The global options every podman command of this instance gets. */
  readonly global: string[];

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "ssw-podman-"));
    const conf = join(this.dir, "containers.conf");
    writeFileSync(conf, "[containers]\ndefault_ulimits = []\n");
    this.env = { ...process.env, CONTAINERS_CONF: conf };
    this.global = [
      "--root",
      join(this.dir, "root"),
      "--runroot",
      join(this.dir, "runroot"),
      "--tmpdir",
      join(this.dir, "tmp"),
      "--network-config-dir",
      join(this.dir, "net"),
      "--volumepath",
      join(this.dir, "volumes"),
      "--runtime",
      "runc",
      "--cgroup-manager",
      "cgroupfs",
      "--events-backend",
      "none",
    ];
  }

  /** Runs `podman ARGS…` to its end (bounded). */
  run(args: string[], timeoutMs = 60_000): Result {
    const r = spawnSync("podman", [...this.global, ...args], {
      encoding: "utf8",
      env: this.env,
      timeout: timeoutMs,
    });
    return { code: r.status, signal: r.signal, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  must(args: string[]): string {
    const r = this.run(args);
    if (r.code !== 0) throw new Error(`podman ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  /** A shell function `podman` with this instance's options, for scripts (bash). */
  shellFunction(): string {
    const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
    return `podman() { CONTAINERS_CONF=${q(this.env.CONTAINERS_CONF as string)} command podman ${this.global.map(q).join(" ")} "$@"; }`;
  }

  /**
   * Imports an image made of a static busybox, a page (/www/index.html) and a CGI script
   * that prints the client's address (/www/cgi-bin/ip), and nothing of sockswitch.
   */
  busyboxImage(name: string): string {
    const root = join(this.dir, `rootfs-${name}`);
    for (const d of ["bin", "etc", "tmp", "www/cgi-bin"]) mkdirSync(join(root, d), { recursive: true });
    copyFileSync("/bin/busybox", join(root, "bin", "busybox"));
    chmodSync(join(root, "bin", "busybox"), 0o755);
    for (const c of ["sh", "httpd", "wget", "nslookup", "cat", "echo", "sleep", "ps", "id"])
      symlinkSync("busybox", join(root, "bin", c));
    writeFileSync(
      join(root, "etc", "passwd"),
      "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
    );
    writeFileSync(join(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
    writeFileSync(join(root, "www", "index.html"), "hello from a container\n");
    const cgi = join(root, "www", "cgi-bin", "ip");
    writeFileSync(cgi, '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "$REMOTE_ADDR"\n');
    chmodSync(cgi, 0o755);
    const tar = join(this.dir, `${name}.tar`);
    const t = spawnSync("tar", ["-C", root, "-cf", tar, "."], { encoding: "utf8" });
    if (t.status !== 0) throw new Error(`tar failed: ${t.stderr}`);
    const image = `localhost/${name}:test`;
    this.must(["import", "-q", tar, image]);
    return image;
  }

  /** Removes every container, image and the state directory. */
  cleanup(): void {
    this.run(["rm", "--all", "--force", "--time", "0"]);
    this.run(["system", "reset", "--force"]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// End-to-end: an app cannot reach another app's processes, even with the same uid (issue 13,
// kind 1; ../shared/cases/security/proc-mem-inject). A zone=secret victim runs as nobody
// with a secret in its environment, next to a zone=secret service; a zone=default app, as
// nobody and as root, tries to write code into the victim through /proc/PID/mem (code that
// would connect to the secret service with the victim's identity), to read its
// /proc/PID/environ, to signal it, to open a pidfd of it, and (as root) to find it under a
// procfs it mounts itself or under the app's /proc. Each attempt must fail, the victim must
// be untouched and the secret service must see no connection.

import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { FIXTURES, must, type Proc, PYTHON, TestHost, waitFor } from "./harness.js";

const SECRET = "10.77.120.1";
const PORT = 7000;
const TOKEN = "ssw-secret-token-4f1d";
const MARKER = "secret-victim";

// The handed case's code: socket(), connect(SECRET:PORT), write "INJECTED\n", then read.
const SHELLCODE = `.intel_syntax noprefix
.globl _start
_start:
  mov edi, 2
  mov esi, 1
  xor edx, edx
  mov eax, 41
  syscall
  mov r12, rax
  mov rdi, rax
  lea rsi, [rip+sa]
  mov edx, 16
  mov eax, 42
  syscall
  mov rdi, r12
  lea rsi, [rip+msg]
  mov edx, msgend-msg
  mov eax, 1
  syscall
  mov rdi, r12
  lea rsi, [rsp-256]
  mov edx, 64
  xor eax, eax
  syscall
  xor edi, edi
  mov eax, 231
  syscall
sa: .byte 2,0, ${PORT >> 8},${PORT & 0xff}, ${SECRET.split(".").join(",")}, 0,0,0,0,0,0,0,0
msg: .ascii "INJECTED\\n"
msgend:
`;

const reversed = (s: string): string => [...s].reverse().join("");

interface Outcome {
  uid: number;
  proc_mounts: string[];
  scan: { pids: number; victims: number[]; token: boolean };
  mem: string;
  environ: string;
  kill0: string;
  sigkill: string;
  pidfd_open: string;
  scan_victims_hit: string[];
  mount_proc?: string;
  new_proc_scan?: { pids: number; victims: number[]; token: boolean };
  new_proc_mem?: string;
  umount_proc?: string;
  under_proc?: string[] | null;
  kill_all: string;
}

describe("apps cannot reach each other's processes", { skip: process.arch !== "x64" }, () => {
  let host: TestHost;
  let secret: Proc;
  let victim: Proc;
  let victimPid = 0;
  let code = "";

  const accepted = () => secret.stdout.split("\n").filter((l) => l.includes('"accepted"')).length;

  before(async () => {
    host = new TestHost("procs");
    chmodSync(host.dir, 0o755);
    writeFileSync(join(host.dir, "sc.S"), SHELLCODE);
    must("as", ["-o", join(host.dir, "sc.o"), join(host.dir, "sc.S")]);
    code = join(host.dir, "sc.bin");
    must("objcopy", ["-O", "binary", "-j", ".text", join(host.dir, "sc.o"), code]);
    chmodSync(code, 0o644);
    await host.start();
    secret = host.run(
      ["--user", "nobody", "--ip", SECRET, "--labels", "zone=secret"],
      [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", String(PORT), "S"],
    );
    victim = host.run(
      ["--user", "nobody", "--labels", "zone=secret", "--name", "victim"],
      [
        "env",
        `SSW_TOKEN=${TOKEN}`,
        PYTHON,
        "-c",
        `import signal, time
signal.signal(signal.SIGUSR2, lambda *a: print("signalled", flush=True))
print("ready", flush=True)
while True: time.sleep(300)  # ${MARKER}`,
      ],
    );
    await waitFor(
      "the secret service",
      () => {
        if (!secret.running) throw new Error(`the secret service exited: ${secret.stderr}`);
        return secret.stdout.includes('"listening"');
      },
      30_000,
    );
    await waitFor("the victim", () => victim.stdout.includes("ready"), 30_000);
    const app = host.getJson<{ name: string; pid: number }>("apps").find((a) => a.name === "victim");
    assert.ok(app);
    victimPid = app.pid;
  });

  after(async () => {
    await host?.cleanup();
  });

  for (const user of ["nobody", "root"] as const) {
    test(`as ${user}: /proc/PID/mem, /proc/PID/environ, signals and pidfds do not reach another app`, async () => {
      const r = await host.runToEnd(
        [...(user === "nobody" ? ["--user", "nobody"] : []), "--labels", "zone=default"],
        [PYTHON, `${FIXTURES}/hostile-procs.py`, String(victimPid), reversed(MARKER), reversed(TOKEN), code],
      );
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as Outcome;
      const why = JSON.stringify(out);
      assert.equal(out.uid, user === "nobody" ? 65534 : 0);
      // The app sees its own processes only, through the one procfs it has.
      assert.deepEqual(out.proc_mounts, ["/proc"], why);
      assert.ok(out.scan.pids >= 1 && out.scan.pids <= 10, why);
      assert.deepEqual(out.scan.victims, [], why);
      assert.equal(out.scan.token, false, why);
      // The victim's pid as the daemon shows it names nothing here.
      assert.equal(out.mem, "ENOENT", why);
      assert.equal(out.environ, "ENOENT", why);
      assert.equal(out.kill0, "ESRCH", why);
      assert.equal(out.sigkill, "ESRCH", why);
      assert.equal(out.pidfd_open, "ESRCH", why);
      assert.ok(["OK", "ESRCH"].includes(out.kill_all), why);
      if (user === "root") {
        // A procfs root mounts shows its own namespace; under the launcher's /proc is nothing.
        assert.equal(out.mount_proc, "OK", why);
        assert.deepEqual(out.new_proc_scan?.victims, [], why);
        assert.equal(out.new_proc_scan?.token, false, why);
        assert.equal(out.new_proc_mem, "ENOENT", why);
        assert.equal(out.umount_proc, "OK", why);
        assert.deepEqual(out.under_proc, [], why);
      }
      // The promise held: the victim runs on untouched, and nobody used its identity.
      assert.ok(victim.running, "the victim still runs");
      assert.ok(!victim.stdout.includes("signalled"), victim.stdout);
      assert.equal(accepted(), 0, secret.stdout);
    });
  }

  test("the victim and the secret service are reachable where policy allows (the attack had a target)", async () => {
    const r = await host.runToEnd(
      ["--user", "nobody", "--labels", "zone=secret"],
      [PYTHON, `${FIXTURES}/echo-client.py`, SECRET, String(PORT)],
    );
    assert.match(r.stdout, /"reply": "S hello"/, r.stderr);
    assert.equal(accepted(), 1);
    must("kill", ["-USR2", String(victimPid)]);
    await waitFor("the victim's handler", () => victim.stdout.includes("signalled"));
  });
});

// End-to-end: address families that leave the app's namespace are refused at socket() and
// socketpair() (docs/security.md, promise 3). The filter keeps an allowlist: AF_INET and
// AF_INET6 (carried out by the daemon), AF_UNIX and AF_NETLINK (the app's own namespace);
// every other family gets EAFNOSUPPORT, as from a kernel without it, whether the app is
// root or not. The allowed ones answer exactly as the kernel does (the same program run
// plainly in a namespace of the test's own is the reference).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FIXTURES, PYTHON, TestHost } from "./harness.js";

const FIXTURE = `${FIXTURES}/hostile-families.py`;
const ALLOWED = ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"];

interface Families {
  socket: Record<string, string>;
  socketpair: Record<string, string>;
}

describe("address families: an allowlist", () => {
  let host: TestHost;
  let reference: Families;

  before(async () => {
    host = new TestHost("families");
    await host.start();
    const plain = host.exec([PYTHON, FIXTURE]);
    assert.equal(plain.code, 0, plain.stderr);
    reference = JSON.parse(plain.stdout) as Families;
  });

  after(async () => {
    await host?.cleanup();
  });

  for (const user of [[], ["--user", "nobody"]]) {
    test(`socket() and socketpair() of other families get EAFNOSUPPORT (${user.length ? "nobody" : "root"})`, async () => {
      const r = await host.runToEnd(user, [PYTHON, FIXTURE]);
      assert.equal(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout) as Families;
      for (const [family, errno] of Object.entries(got.socket)) {
        if (ALLOWED.includes(family)) assert.equal(errno, "OK", `socket(${family})`);
        else assert.equal(errno, "EAFNOSUPPORT", `socket(${family})`);
      }
      for (const [family, errno] of Object.entries(got.socketpair)) {
        // The kernel's answers where it gets to answer (OK for AF_UNIX, EOPNOTSUPP for the
        // rest of the allowed ones: inet and netlink make no pairs).
        if (ALLOWED.includes(family))
          assert.equal(errno, reference.socketpair[family], `socketpair(${family})`);
        else assert.equal(errno, "EAFNOSUPPORT", `socketpair(${family})`);
      }
      // The reference kernel does have some of the refused families (packet, vsock, xdp on
      // this machine): the refusal is sockswitch's, not the kernel's.
      assert.equal(reference.socket.AF_PACKET, "OK");
      assert.ok(host.daemon?.running);
    });
  }
});

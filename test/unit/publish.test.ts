// Unit tests of --publish (Docker's order) and its text in --expose's order (table/app-spec.ts),
// and of sd_notify's socket address (daemon/sd-notify.ts).

import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { unixSockaddr } from "../../src/daemon/sd-notify.js";
import { exposeText, parseExpose, parsePublish } from "../../src/table/app-spec.js";

test("--publish HOST_PORT:APP_PORT, HOST_IP:HOST_PORT:APP_PORT, /proto: the same rules as --expose", () => {
  assert.deepEqual(parsePublish("18080:8080"), { appPort: 8080, hostIp: null, hostPort: 18080 });
  assert.deepEqual(parsePublish("127.0.0.1:18080:8080"), parseExpose("8080:127.0.0.1:18080"));
  assert.deepEqual(parsePublish("[2001:db8::1]:53:5353/udp"), {
    appPort: 5353,
    hostIp: "2001:db8::1",
    hostPort: 53,
    proto: "udp",
  });
  assert.equal(exposeText(parsePublish("[2001:db8::1]:53:5353/udp")), "5353:[2001:db8::1]:53/udp");
  assert.deepEqual(
    parseExpose(exposeText(parsePublish("0.0.0.0:30080:80/tcp"))),
    parsePublish("0.0.0.0:30080:80/tcp"),
  );
  const bad = (t: string, re: RegExp) =>
    assert.throws(
      () => parsePublish(t),
      (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message),
      t,
    );
  bad("8080", /needs HOST_PORT:APP_PORT/);
  bad("x:80", /host port "x" is not a port/);
  bad("80:80/sctp", /protocol must be tcp or udp/);
  bad("nohost:80:80", /"nohost" is not an IP address/);
});

test("sd_notify socket addresses: a path ends with NUL, an abstract name (@) starts with one", () => {
  const p = unixSockaddr("/run/systemd/notify", 1);
  assert.ok(p);
  assert.equal(p.len, 2 + "/run/systemd/notify".length + 1);
  assert.equal(p.addr.readUInt16LE(0), 1);
  assert.equal(p.addr.subarray(2, p.len - 1).toString(), "/run/systemd/notify");
  const a = unixSockaddr("@sd-notify-x", 1);
  assert.ok(a);
  assert.equal(a.len, 2 + 1 + "sd-notify-x".length);
  assert.equal(a.addr[2], 0);
  assert.equal(unixSockaddr(`/${"x".repeat(200)}`, 1), null);
  assert.equal(unixSockaddr("@", 1), null);
});

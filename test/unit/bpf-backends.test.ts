// Unit tests of src/bpf/backends.ts: which of an app's sockets the bpf datapath's hooks
// balance over, as the kernel's lookup would choose among them.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { kernelBackends } from "../../src/bpf/backends.js";
import type { Binding } from "../../src/table/sockets.js";
import type { Proto, Service } from "../../src/table/types.js";

function svc(appId: string, hostPort: number, o: { proto?: Proto; wildcard?: boolean } = {}): Service {
  return {
    id: `${appId}-${hostPort}`,
    appId,
    name: appId,
    proto: o.proto ?? "udp",
    vip: "10.77.0.10",
    vport: 53,
    hostIp: "192.0.2.1",
    hostPort,
    labels: {},
    lb: null,
    node: "n1",
    exposed: false,
    wildcard: o.wildcard ?? false,
    createdAt: "2026-11-30T00:00:00Z",
  };
}

const domains = new Map<number, number>();
const bindingOf = (s: Service): Binding | undefined =>
  ({ domain: domains.get(s.hostPort) ?? 2 }) as unknown as Binding;

describe("bpf backends", () => {
  test("one backend per app for UDP: the newest of the app's sockets; other apps stay peers", () => {
    const a1 = svc("a", 40000);
    const a2 = svc("a", 40001);
    const b1 = svc("b", 40002);
    assert.deepEqual(kernelBackends([a1, b1, a2], bindingOf), [b1, a2]);
  });

  test("a socket bound to the address itself before a wildcard one (TCP and UDP)", () => {
    const exact = svc("a", 40000);
    const any = svc("a", 40001, { wildcard: true });
    assert.deepEqual(kernelBackends([exact, any], bindingOf), [exact]);
    const t1 = svc("a", 40000, { proto: "tcp" });
    const t2 = svc("a", 40001, { proto: "tcp", wildcard: true });
    assert.deepEqual(kernelBackends([t1, t2], bindingOf), [t1]);
  });

  test("for an IPv4 address, an AF_INET socket before a newer dual-stack one", () => {
    domains.set(40000, 2);
    domains.set(40001, 10);
    const v4 = svc("a", 40000, { wildcard: true });
    const dual = svc("a", 40001, { wildcard: true });
    assert.deepEqual(kernelBackends([v4, dual], bindingOf), [v4]);
    domains.clear();
  });

  test("TCP listeners of one app on one address stay peers (an SO_REUSEPORT group)", () => {
    const t1 = svc("a", 40000, { proto: "tcp" });
    const t2 = svc("a", 40001, { proto: "tcp" });
    assert.deepEqual(kernelBackends([t1, t2], bindingOf), [t1, t2]);
  });
});

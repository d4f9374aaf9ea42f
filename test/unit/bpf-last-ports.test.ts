// Unit tests of src/bpf/last-ports.ts: which host port a virtual port bound again gets first.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LastPorts } from "../../src/bpf/last-ports.js";
import type { Binding } from "../../src/table/sockets.js";
import type { App } from "../../src/table/types.js";

const app = (id: string, ips: string[]) => ({ id, ips }) as unknown as App;

function binding(over: Partial<Binding>): Binding {
  return {
    appId: "a1",
    proto: "udp",
    inode: 1,
    vip: "0.0.0.0",
    vport: 53,
    hostIp: "192.0.2.1",
    hostPort: 40007,
    domain: 2,
    reusePort: false,
    reuseAddr: false,
    loopback: false,
    v6only: false,
    exposed: false,
    listening: false,
    serviceIds: [],
    shadowFd: -1,
    connectedTo: null,
    ...over,
  };
}

describe("LastPorts", () => {
  test("nothing known: null", () => {
    assert.equal(new LastPorts().preferred("a1", "udp", 53, "192.0.2.1"), null);
  });

  test("the app's withdrawn binding's host port, for the same protocol, virtual port and host address", () => {
    const m = new LastPorts();
    m.app(app("a1", ["10.0.0.1"]));
    m.withdrawn(binding({}));
    assert.equal(m.preferred("a1", "udp", 53, "192.0.2.1"), 40007);
    assert.equal(m.preferred("a1", "tcp", 53, "192.0.2.1"), null);
    assert.equal(m.preferred("a1", "udp", 54, "192.0.2.1"), null);
    assert.equal(m.preferred("a1", "udp", 53, "::"), null);
  });

  test("an app restarted with the same virtual IPs (in any order) gets it back; another app does not", () => {
    const m = new LastPorts();
    m.app(app("a1", ["10.0.0.1", "fd00::1"]));
    m.withdrawn(binding({}));
    m.app(app("a2", ["fd00::1", "10.0.0.1"]));
    m.app(app("a3", ["10.0.0.9"]));
    assert.equal(m.preferred("a2", "udp", 53, "192.0.2.1"), 40007);
    assert.equal(m.preferred("a3", "udp", 53, "192.0.2.1"), null);
  });

  test("an --expose port is not the pool's: not remembered", () => {
    const m = new LastPorts();
    m.app(app("a1", ["10.0.0.1"]));
    m.withdrawn(binding({ exposed: true }));
    assert.equal(m.preferred("a1", "udp", 53, "192.0.2.1"), null);
  });

  test("bounded: the oldest entry is forgotten first, the latest port wins", () => {
    const m = new LastPorts(2);
    m.app(app("a1", ["10.0.0.1"]));
    m.withdrawn(binding({ vport: 1, hostPort: 40001 }));
    m.withdrawn(binding({ vport: 2, hostPort: 40002 }));
    m.withdrawn(binding({ vport: 1, hostPort: 40011 }));
    m.withdrawn(binding({ vport: 3, hostPort: 40003 }));
    assert.equal(m.preferred("a1", "udp", 2, "192.0.2.1"), null);
    assert.equal(m.preferred("a1", "udp", 1, "192.0.2.1"), 40011);
    assert.equal(m.preferred("a1", "udp", 3, "192.0.2.1"), 40003);
  });
});

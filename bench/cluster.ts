// The `cluster` measure: control-plane propagation across hosts. Three test hosts and etcd
// (the e2e multi-host harness, test/e2e/cluster-harness.ts: network namespaces on a
// test-made bridge LAN); an echo server is started on host 1 and stopped again, `samples`
// times, while this process polls every daemon's REST API (its UNIX socket, every 2 ms).
//
//   register_ms  from the service's registration on host 1 (its createdAt, stamped by host
//                1's daemon) to the first poll in which host 2 (and host 3) has it
//   remove_ms    from the SIGKILL of the app to the first poll in which host 2 (and host 3)
//                no longer has it (the app's exit, host 1's removal, etcd, the watch)
//
// One sample per other host and cycle; p50/p99 over all of them. Poll granularity (~2 ms
// plus one API round trip) is included in every value.

import { request } from "node:http";
import { TestCluster } from "../test/e2e/cluster-harness.js";
import { FIXTURES, PYTHON, type TestHost } from "../test/e2e/harness.js";

export interface ClusterResult {
  hosts: number;
  samples: number;
  register_ms: number[];
  remove_ms: number[];
}

const POLL_MS = 2;
const WAIT_MS = 15_000;

interface Svc {
  address: string;
  createdAt: string;
}

function services(socket: string): Promise<Svc[]> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: "/v1/services", timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => {
        try {
          resolve((JSON.parse(body) as { items: Svc[] }).items);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on("error", reject).on("timeout", () => req.destroy(new Error("API timeout")));
    req.end();
  });
}

/** Polls each host until check holds on it; returns the time (ms since epoch) it first did. */
async function arrival(hosts: TestHost[], check: (svcs: Svc[]) => boolean): Promise<number[]> {
  const at: Array<number | null> = hosts.map(() => null);
  const end = Date.now() + WAIT_MS;
  while (at.some((t) => t === null)) {
    if (Date.now() > end) throw new Error("propagation did not complete within 15 s");
    await Promise.all(
      hosts.map(async (h, i) => {
        if (at[i] !== null) return;
        if (check(await services(h.socket))) at[i] = Date.now();
      }),
    );
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return at as number[];
}

export async function measureCluster(
  samples: number,
  progress: (line: string) => void,
): Promise<ClusterResult> {
  const c = new TestCluster({ hosts: 3, ttl: 3, cluster: "bench" });
  const result: ClusterResult = { hosts: 3, samples, register_ms: [], remove_ms: [] };
  try {
    await c.start();
    const [h1, ...others] = c.hosts as [TestHost, ...TestHost[]];
    progress(`cluster: 3 hosts and etcd ready; ${samples} register/remove cycles`);
    for (let i = 0; i < samples; i++) {
      const vip = `10.77.${40 + Math.floor(i / 250)}.${(i % 250) + 1}`;
      const address = `${vip}:7000`;
      const app = h1.run(["--ip", vip], [PYTHON, `${FIXTURES}/echo-server.py`, "0.0.0.0", "7000", "B"]);
      const [, ...seen] = await arrival([h1, ...others], (s) => s.some((x) => x.address === address));
      const created = Date.parse(
        (await services(h1.socket)).find((x) => x.address === address)?.createdAt ?? "",
      );
      for (const t of seen) result.register_ms.push(t - created);
      const killed = Date.now();
      app.kill("SIGKILL");
      const gone = await arrival(others, (s) => !s.some((x) => x.address === address));
      for (const t of gone) result.remove_ms.push(t - killed);
      await app.wait(5000);
    }
  } finally {
    await c.cleanup();
  }
  return result;
}

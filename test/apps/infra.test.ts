// Real applications: openssh-server, dnsmasq, unbound, ncat and socat's UDP fork mode with their
// default configuration (unbound: a network resolver's), each under `sockswitch run` with an
// IPv4 and an IPv6 virtual IP, reached by an IPv4 client by name and an IPv6 client by
// address (ssh, dig over UDP and TCP, socat), and each must see the client's virtual IP
// (SSH_CONNECTION, the DNS servers' query logs, socat's "accepting UDP connection from").

import assert from "node:assert/strict";
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after } from "node:test";
import { must } from "../e2e/harness.js";
import { expectOk, VIP, v6Groups, waitForOutput } from "./app-node.js";
import { appTests } from "./app-test.js";

// sshd's privilege separation directory: the package's service makes it at start
// (RuntimeDirectory), and sshd refuses to start without it. Made here if missing and
// removed afterwards.
const PRIVSEP = "/run/sshd";
let madePrivsep = false;
after(() => {
  if (madePrivsep) rmSync(PRIVSEP, { recursive: true, force: true });
});

// openssh-server: `sshd -D -e` with Debian's /etc/ssh/sshd_config as shipped (no
// ListenAddress: 0.0.0.0:22 and [::]:22, one socket per family) and, on the command line,
// a host key made for the test, the pid file and root's authorized keys in the test's
// directory (so nothing of the host's own ssh setup is read or written). ssh runs a command
// that prints SSH_CONNECTION: "client-ip client-port server-ip 22".
appTests({
  app: "openssh",
  packages: ["openssh-server", "openssh-client"],
  needs: ["sshd", "ssh", "ssh-keygen"],
  async run(node) {
    if (!existsSync(PRIVSEP)) {
      mkdirSync(PRIVSEP, { mode: 0o755 });
      madePrivsep = true;
    }
    const hostKey = join(node.dir, "host_key");
    const clientKey = join(node.dir, "client_key");
    must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
    must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", clientKey]);
    const authorized = join(node.dir, "authorized_keys");
    must("cp", [`${clientKey}.pub`, authorized]);
    const sshd = node.server("sshd", "shell", [
      "/usr/sbin/sshd",
      "-D",
      "-e",
      "-f",
      "/etc/ssh/sshd_config",
      "-h",
      hostKey,
      "-o",
      `PidFile=${join(node.dir, "sshd.pid")}`,
      "-o",
      `AuthorizedKeysFile=${authorized}`,
    ]);
    await node.waitServices(sshd, "tcp", [`${VIP.server4}:22`, `[${VIP.server6}]:22`]);
    const ssh = (family: string, to: string) => [
      "ssh",
      "-F",
      "/dev/null",
      family,
      "-i",
      clientKey,
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "ConnectTimeout=10",
      `root@${to}`,
      "echo $SSH_CONNECTION",
    ];
    const v4 = expectOk(await node.client(VIP.client4, ssh("-4", "shell")), "IPv4 client, by name");
    assert.match(v4, new RegExp(`^${VIP.client4} \\d+ ${VIP.server4} 22$`, "m"));
    const v6 = expectOk(await node.client(VIP.client6, ssh("-6", VIP.server6)), "IPv6 client");
    assert.match(v6, new RegExp(`^${VIP.client6} \\d+ ${VIP.server6} 22$`, "m"));
    await waitForOutput(sshd, [`for root from ${VIP.client4} port`, `for root from ${VIP.client6} port`]);
  },
});

// dnsmasq with /etc/dnsmasq.conf as shipped (all comments: DNS on port 53 of every address,
// UDP and TCP, one wildcard socket per family), in the foreground (-k), with its pid file in
// the test's directory and its query log on stdout. It answers "localhost" from /etc/hosts;
// dig asks it over UDP and TCP.
appTests({
  app: "dnsmasq",
  packages: ["dnsmasq", "bind9-dnsutils"],
  needs: ["dnsmasq", "dig"],
  async run(node) {
    const srv = node.server("dnsmasq", "dns", [
      "dnsmasq",
      "-k",
      `--pid-file=${join(node.dir, "dnsmasq.pid")}`,
      "--log-queries",
      "--log-facility=-",
    ]);
    const both = [`${VIP.server4}:53`, `[${VIP.server6}]:53`];
    await node.waitServices(srv, "udp", both);
    await node.waitServices(srv, "tcp", both);
    const dig = (family: string, server: string, tcp: boolean) => [
      "dig",
      family,
      `@${server}`,
      "localhost",
      "A",
      "+short",
      "+tries=1",
      "+time=5",
      tcp ? "+tcp" : "+notcp",
    ];
    for (const tcp of [false, true]) {
      const over = tcp ? "TCP" : "UDP";
      const v4 = expectOk(
        await node.client(VIP.client4, dig("-4", "dns", tcp)),
        `IPv4 client, by name, ${over}`,
      );
      assert.equal(v4.trim(), "127.0.0.1", `IPv4 client over ${over}`);
      const v6 = expectOk(
        await node.client(VIP.client6, dig("-6", VIP.server6, tcp)),
        `IPv6 client, ${over}`,
      );
      assert.equal(v6.trim(), "127.0.0.1", `IPv6 client over ${over}`);
    }
    await waitForOutput(srv, [
      `query[A] localhost from ${VIP.client4}`,
      `query[A] localhost from ${VIP.client6}`,
    ]);
  },
});

// unbound, the validating resolver. Its stock setup cannot take remote clients (unbound
// listens on localhost unless told otherwise) and needs what the service's start script
// makes (the root trust anchor, a control socket in /run), so this is the configuration a
// user writes for a resolver on a network: `interface: 0.0.0.0` and `interface: ::0` (one
// socket per family and protocol, IPV6_V6ONLY on the IPv6 ones), `access-control` for every
// client, one local-data record to answer without any upstream, queries logged to stderr.
appTests({
  app: "unbound",
  packages: ["unbound", "bind9-dnsutils"],
  needs: ["unbound", "dig"],
  async run(node) {
    const run = join(node.dir, "run");
    mkdirSync(run);
    chownSync(run, Number(must("id", ["-u", "unbound"])), Number(must("id", ["-g", "unbound"])));
    const conf = join(node.dir, "unbound.conf");
    writeFileSync(
      conf,
      [
        "server:",
        "    interface: 0.0.0.0",
        "    interface: ::0",
        "    access-control: 0.0.0.0/0 allow",
        "    access-control: ::/0 allow",
        '    local-data: "app.test. IN A 192.0.2.1"',
        "    log-queries: yes",
        "    use-syslog: no",
        '    logfile: ""',
        '    chroot: ""',
        `    pidfile: "${join(run, "unbound.pid")}"`,
        "remote-control:",
        "    control-enable: no",
        "",
      ].join("\n"),
    );
    const srv = node.server("unbound", "dns", ["unbound", "-d", "-c", conf]);
    const both = [`${VIP.server4}:53`, `[${VIP.server6}]:53`];
    await node.waitServices(srv, "udp", both);
    await node.waitServices(srv, "tcp", both);
    const dig = (family: string, server: string, tcp: boolean) => [
      "dig",
      family,
      `@${server}`,
      "app.test",
      "A",
      "+short",
      "+tries=1",
      "+time=5",
      tcp ? "+tcp" : "+notcp",
    ];
    for (const tcp of [false, true]) {
      const over = tcp ? "TCP" : "UDP";
      const v4 = expectOk(
        await node.client(VIP.client4, dig("-4", "dns", tcp)),
        `IPv4 client, by name, ${over}`,
      );
      assert.equal(v4.trim(), "192.0.2.1", `IPv4 client over ${over}`);
      const v6 = expectOk(
        await node.client(VIP.client6, dig("-6", VIP.server6, tcp)),
        `IPv6 client, ${over}`,
      );
      assert.equal(v6.trim(), "192.0.2.1", `IPv6 client over ${over}`);
    }
    await waitForOutput(srv, [`info: ${VIP.client4} app.test. A IN`, `info: ${VIP.client6} app.test. A IN`]);
  },
});

// socat's UDP fork mode, the README's example: `socat UDP-LISTEN:5000,fork EXEC:cat` (with
// pf=ip6: one dual-stack socket that takes both families). Each new peer gets a child
// process with a socket connected to that peer, and the parent binds the port again
// (SO_REUSEADDR). Four IPv4 clients by name and four IPv6 clients by address, one after the
// other, alternating: each must get its own datagram echoed, and socat must log each peer.
// (Which new client a wrong routing hits depends on the order of backends and counters, so
// eight new peers, of both families, rather than the fewest that could show it.)
appTests({
  app: "socat UDP fork",
  packages: ["socat"],
  needs: ["socat"],
  async run(node) {
    const srv = node.server("socat", "echo", [
      "socat",
      "-d",
      "-d",
      "UDP-LISTEN:5000,pf=ip6,fork",
      "EXEC:cat",
    ]);
    await node.waitServices(srv, "udp", [`${VIP.server4}:5000`, `[${VIP.server6}]:5000`]);
    const clients: Array<[string, string]> = [];
    for (let i = 0; i < 4; i++) {
      clients.push(
        [`10.77.1.${20 + i}`, "UDP4:echo:5000"],
        [`fd77::1:${20 + i}`, `UDP6:[${VIP.server6}]:5000`],
      );
    }
    for (const [i, [ip, to]] of clients.entries()) {
      const r = await node.client(ip, ["sh", "-c", `echo ping-${i} | socat -t 2 - ${to}`], {
        timeoutMs: 20_000,
      });
      assert.equal(
        expectOk(r, `client ${i} (${ip})`).trim(),
        `ping-${i}`,
        `client ${i} (${ip}) got its echo`,
      );
    }
    await waitForOutput(
      srv,
      clients.map(([ip]) => `accepting UDP connection from AF=10 [${v6Groups(ip, true)}]:`),
    );
  },
});

// ncat (nmap's netcat) as a server: `ncat -l -k 7000` listens on [::] and 0.0.0.0 (one
// socket per family, IPV6_V6ONLY on the IPv6 one) and, with -v, logs each client's address;
// each connection gets "hello" from --sh-exec. ncat is also the client.
appTests({
  app: "ncat",
  packages: ["ncat"],
  needs: ["ncat"],
  async run(node) {
    const srv = node.server("ncat", "nc", ["ncat", "-l", "-k", "-v", "7000", "--sh-exec", "echo hello"]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:7000`, `[${VIP.server6}]:7000`]);
    const v4 = expectOk(
      await node.client(VIP.client4, ["ncat", "-4", "--recv-only", "nc", "7000"]),
      "IPv4 client, by name",
    );
    assert.equal(v4, "hello\n");
    const v6 = expectOk(
      await node.client(VIP.client6, ["ncat", "-6", "--recv-only", VIP.server6, "7000"]),
      "IPv6 client",
    );
    assert.equal(v6, "hello\n");
    await waitForOutput(srv, [`Connection from ${VIP.client4}:`, `Connection from ${VIP.client6}:`]);
  },
});

// Real applications: data stores and a message broker with their default configuration
// (redis-server with no config file, PostgreSQL from initdb, MariaDB from
// mariadb-install-db, memcached with no options, mosquitto with Debian's mosquitto.conf),
// each under `sockswitch run` with an IPv4 and an IPv6 virtual IP, reached by an IPv4 client
// by name and an IPv6 client by address, and asked (or its log read) for the client's
// address as the server sees it.

import assert from "node:assert/strict";
import { appendFileSync, chownSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { must } from "../e2e/harness.js";
import { editedCopy, expectOk, VIP, waitForOutput } from "./app-node.js";
import { appTests } from "./app-test.js";

// redis-server with no configuration file: `bind * -::*` (0.0.0.0 and [::] with
// IPV6_V6ONLY), with protected mode off (on, it refuses every client that is not loopback
// when no password is set). `CLIENT LIST` shows the client's address and the server's own.
appTests({
  app: "redis",
  packages: ["redis-server", "redis-tools"],
  needs: ["redis-server", "redis-cli"],
  async run(node) {
    const srv = node.server("redis-server", "cache", ["redis-server", "--protected-mode", "no"]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:6379`, `[${VIP.server6}]:6379`]);
    const v4 = expectOk(
      await node.client(VIP.client4, ["redis-cli", "-h", "cache", "-p", "6379", "CLIENT", "LIST"]),
      "IPv4 client, by name",
    );
    assert.match(v4, new RegExp(`addr=${VIP.client4}:\\d+ laddr=${VIP.server4}:6379 `));
    const v6 = expectOk(
      await node.client(VIP.client6, ["redis-cli", "-h", VIP.server6, "-p", "6379", "CLIENT", "LIST"]),
      "IPv6 client",
    );
    assert.match(v6, new RegExp(`addr=\\[${VIP.client6}\\]:\\d+ laddr=\\[${VIP.server6}\\]:6379 `));
  },
});

/** Debian's PostgreSQL server binaries (the newest installed major version), or null. */
function pgBin(): string | null {
  if (!existsSync("/usr/lib/postgresql")) return null;
  const majors = readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a));
  return majors.length > 0 ? `/usr/lib/postgresql/${majors[0]}/bin` : null;
}

// PostgreSQL: a cluster made by initdb in the test's directory, started with
// listen_addresses='*' (the default, localhost, takes no remote client: '*' is what users
// set; it opens 0.0.0.0 and [::] with IPV6_V6ONLY) and pg_hba.conf lines that let the two
// clients in (initdb's file admits only loopback). psql asks inet_client_addr().
appTests({
  app: "postgresql",
  packages: ["postgresql", "postgresql-client"],
  needs: ["psql", "runuser", "initdb", "postgres"],
  extraDirs: [pgBin() ?? "/usr/lib/postgresql/bin"],
  timeoutMs: 180_000,
  async run(node) {
    const bin = pgBin() as string;
    const data = join(node.dir, "data");
    mkdirSync(data, { mode: 0o700 });
    const pg = must("id", ["-u", "postgres"]).trim();
    const pgGid = must("id", ["-g", "postgres"]).trim();
    chownSync(data, Number(pg), Number(pgGid));
    must("runuser", [
      "-u",
      "postgres",
      "--",
      `${bin}/initdb`,
      "-D",
      data,
      "-U",
      "postgres",
      "-A",
      "trust",
      "--no-sync",
    ]);
    appendFileSync(join(data, "pg_hba.conf"), "host all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n");
    const srv = node.server(
      "postgres",
      "db",
      [`${bin}/postgres`, "-D", data, "-c", "listen_addresses=*", "-c", `unix_socket_directories=${data}`],
      { user: "postgres" },
    );
    await node.waitServices(srv, "tcp", [`${VIP.server4}:5432`, `[${VIP.server6}]:5432`]);
    const sql = "select inet_client_addr(), inet_server_addr()";
    const env = { PGCONNECT_TIMEOUT: "10" };
    const v4 = expectOk(
      await node.client(VIP.client4, ["psql", "-h", "db", "-U", "postgres", "-d", "postgres", "-Atc", sql], {
        env,
      }),
      "IPv4 client, by name",
    );
    assert.equal(v4.trim(), `${VIP.client4}|${VIP.server4}`);
    const v6 = expectOk(
      await node.client(
        VIP.client6,
        ["psql", "-h", VIP.server6, "-U", "postgres", "-d", "postgres", "-Atc", sql],
        {
          env,
        },
      ),
      "IPv6 client",
    );
    assert.equal(v6.trim(), `${VIP.client6}|${VIP.server6}`);
  },
});

// memcached with no options (the binary's defaults: TCP 11211 on every address, one socket
// per family; Debian's /etc/memcached.conf is read only by its service wrapper and binds
// 127.0.0.1). The text protocol through socat: set, get, and `stats conns`, which shows
// each connection's peer and local address.
appTests({
  app: "memcached",
  packages: ["memcached", "socat"],
  needs: ["memcached", "socat"],
  async run(node) {
    const srv = node.server("memcached", "cache", ["memcached", "-u", "memcache"]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:11211`, `[${VIP.server6}]:11211`]);
    const script = "set k 0 0 5\r\nhello\r\nget k\r\nstats conns\r\nquit\r\n";
    const talk = (to: string) => [
      "sh",
      "-c",
      `printf '${script.replace(/\r\n/g, "\\r\\n")}' | socat -t 5 - ${to}`,
    ];
    const v4 = expectOk(await node.client(VIP.client4, talk("TCP4:cache:11211")), "IPv4 client, by name");
    assert.match(v4, /VALUE k 0 5\r\nhello/);
    assert.match(
      v4,
      new RegExp(`addr tcp:${VIP.client4}:\\d+\\r\\nSTAT \\d+:listen_addr tcp:${VIP.server4}:11211`),
    );
    const v6 = expectOk(await node.client(VIP.client6, talk(`TCP6:[${VIP.server6}]:11211`)), "IPv6 client");
    assert.match(v6, /VALUE k 0 5\r\nhello/);
    assert.match(
      v6,
      new RegExp(
        `addr tcp6:\\[${VIP.client6}\\]:\\d+\\r\\nSTAT \\d+:listen_addr tcp6:\\[${VIP.server6}\\]:11211`,
      ),
    );
  },
});

// mosquitto with Debian's /etc/mosquitto/mosquitto.conf (copied with its pid file,
// persistence directory and log moved: the log to stderr) and the two lines users add to
// take remote clients (without a listener mosquitto 2 listens on loopback only):
// `listener 1883` (every address, both families) and `allow_anonymous true`.
appTests({
  app: "mosquitto",
  packages: ["mosquitto", "mosquitto-clients"],
  needs: ["mosquitto", "mosquitto_pub"],
  async run(node) {
    const persist = join(node.dir, "persist");
    mkdirSync(persist);
    chownSync(persist, Number(must("id", ["-u", "mosquitto"])), Number(must("id", ["-g", "mosquitto"])));
    const conf = editedCopy(
      "/etc/mosquitto/mosquitto.conf",
      join(node.dir, "mosquitto.conf"),
      [
        [/^pid_file .*$/m, `pid_file ${join(persist, "mosquitto.pid")}`],
        [/^persistence_location .*$/m, `persistence_location ${persist}/`],
        [/^log_dest file .*$/m, "log_dest stderr"],
      ],
      "\nlistener 1883\nallow_anonymous true\n",
    );
    const srv = node.server("mosquitto", "mqtt", ["mosquitto", "-c", conf]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:1883`, `[${VIP.server6}]:1883`]);
    const pub = (host: string, id: string) => [
      "mosquitto_pub",
      "-h",
      host,
      "-i",
      id,
      "-t",
      "test",
      "-m",
      "hello",
    ];
    expectOk(await node.client(VIP.client4, pub("mqtt", "pub4")), "IPv4 client, by name");
    expectOk(await node.client(VIP.client6, pub(VIP.server6, "pub6")), "IPv6 client");
    await waitForOutput(srv, [
      `New client connected from ${VIP.client4}:`,
      `New client connected from ${VIP.client6}:`,
    ]);
  },
});

// MariaDB with Debian's /etc/mysql configuration, a data directory made by
// mariadb-install-db in the test's directory, started with its paths (data directory,
// socket, pid file) on the command line and `--bind-address=*`, what users set (the
// stock 50-server.cnf binds 127.0.0.1; `*` opens 0.0.0.0 and [::], one socket each). A user
// for the clients is made over the server's UNIX socket. The server's process list shows
// each connection's client address.
appTests({
  app: "mariadb",
  packages: ["mariadb-server", "mariadb-client"],
  needs: ["mariadbd", "mariadb-install-db", "mariadb"],
  timeoutMs: 240_000,
  async run(node) {
    const data = join(node.dir, "data");
    mkdirSync(data);
    chownSync(data, Number(must("id", ["-u", "mysql"])), Number(must("id", ["-g", "mysql"])));
    must("mariadb-install-db", ["--user=mysql", `--datadir=${data}`, "--skip-test-db"]);
    const socket = join(data, "mysqld.sock");
    const srv = node.server("mariadbd", "db", [
      "mariadbd",
      "--user=mysql",
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--pid-file=${join(data, "mysqld.pid")}`,
      "--bind-address=*",
    ]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:3306`, `[${VIP.server6}]:3306`], 60_000);
    await waitForOutput(srv, ["ready for connections"], 60_000);
    must("mariadb", [`--socket=${socket}`, "-e", "CREATE USER app@'%' IDENTIFIED BY 'app'"]);
    const ask = (host: string) => [
      "mariadb",
      "-h",
      host,
      "-u",
      "app",
      "-papp",
      "--connect-timeout=10",
      "-N",
      "-e",
      "select host from information_schema.processlist where id = connection_id()",
    ];
    const v4 = expectOk(await node.client(VIP.client4, ask("db")), "IPv4 client, by name");
    assert.match(v4.trim(), new RegExp(`^${VIP.client4}:\\d+$`));
    const v6 = expectOk(await node.client(VIP.client6, ask(VIP.server6)), "IPv6 client");
    assert.match(v6.trim(), new RegExp(`^${VIP.client6}:\\d+$`));
  },
});

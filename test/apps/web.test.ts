// Real applications: web servers and a proxy with Debian's stock configuration (nginx's
// and apache2's default sites, lighttpd's default, haproxy's stock global/defaults with one
// frontend in front of a web server), each under `sockswitch run` with an IPv4 and an IPv6
// virtual IP, reached by an IPv4 client by name and an IPv6 client by address (curl), and
// each must log the client's virtual IP. Only paths (pid, logs, sockets) are changed in the
// copies of the stock files; what else is added is said at each test.

import assert from "node:assert/strict";
import { chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { must, PYTHON } from "../e2e/harness.js";
import { editedCopy, expectOk, VIP, waitForLog, waitForOutput } from "./app-node.js";
import { appTests } from "./app-test.js";

const CURL = ["curl", "-sS", "--max-time", "10"];
/** curl prints the status and the Server header instead of the body. */
const ANSWER = ["-o", "/dev/null", "-w", "%{http_code} %header{server}"];

// nginx with /etc/nginx/nginx.conf and the default site (`listen 80; listen [::]:80`:
// 0.0.0.0:80 and [::]:80 with IPV6_V6ONLY). The stock nginx.conf is copied with its pid and
// log paths moved into the test's directory (-c); everything it includes is the stock file.
appTests({
  app: "nginx",
  packages: ["nginx"],
  needs: ["nginx", "curl"],
  async run(node) {
    const errorLog = join(node.dir, "error.log");
    const accessLog = join(node.dir, "access.log");
    const conf = editedCopy("/etc/nginx/nginx.conf", join(node.dir, "nginx.conf"), [
      [/^pid .*;$/m, `pid ${join(node.dir, "nginx.pid")};`],
      [/^error_log .*;$/m, `error_log ${errorLog};`],
      [/^(\s*)access_log .*;$/m, `$1access_log ${accessLog};`],
    ]);
    const srv = node.server("nginx", "web", ["nginx", "-e", errorLog, "-c", conf, "-g", "daemon off;"], {
      logs: [errorLog, accessLog],
    });
    await node.waitServices(srv, "tcp", [`${VIP.server4}:80`, `[${VIP.server6}]:80`]);
    // The default site's root holds index.nginx-debian.html, and apache2's index.html if
    // that package is installed too (it comes first): the Server header says who answered.
    const v4 = expectOk(
      await node.client(VIP.client4, [...CURL, ...ANSWER, "-4", "http://web/"]),
      "IPv4 client, by name",
    );
    assert.match(v4, /^200 nginx\//);
    const v6 = expectOk(
      await node.client(VIP.client6, [...CURL, ...ANSWER, "-g", `http://[${VIP.server6}]/`]),
      "IPv6 client",
    );
    assert.match(v6, /^200 nginx\//);
    await waitForLog(accessLog, [`${VIP.client4} - -`, `${VIP.client6} - -`]);
  },
});

// apache2 with Debian's /etc/apache2 as shipped (`Listen 80`: one dual-stack [::]:80 socket;
// the default site logs to ${APACHE_LOG_DIR}/access.log). Debian's envvars file sets the
// pid file and the run, lock and log directories; here the same variables point into the
// test's directory. The configuration itself is not copied.
appTests({
  app: "apache2",
  packages: ["apache2"],
  needs: ["apache2", "curl"],
  async run(node) {
    const dirs = Object.fromEntries(
      ["run", "lock", "log"].map((d) => {
        const path = join(node.dir, d);
        mkdirSync(path);
        return [d, path];
      }),
    ) as Record<"run" | "lock" | "log", string>;
    chownSync(dirs.lock, Number(must("id", ["-u", "www-data"])), Number(must("id", ["-g", "www-data"])));
    const accessLog = join(dirs.log, "access.log");
    const srv = node.server("apache2", "web", ["apache2", "-DFOREGROUND"], {
      env: {
        APACHE_RUN_USER: "www-data",
        APACHE_RUN_GROUP: "www-data",
        APACHE_PID_FILE: join(dirs.run, "apache2.pid"),
        APACHE_RUN_DIR: dirs.run,
        APACHE_LOCK_DIR: dirs.lock,
        APACHE_LOG_DIR: dirs.log,
        LANG: "C",
      },
      logs: [join(dirs.log, "error.log"), accessLog],
    });
    await node.waitServices(srv, "tcp", [`${VIP.server4}:80`, `[${VIP.server6}]:80`]);
    const v4 = expectOk(
      await node.client(VIP.client4, [...CURL, ...ANSWER, "-4", "http://web/"]),
      "IPv4 client, by name",
    );
    assert.match(v4, /^200 Apache\//);
    const v6 = expectOk(
      await node.client(VIP.client6, [...CURL, ...ANSWER, "-g", `http://[${VIP.server6}]/`]),
      "IPv6 client",
    );
    assert.match(v6, /^200 Apache\//);
    await waitForLog(accessLog, [`${VIP.client4} - -`, `${VIP.client6} - -`]);
  },
});

// lighttpd with /etc/lighttpd/lighttpd.conf (server.port 80 on 0.0.0.0, and [::]:80 from
// use-ipv6.pl). Copied with its pid file and error log in the test's directory (the log in a
// directory of www-data's: lighttpd opens it after dropping privileges); lighttpd has no
// access log by default, so the copy adds mod_accesslog writing there. Its document root
// (/var/www/html) may hold no index file (then 403): any answer from lighttpd will do.
appTests({
  app: "lighttpd",
  packages: ["lighttpd"],
  needs: ["lighttpd", "curl"],
  async run(node) {
    const logs = join(node.dir, "logs");
    mkdirSync(logs);
    chownSync(logs, Number(must("id", ["-u", "www-data"])), Number(must("id", ["-g", "www-data"])));
    const errorLog = join(logs, "error.log");
    const accessLog = join(logs, "access.log");
    const conf = editedCopy(
      "/etc/lighttpd/lighttpd.conf",
      join(node.dir, "lighttpd.conf"),
      [
        [/^server\.errorlog\s*=.*$/m, `server.errorlog = "${errorLog}"`],
        [/^server\.pid-file\s*=.*$/m, `server.pid-file = "${join(node.dir, "lighttpd.pid")}"`],
      ],
      `\nserver.modules += ( "mod_accesslog" )\naccesslog.filename = "${accessLog}"\n`,
    );
    const srv = node.server("lighttpd", "web", ["lighttpd", "-D", "-f", conf], {
      logs: [errorLog, accessLog],
    });
    await node.waitServices(srv, "tcp", [`${VIP.server4}:80`, `[${VIP.server6}]:80`]);
    const v4 = expectOk(
      await node.client(VIP.client4, [...CURL, ...ANSWER, "-4", "http://web/"]),
      "IPv4 client, by name",
    );
    assert.match(v4, /^\d{3} lighttpd\//);
    const v6 = expectOk(
      await node.client(VIP.client6, [...CURL, ...ANSWER, "-g", `http://[${VIP.server6}]/`]),
      "IPv6 client",
    );
    assert.match(v6, /^\d{3} lighttpd\//);
    await waitForLog(accessLog, [`${VIP.client4} `, `${VIP.client6} `]);
  },
});

// haproxy with /etc/haproxy/haproxy.cfg (its global and defaults sections) and one frontend,
// as users add it: `bind :80` and `bind :::80 v6only`, to a backend named by DNS. Copied with
// the stats socket in the test's directory and the log sent to stdout (the stock file logs to
// /dev/log, where no syslog runs here). The backend is `python3 -m http.server --bind ::` (its
// own app, both VIPs, one dual-stack socket; without --bind it takes the first address
// getaddrinfo gives, 0.0.0.0 here), which must see haproxy's virtual IP.
appTests({
  app: "haproxy",
  packages: ["haproxy", "python3"],
  needs: ["haproxy", "curl", "python3"],
  async run(node) {
    writeFileSync(join(node.dir, "index.html"), "hello from the backend\n");
    const backend = node.server("backend", "app", [PYTHON, "-m", "http.server", "--bind", "::", "8080"], {
      ips: [VIP.backend4, VIP.backend6],
    });
    await node.waitServices(backend, "tcp", [`${VIP.backend4}:8080`, `[${VIP.backend6}]:8080`]);
    const conf = editedCopy(
      "/etc/haproxy/haproxy.cfg",
      join(node.dir, "haproxy.cfg"),
      [
        [/^\s*log \/dev\/log\s+local0\s*$/m, "\tlog stdout format raw local0"],
        [/^\s*log \/dev\/log\s+local1 notice\s*$/m, ""],
        [/^\s*stats socket \/run\/haproxy\/admin\.sock/m, `\tstats socket ${join(node.dir, "admin.sock")}`],
      ],
      "\nfrontend web\n\tbind :80\n\tbind :::80 v6only\n\tdefault_backend app\n\nbackend app\n\tserver app1 app:8080\n",
    );
    const srv = node.server("haproxy", "proxy", ["haproxy", "-db", "-f", conf]);
    await node.waitServices(srv, "tcp", [`${VIP.server4}:80`, `[${VIP.server6}]:80`]);
    const v4 = expectOk(
      await node.client(VIP.client4, [...CURL, "-4", "http://proxy/"]),
      "IPv4 client, by name",
    );
    assert.equal(v4, "hello from the backend\n");
    const v6 = expectOk(
      await node.client(VIP.client6, [...CURL, "-g", `http://[${VIP.server6}]/`]),
      "IPv6 client",
    );
    assert.equal(v6, "hello from the backend\n");
    await waitForOutput(srv, [`${VIP.client4}:`, `${VIP.client6}:`]);
    // The backend sees the proxy's own virtual IP (of the family haproxy resolved "app" to).
    await waitForOutput(backend, ['"GET / HTTP/1.1" 200']);
    const peers = backend.stderr.split("\n").filter((l) => l.includes('"GET / HTTP/1.1"'));
    for (const l of peers) assert.match(l, /^(::ffff:)?(10\.77\.1\.10|fd77::1:10) /, l);
  },
});

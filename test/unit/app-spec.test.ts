// Unit tests of src/table/app-spec.ts: --name, --ip, --expose, --publish, and the
// daemon-side validation of a registration (specFromRegistration).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidArgumentError } from "../../src/core/errors.js";
import {
  parseAppIps,
  parseExpose,
  parsePublish,
  specFromRegistration,
  validateName,
} from "../../src/table/app-spec.js";
import { DEFAULT_LABELS } from "../../src/table/policy.js";

function invalid(re: RegExp) {
  return (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message);
}

describe("validateName", () => {
  for (const ok of ["a", "web", "web-1", "0", "a1b2", `a${"b".repeat(61)}c`]) {
    test(`accepts ${JSON.stringify(ok)}`, () => {
      assert.equal(validateName(ok), ok);
    });
  }

  for (const bad of ["", "Web", "-web", "web-", "we_b", "we.b", "web 1", `a${"b".repeat(62)}c`, "wéb"]) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => validateName(bad),
        invalid(/^--name ".*" is not a valid name; use lower-case letters, digits and '-'/),
      );
    });
  }
});

describe("parseAppIps", () => {
  test("one IPv4 and one IPv6, canonicalised", () => {
    assert.deepEqual(parseAppIps(["10.77.0.10", "FD77:0:0::10"]), ["10.77.0.10", "fd77::10"]);
  });

  test("comma-separated values and spaces", () => {
    assert.deepEqual(parseAppIps(["10.77.0.10, fd77::10"]), ["10.77.0.10", "fd77::10"]);
  });

  test("no values give no IPs", () => {
    assert.deepEqual(parseAppIps([]), []);
  });

  test("an IPv4-mapped IPv6 address counts as IPv4", () => {
    assert.deepEqual(parseAppIps(["::ffff:10.77.0.10"]), ["10.77.0.10"]);
    assert.throws(() => parseAppIps(["10.77.0.10", "::ffff:10.77.0.11"]), invalid(/given twice for IPv4/));
  });

  test("two IPv4 addresses are refused", () => {
    assert.throws(
      () => parseAppIps(["10.77.0.10", "10.77.0.11"]),
      invalid(/^--ip is given twice for IPv4; an app has at most one IPv4 and one IPv6 address$/),
    );
    assert.throws(() => parseAppIps(["10.77.0.10,10.77.0.11"]), invalid(/given twice for IPv4/));
  });

  test("two IPv6 addresses are refused", () => {
    assert.throws(() => parseAppIps(["fd77::1", "fd77::2"]), invalid(/given twice for IPv6/));
  });

  for (const bad of ["127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "::"]) {
    test(`rejects loopback / unspecified ${bad}`, () => {
      assert.throws(() => parseAppIps([bad]), invalid(/cannot be an app's address; pick a unicast address/));
    });
  }

  for (const bad of [
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "ff02::1",
    "ff05::1:3",
  ]) {
    test(`rejects multicast / reserved ${bad}`, () => {
      assert.throws(() => parseAppIps([bad]), invalid(/is a multicast or reserved address/));
    });
  }

  test("223.255.255.255 is still unicast", () => {
    assert.deepEqual(parseAppIps(["223.255.255.255"]), ["223.255.255.255"]);
  });

  for (const bad of ["10.77.0", "abc", "", "10.77.0.10/24"]) {
    test(`rejects non-address ${JSON.stringify(bad)} with an example`, () => {
      assert.throws(() => parseAppIps([bad]), invalid(/is not an IP address; write it like 10\.77\.0\.10/));
    });
  }
});

describe("parseExpose", () => {
  test("APP_PORT:HOST_PORT", () => {
    assert.deepEqual(parseExpose("8080:18080"), { appPort: 8080, hostIp: null, hostPort: 18080 });
  });

  test("APP_PORT:HOST_IP:HOST_PORT with IPv4", () => {
    assert.deepEqual(parseExpose("8080:127.0.0.1:18080"), {
      appPort: 8080,
      hostIp: "127.0.0.1",
      hostPort: 18080,
    });
  });

  test("APP_PORT:[HOST_IPv6]:HOST_PORT", () => {
    assert.deepEqual(parseExpose("8080:[::1]:18080"), { appPort: 8080, hostIp: "::1", hostPort: 18080 });
    assert.deepEqual(parseExpose("53:[2001:DB8::0:1]:5353"), {
      appPort: 53,
      hostIp: "2001:db8::1",
      hostPort: 5353,
    });
  });

  test("the host IP is canonicalised", () => {
    assert.equal(parseExpose("1:::ffff:192.0.2.1:2").hostIp, "192.0.2.1");
  });

  test("no colon at all", () => {
    assert.throws(
      () => parseExpose("8080"),
      invalid(/^--expose "8080" needs APP_PORT:HOST_PORT \(e\.g\. 8080:18080\)/),
    );
  });

  for (const [bad, re] of [
    ["8080:", /host port "" is not a port/],
    [":18080", /app port "" is not a port/],
    ["0:18080", /app port "0" is not a port/],
    ["8080:70000", /host port "70000" is not a port/],
    ["x:18080", /app port "x" is not a port/],
    ["8080:1.2.3.4:", /host port "" is not a port/],
    ["8080:localhost:18080", /"localhost" is not an IP address/],
    ["8080:[::1:18080", /"\[::1" is not an IP address/],
    ["8080:1.2.3:18080", /"1\.2\.3" is not an IP address/],
    ["8080::18080", /"" is not an IP address/],
  ] as const) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseExpose(bad), invalid(re));
    });
  }

  test("errors name the whole --expose value", () => {
    assert.throws(() => parseExpose("8080:99999"), invalid(/^--expose "8080:99999": host port/));
  });
});

describe("parsePublish (Docker's order)", () => {
  test("HOST_PORT:APP_PORT", () => {
    assert.deepEqual(parsePublish("18080:8080"), { appPort: 8080, hostIp: null, hostPort: 18080 });
  });

  test("HOST_IP:HOST_PORT:APP_PORT, IPv4 and bracketed IPv6", () => {
    assert.deepEqual(parsePublish("127.0.0.1:18080:8080"), {
      appPort: 8080,
      hostIp: "127.0.0.1",
      hostPort: 18080,
    });
    assert.deepEqual(parsePublish("[2001:DB8::1]:5353:53"), {
      appPort: 53,
      hostIp: "2001:db8::1",
      hostPort: 5353,
    });
  });

  test("is the same rule as --expose in the other order", () => {
    assert.deepEqual(parsePublish("127.0.0.1:18080:8080"), parseExpose("8080:127.0.0.1:18080"));
  });

  for (const [bad, re] of [
    ["8080", /^--publish "8080" needs HOST_PORT:APP_PORT \(e\.g\. 18080:8080, as docker run -p\)/],
    ["18080:", /app port "" is not a port/],
    [":8080", /host port "" is not a port/],
    ["18080:80/sctp", /the protocol must be tcp or udp/],
    ["localhost:18080:8080", /"localhost" is not an IP address/],
  ] as const) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parsePublish(bad), invalid(re));
    });
  }
});

describe("specFromRegistration (the run options as written, and the command)", () => {
  test("a full registration", () => {
    const spec = specFromRegistration({
      name: "web",
      ip: ["10.77.0.10", "fd77::10"],
      labels: "zone=web,tier=front",
      expose: ["8080:18080", "9090:[::1]:19090"],
      publish: ["127.0.0.1:18081:8081"],
      lb: "random",
      command: ["python3", "-m", "http.server"],
      user: "nobody",
    });
    assert.deepEqual(spec, {
      name: "web",
      ips: ["10.77.0.10", "fd77::10"],
      labels: { zone: "web", tier: "front" },
      expose: [
        { appPort: 8080, hostIp: null, hostPort: 18080 },
        { appPort: 9090, hostIp: "::1", hostPort: 19090 },
        { appPort: 8081, hostIp: "127.0.0.1", hostPort: 18081 },
      ],
      lb: "random",
      command: ["python3", "-m", "http.server"],
      user: "nobody",
    });
  });

  test("defaults: no name, no IPs, labels zone=default, lb null, user null", () => {
    const spec = specFromRegistration({ command: ["true"] });
    assert.deepEqual(spec, {
      name: "",
      ips: [],
      labels: { zone: "default" },
      expose: [],
      lb: null,
      command: ["true"],
      user: null,
    });
    assert.equal(spec.labels, DEFAULT_LABELS);
  });

  for (const v of [null, [], "x", 5, true]) {
    test(`rejects a non-object ${JSON.stringify(v)}`, () => {
      assert.throws(() => specFromRegistration(v), invalid(/^bad app registration: not a JSON object$/));
    });
  }

  test("newNetns: false is kept (the placement), absent is the default, anything else refused", () => {
    assert.equal(specFromRegistration({ newNetns: false, command: ["x"] }).newNetns, false);
    assert.equal(specFromRegistration({ command: ["x"] }).newNetns, undefined);
    assert.throws(
      () => specFromRegistration({ newNetns: "no", command: ["x"] }),
      /newNetns must be true or false/,
    );
  });

  test("rejects unknown fields, naming them", () => {
    assert.throws(
      () => specFromRegistration({ name: "web", bogus: 1, evil: true, command: ["x"] }),
      invalid(/^bad app registration: unknown field\(s\) bogus, evil$/),
    );
  });

  for (const [field, value, re] of [
    ["name", 5, /name must be a string/],
    ["ip", "10.77.0.10", /ip must be a list of strings/],
    ["ip", [1], /ip must be a list of strings/],
    ["labels", { zone: "web" }, /labels must be a string/],
    ["labels", null, /labels must be a string/],
    ["expose", "8080:18080", /expose must be a list of strings/],
    ["publish", [8080], /publish must be a list of strings/],
    ["lb", 1, /lb must be a string/],
    ["command", "sleep 1", /command must be a list of strings/],
    ["command", ["sleep", 1], /command must be a list of strings/],
    ["user", 0, /user must be a string/],
  ] as const) {
    test(`rejects ${field} = ${JSON.stringify(value)}`, () => {
      assert.throws(
        () => specFromRegistration({ command: ["x"], [field]: value }),
        invalid(new RegExp(`^bad app registration: ${re.source}`)),
      );
    });
  }

  test("values get the sentences of sockswitch run", () => {
    const bad = (o: object) => () => specFromRegistration({ command: ["x"], ...o });
    assert.throws(bad({ name: "Web" }), invalid(/^--name "Web" is not a valid name/));
    assert.throws(bad({ ip: ["127.0.0.1"] }), invalid(/^--ip 127\.0\.0\.1 cannot be an app's address/));
    assert.throws(bad({ labels: "bad key=x" }), invalid(/^label "bad key=x" is malformed/));
    assert.throws(bad({ expose: ["8080"] }), invalid(/^--expose "8080" needs APP_PORT:HOST_PORT/));
    assert.throws(bad({ lb: "least-conn" }), invalid(/^--lb "least-conn" is not a mode/));
    assert.throws(() => specFromRegistration({}), invalid(/needs a command/));
  });

  test("the first bad option is the one sockswitch run names (same order)", () => {
    assert.throws(
      () => specFromRegistration({ command: ["x"], name: "Web", ip: ["bad"], expose: ["1"] }),
      invalid(/^--expose "1"/),
    );
  });
});

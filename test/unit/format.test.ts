// Unit tests of src/cli/format.ts: kubectl-style tables, ages and label text.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { age, labelsText, publishText, StreamTable, table } from "../../src/cli/format.js";
import { watchRows } from "../../src/cli/output.js";

const NOW = Date.parse("2024-06-01T12:00:00.000Z");
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

describe("age", () => {
  test("seconds below two minutes", () => {
    assert.equal(age(ago(0), NOW), "0s");
    assert.equal(age(ago(5), NOW), "5s");
    assert.equal(age(ago(119), NOW), "119s");
  });

  test("fractions of a second are truncated", () => {
    assert.equal(age(new Date(NOW - 5999).toISOString(), NOW), "5s");
  });

  test("minutes from two minutes to below two hours", () => {
    assert.equal(age(ago(120), NOW), "2m");
    assert.equal(age(ago(179), NOW), "2m");
    assert.equal(age(ago(3600), NOW), "60m");
    assert.equal(age(ago(7199), NOW), "119m");
  });

  test("hours from two hours to below two days", () => {
    assert.equal(age(ago(7200), NOW), "2h");
    assert.equal(age(ago(86400), NOW), "24h");
    assert.equal(age(ago(172799), NOW), "47h");
  });

  test("days from two days", () => {
    assert.equal(age(ago(172800), NOW), "2d");
    assert.equal(age(ago(30 * 86400 + 5), NOW), "30d");
  });

  test("a time in the future is 0s", () => {
    assert.equal(age(new Date(NOW + 60_000).toISOString(), NOW), "0s");
  });

  test("now defaults to the current time", () => {
    assert.equal(age(new Date(Date.now() - 10 * 60_000).toISOString()), "10m");
  });
});

describe("table", () => {
  const out = table(
    ["NAME", "IP", "AGE"],
    [
      ["web", "10.77.0.10", "5s"],
      ["database", "fd77::10", "3m"],
    ],
  );
  const lines = out.split("\n");

  test("one line for the header and one per row", () => {
    assert.equal(lines.length, 3);
  });

  test("headers are printed as given (upper case), first", () => {
    assert.match(lines[0] ?? "", /^NAME\s+IP\s+AGE$/);
  });

  test("no border characters and no trailing spaces", () => {
    assert.doesNotMatch(out, /[│┌┐└┘├┤┬┴┼─|+]/);
    assert.doesNotMatch(out, /[-=]{3,}/);
    for (const l of lines) assert.equal(l, l.trimEnd());
    assert.ok(!out.startsWith(" "));
  });

  test("no colour escapes", () => {
    assert.equal(out.includes(String.fromCharCode(27)), false);
  });

  test("columns are aligned, separated by at least three spaces", () => {
    const ipCol = (lines[0] ?? "").indexOf("IP");
    const ageCol = (lines[0] ?? "").indexOf("AGE");
    assert.equal((lines[1] ?? "").indexOf("10.77.0.10"), ipCol);
    assert.equal((lines[2] ?? "").indexOf("fd77::10"), ipCol);
    assert.equal((lines[1] ?? "").indexOf("5s"), ageCol);
    assert.equal((lines[2] ?? "").indexOf("3m"), ageCol);
    assert.equal(ipCol, "database".length + 3);
    assert.equal(lines[2], "database   fd77::10     3m");
  });

  test("rows keep their order and cells their text", () => {
    assert.ok(lines[1]?.startsWith("web "));
    assert.ok(lines[2]?.startsWith("database "));
  });

  test("no rows: only the header", () => {
    assert.equal(table(["NAME", "AGE"], []), "NAME   AGE");
  });

  test("empty last cell leaves no trailing spaces", () => {
    const t = table(["A", "B"], [["x", ""]]);
    assert.equal(t.split("\n")[1], "x");
  });
});

describe("labelsText", () => {
  test("k=v joined with commas", () => {
    assert.equal(labelsText({ zone: "web", tier: "front" }), "zone=web,tier=front");
    assert.equal(labelsText({ zone: "default" }), "zone=default");
  });

  test("no labels print as <none>", () => {
    assert.equal(labelsText({}), "<none>");
  });
});

describe("publishText", () => {
  test("Docker's order: [HOST_IP:]HOST_PORT->APP_PORT[/proto]", () => {
    assert.equal(publishText("8080:18080"), "18080->8080");
    assert.equal(publishText("8080:127.0.0.1:18080/tcp"), "127.0.0.1:18080->8080/tcp");
    assert.equal(publishText("53:[::1]:5353/udp"), "[::1]:5353->53/udp");
  });
});

describe("StreamTable (rows printed one at a time: sockswitch events)", () => {
  test("rows line up under the header; the last column is not padded", () => {
    const t = new StreamTable(["TIME", "KIND", "NAME", "DETAIL"], [24, 7, 6]);
    const lines = [
      t.header(),
      t.row(["2026-12-01T04:26:19.123Z", "app", "web", "10.77.0.2 pid 7"]),
      t.row(["2026-12-01T04:26:20.004Z", "service", "api", "tcp 10.77.0.3:80 -> 127.0.0.1:41000"]),
    ];
    assert.deepEqual(lines, [
      "TIME                       KIND      NAME     DETAIL",
      "2026-12-01T04:26:19.123Z   app       web      10.77.0.2 pid 7",
      "2026-12-01T04:26:20.004Z   service   api      tcp 10.77.0.3:80 -> 127.0.0.1:41000",
    ]);
  });

  test("a wider value widens its column from that row on", () => {
    const t = new StreamTable(["NAME", "DETAIL"], [4]);
    assert.equal(t.row(["a-long-name", "x"]), "a-long-name   x");
    assert.equal(t.row(["b", "y"]), "b             y");
  });
});

describe("watchRows (get -w: the list, then a row per change)", () => {
  const proxy = (listen: string, target: string) => ({
    listen,
    target,
    backends: ["127.0.0.1:1"],
    active: 0,
    total: 0,
    createdAt: new Date().toISOString(),
  });

  test("later rows keep the list's columns, even when narrower", () => {
    const w = watchRows("proxies", [proxy("0.0.0.0:8080", "a-rather-long-target:80")], false);
    const lines = [...w.list().split("\n"), w.row(proxy("0.0.0.0:81", "b:80"))];
    assert.equal(lines.length, 3);
    const at = (lines[0] as string).indexOf("BACKENDS");
    for (const l of lines.slice(1)) assert.equal(l.indexOf("127.0.0.1:1"), at, lines.join("\n"));
  });

  test("an empty list says so; the first row comes with the header", () => {
    const w = watchRows("proxies", [], false);
    assert.equal(w.list(), "No proxies found.");
    const [head, row] = w.row(proxy("0.0.0.0:81", "b:80")).split("\n");
    assert.equal(row?.indexOf("127.0.0.1:1"), head?.indexOf("BACKENDS"));
    assert.equal(w.row(proxy("0.0.0.0:82", "c:80")).split("\n").length, 1);
  });
});

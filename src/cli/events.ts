// `sockswitch events` and the stream under `get -w`: the API's event stream
// (text/event-stream, GET /v1/events) read line by line; and `sockswitch version`.

import { apiGet, apiStream } from "../api/client.js";
import { InvalidArgumentError } from "../core/errors.js";
import { StreamTable } from "./format.js";
import { CLI_VERSION, print } from "./shared.js";

/** One event of the stream (docs/api.md, Event). */
export interface StreamEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly kind: "app" | "service" | "node" | "denial";
  readonly time: string;
  readonly object: Record<string, unknown>;
}

/** Reads the server-sent events at path until the stream ends; onEvent gets each in order. */
export async function followEvents(
  socket: string,
  path: string,
  onEvent: (ev: StreamEvent) => void | Promise<void>,
): Promise<void> {
  let buffered = "";
  let chain: Promise<void> = Promise.resolve();
  await apiStream(socket, path, (text) => {
    buffered += text;
    for (let end = buffered.indexOf("\n\n"); end !== -1; end = buffered.indexOf("\n\n")) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data === "") continue; // a comment (keep-alive)
      const ev = JSON.parse(data) as StreamEvent;
      chain = chain.then(() => onEvent(ev));
    }
  });
  await chain;
}

const KINDS = ["app", "service", "node", "denial"];

export async function events(socket: string, o: { kinds?: string; output: string }): Promise<void> {
  if (o.output !== "table" && o.output !== "json")
    throw new InvalidArgumentError(`-o "${o.output}" is not a format for events; use table or json`);
  const q = new URLSearchParams();
  if (o.kinds !== undefined) {
    for (const k of o.kinds.split(","))
      if (!KINDS.includes(k.trim()))
        throw new InvalidArgumentError(`--kinds: "${k}" is not a kind; use ${KINDS.join(", ")}`);
    q.set("kinds", o.kinds);
  }
  // TIME is ISO 8601 with milliseconds (24), KIND and TYPE are words of at most 7 and 8.
  const t = new StreamTable(["TIME", "KIND", "TYPE", "NAME", "DETAIL"], [24, 7, 8, 16]);
  let first = true;
  await followEvents(socket, `/v1/events${q.size > 0 ? `?${q}` : ""}`, (ev) => {
    if (o.output === "json") return print(JSON.stringify(ev));
    if (first) print(t.header());
    first = false;
    print(t.row([ev.time, ev.kind, ev.type, nameOf(ev), detailOf(ev)]));
  });
}

function nameOf(ev: StreamEvent): string {
  const o = ev.object;
  if (ev.kind === "denial") return String(o.app ?? "");
  return String(o.name || o.id || "");
}

function detailOf(ev: StreamEvent): string {
  const o = ev.object;
  switch (ev.kind) {
    case "app":
      return o.status === "exited"
        ? `exited${o.exitCode === null ? "" : ` (${o.exitCode})`}`
        : `${(o.ips as string[]).join(",")} pid ${o.pid}`;
    case "service":
      return `${o.proto} ${o.address} -> ${o.host}`;
    case "node":
      return `${o.ip} apps ${o.apps}`;
    case "denial":
      return `${o.reason}: ${o.proto ?? "tcp"} ${o.destination}`;
  }
}

export async function version(socket: string, output: string): Promise<void> {
  if (output !== "table" && output !== "json")
    throw new InvalidArgumentError(`-o "${output}" is not a format for version; use table or json`);
  let daemon: { version: string; node: string; store: string } | null = null;
  let error: unknown = null;
  try {
    daemon = await apiGet(socket, "/v1/health");
  } catch (err) {
    error = err;
  }
  if (output === "json") {
    print(
      JSON.stringify(
        { client: { version: CLI_VERSION }, daemon: daemon ? { ...daemon, socket } : null },
        null,
        2,
      ),
    );
  } else {
    print(`Client:  sockswitch ${CLI_VERSION}`);
    if (daemon)
      print(`Daemon:  sockswitch ${daemon.version} (node ${daemon.node}, store ${daemon.store}, ${socket})`);
  }
  if (error) throw error;
}

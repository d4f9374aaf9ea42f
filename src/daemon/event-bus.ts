// The daemon's event stream (GET /v1/events, `get -w`, `sockswitch events`): changes to
// apps, services and nodes, and connections refused by policy. Publishing costs nothing
// when nobody listens; a subscriber that throws is dropped, never the publisher.

import type { Logger } from "pino";
import type { ApiEvent, EventSource } from "../api/context.js";
import { appView, nodeView, serviceView } from "../api/views.js";
import { messageOf } from "../core/errors.js";
import { matchesSelector, type Requirement } from "../table/selector.js";
import type { TableChange, TableObserver } from "../table/table.js";
import type { Host } from "./host.js";

interface Subscriber {
  readonly kinds: ReadonlySet<string>;
  readonly selector: readonly Requirement[] | null;
  readonly fn: (ev: ApiEvent) => void;
}

/** Log messages of refused calls (docs/cli.md, "Logging") that become denial events. */
export const DENIALS: Record<string, string> = {
  "connection denied by label policy": "label-policy",
  "datagram to a client denied by label policy": "label-policy",
  "egress denied (--egress deny)": "egress-deny",
  "connection to a host pool port refused": "pool-port",
  "connection to a managed listener from an unmanaged peer refused": "unmanaged-peer",
};

export class EventBus implements EventSource {
  private readonly subs = new Set<Subscriber>();

  constructor(private readonly log: Logger) {}

  get listening(): boolean {
    return this.subs.size > 0;
  }

  subscribe(kinds: ReadonlySet<string>, selector: readonly Requirement[] | null, fn: (ev: ApiEvent) => void) {
    const sub = { kinds, selector, fn };
    this.subs.add(sub);
    return () => {
      this.subs.delete(sub);
    };
  }

  publish(type: ApiEvent["type"], kind: ApiEvent["kind"], object: Record<string, unknown>): void {
    if (this.subs.size === 0) return;
    const ev: ApiEvent = { type, kind, time: new Date().toISOString(), object };
    for (const s of this.subs) {
      if (!s.kinds.has(kind)) continue;
      const labels = object.labels as Record<string, string> | undefined;
      if (s.selector && (kind === "app" || kind === "service") && !matchesSelector(labels ?? {}, s.selector))
        continue;
      try {
        s.fn(ev);
      } catch (err) {
        this.subs.delete(s);
        this.log.warn({ err: messageOf(err) }, "an event subscriber failed; dropped");
      }
    }
  }

  /** The logger's tap: refused calls become denial events. */
  tap(fields: Record<string, unknown>, msg: string): void {
    const reason = DENIALS[msg];
    if (reason === undefined || this.subs.size === 0) return;
    this.publish("ADDED", "denial", {
      app: fields.app ?? "",
      proto: fields.proto ?? "tcp",
      name: fields.name ?? "",
      destination: fields.dst ?? fields.listener ?? "",
      reason,
      message: msg,
    });
  }
}

/**
 * The table's changes as events. This node's apps are left out: the daemon tells their
 * start and end itself (app-control.ts), with what the table does not know (exit status).
 */
export function tableEvents(bus: EventBus, host: Host, self: string): TableObserver {
  const seenApps = new Set<string>();
  const seenNodes = new Set<string>();
  return (c: TableChange) => {
    if (c.kind === "app") {
      if (c.app.node === self) return;
      const known = seenApps.has(c.app.id);
      if (c.op === "remove") seenApps.delete(c.app.id);
      else seenApps.add(c.app.id);
      if (!bus.listening) return;
      const type = c.op === "remove" ? "DELETED" : known ? "MODIFIED" : "ADDED";
      bus.publish(type, "app", appView(c.app, host.table) as never);
    } else if (c.kind === "service") {
      if (bus.listening)
        bus.publish(c.op === "remove" ? "DELETED" : "ADDED", "service", serviceView(c.service) as never);
    } else {
      const known = seenNodes.has(c.node.name);
      if (c.op === "remove") seenNodes.delete(c.node.name);
      else seenNodes.add(c.node.name);
      if (!bus.listening) return;
      const type = c.op === "remove" ? "DELETED" : known ? "MODIFIED" : "ADDED";
      bus.publish(type, "node", nodeView(c.node, self) as never);
    }
  };
}

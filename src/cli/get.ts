// `sockswitch get RESOURCE [NAME...] [-o FORMAT] [-l SELECTOR] [-a] [-w]`: the table over the
// REST API. -w prints the list, then each change to the resource as it happens (from the
// API's event stream) until interrupted.

import { apiGet } from "../api/client.js";
import { InvalidArgumentError, NotFoundError } from "../core/errors.js";
import { parseSelector } from "../table/selector.js";
import { ALIASES, matchesName, RESOURCES, type Resource } from "./columns.js";
import { followEvents } from "./events.js";
import { type Format, parseFormat, renderDocument, renderList, watchRows } from "./output.js";
import { print } from "./shared.js";

export interface GetOptions {
  readonly output: string;
  readonly selector?: string;
  readonly all?: boolean;
  readonly watch?: boolean;
}

export function resourceOf(what: string): Resource {
  const resource = ALIASES[what];
  if (!resource)
    throw new InvalidArgumentError(`cannot get "${what}"; choose one of: ${RESOURCES.join(", ")}`);
  return resource;
}

/** The resource's list path with the query that -l and -a ask for. */
export function listPath(resource: Resource, selector: string | undefined, all: boolean): string {
  const q = new URLSearchParams();
  if (selector !== undefined) q.set("selector", selector);
  if (all) q.set("all", "true");
  const qs = q.toString();
  return `/v1/${resource}${qs ? `?${qs}` : ""}`;
}

export async function get(socket: string, what: string, names: string[], o: GetOptions): Promise<void> {
  const resource = resourceOf(what);
  const format = parseFormat(o.output);
  if (o.selector !== undefined) {
    if (resource !== "apps" && resource !== "services")
      throw new InvalidArgumentError(`-l: ${resource} have no labels; selectors apply to apps and services`);
    parseSelector(o.selector);
  }
  if (o.all && resource !== "apps")
    throw new InvalidArgumentError("-a lists finished apps; it applies to `get apps` only");
  const body = await apiGet<{ items: Record<string, unknown>[] }>(
    socket,
    listPath(resource, o.selector, o.all === true || (names.length > 0 && resource === "apps")),
  );
  let items = body.items;
  if (names.length > 0) {
    // A socket names its app by id: NAME may be the app's name as well.
    const idOf = new Map<string, string>();
    if (resource === "sockets")
      for (const a of (await apiGet<{ items: { id: string; name: string }[] }>(socket, "/v1/apps")).items)
        if (a.name) idOf.set(a.name, a.id);
    const matches = (i: Record<string, unknown>, n: string): boolean =>
      matchesName(resource, i, n) || matchesName(resource, i, idOf.get(n) ?? n);
    items = items.filter((i) => names.some((n) => matches(i, n)));
    const missing = names.filter((n) => !items.some((i) => matches(i, n)));
    if (missing.length > 0)
      throw new NotFoundError(
        resource === "sockets"
          ? `no sockets of app "${missing.join('", "')}" (an app's name or id); see \`sockswitch get sockets\``
          : `no ${resource.replace(/s$/, "").replace(/ie$/, "y")} "${missing.join('", "')}"; see \`sockswitch get ${resource}\``,
      );
  }
  if (!o.watch) {
    print(await renderList(resource, items, format));
    return;
  }
  const rows = format === "table" || format === "wide" ? watchRows(resource, items, format === "wide") : null;
  print(rows ? rows.list() : await renderList(resource, items, format));
  await watch(socket, resource, names, o, format, rows);
}

async function watch(
  socket: string,
  resource: Resource,
  names: string[],
  o: GetOptions,
  format: Format,
  rows: ReturnType<typeof watchRows> | null,
) {
  const kind =
    resource === "apps" ? "app" : resource === "services" ? "service" : resource === "nodes" ? "node" : null;
  if (kind === null)
    throw new InvalidArgumentError(`-w: ${resource} have no event stream; watch apps, services or nodes`);
  const q = new URLSearchParams({ kinds: kind });
  if (o.selector !== undefined) q.set("selector", o.selector);
  await followEvents(socket, `/v1/events?${q}`, async (ev) => {
    const obj = ev.object as Record<string, unknown>;
    if (names.length > 0 && !names.some((n) => matchesName(resource, obj, n))) return;
    if (ev.type === "DELETED" && resource === "apps" && !o.all && obj.status !== "exited") return;
    if (rows) print(rows.row(obj));
    else if (format === "json" || format === "yaml") print(await renderDocument(ev, format));
  });
}

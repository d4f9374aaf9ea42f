// Resolving `--user NAME|UID[:GROUP|GID]` to numeric ids from /etc/passwd and /etc/group,
// here rather than in the static launcher, where NSS does not work.

import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "../core/errors.js";

export interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  readonly groups: number[];
}

function readTable(path: string): string[][] {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => l.split(":"));
  } catch {
    return [];
  }
}

/** A group name or numeric gid, from /etc/group. */
export function resolveGroup(spec: string, flag: string): number {
  if (/^\d+$/.test(spec)) return Number(spec);
  const row = readTable("/etc/group").find((r) => r[0] === spec);
  if (!row)
    throw new InvalidArgumentError(`${flag} "${spec}": no such group in /etc/group; give a name or a gid`);
  return Number(row[2]);
}

export function resolveUser(spec: string): ResolvedUser {
  const [userPart, groupPart] = spec.split(":", 2) as [string, string | undefined];
  const passwd = readTable("/etc/passwd");
  const groupsFile = readTable("/etc/group");
  let uid: number;
  let gid: number | undefined;
  let name: string | undefined;
  if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const row = passwd.find((r) => r[2] === userPart);
    name = row?.[0];
    gid = row ? Number(row[3]) : undefined;
  } else {
    const row = passwd.find((r) => r[0] === userPart);
    if (!row)
      throw new InvalidArgumentError(
        `--user "${userPart}": no such user in /etc/passwd; give a name or a numeric uid`,
      );
    uid = Number(row[2]);
    gid = Number(row[3]);
    name = userPart;
  }
  if (groupPart !== undefined) {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const row = groupsFile.find((r) => r[0] === groupPart);
      if (!row)
        throw new InvalidArgumentError(`--user "${spec}": no such group "${groupPart}" in /etc/group`);
      gid = Number(row[2]);
    }
  }
  if (gid === undefined) gid = uid;
  const groups = name
    ? groupsFile.filter((r) => (r[3] ?? "").split(",").includes(name as string)).map((r) => Number(r[2]))
    : [];
  return { uid, gid, groups: [...new Set([gid, ...groups])] };
}

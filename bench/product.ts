// Which sockswitch is measured. By default the work tree's own build (bin/sockswitch,
// dist/, build/). With --commit REF, a clean copy of that commit is exported with
// `git archive` into bench/build/product-<hash>/ and built there (addon, launcher, dist),
// so that a long run measures one known commit even while the work tree is being edited.
// The report records the commit, and whether the work tree differed from it.

import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { BUILD, must, ROOT, sh } from "./env.js";

export interface Product {
  root: string;
  cli: string;
  commit: string;
  /** True when the measured tree has changes that no commit holds. */
  dirty: boolean;
}

const git = (...args: string[]): string => must("git", ["-C", ROOT, ...args]).trim();

function at(root: string, commit: string, dirty: boolean): Product {
  return { root, cli: join(root, "bin", "sockswitch"), commit, dirty };
}

/** The product in the work tree, as built there. */
export function workTree(): Product {
  const dirty =
    sh("git", ["-C", ROOT, "status", "--porcelain", "--", "src", "native", "bin"]).stdout.trim() !== "";
  return at(ROOT, git("rev-parse", "HEAD"), dirty);
}

/** What the build is made of: commits that touch only bench/ or docs do not rebuild it. */
const PRODUCT_FILES = ["src", "native", "bin", "binding.gyp", "tsconfig.json", "tsconfig.build.json"];

/** A clean build of one commit (made once, then reused), named by the last commit that changed the product. */
export function ofCommit(ref: string, progress: (line: string) => void): Product {
  const resolved = git("rev-parse", "--verify", `${ref}^{commit}`);
  const commit = git("log", "-1", "--format=%H", resolved, "--", ...PRODUCT_FILES);
  const root = join(BUILD, `product-${commit.slice(0, 12)}`);
  const done = join(root, ".built");
  if (!existsSync(done)) {
    progress(`building sockswitch ${commit.slice(0, 12)} in ${root}`);
    must("rm", ["-rf", root]);
    mkdirSync(root, { recursive: true });
    must("sh", ["-c", `git -C '${ROOT}' archive ${commit} | tar -x -C '${root}'`]);
    symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"));
    const npx = (...args: string[]): void => void must("npx", args, 600_000);
    must("sh", ["-c", `cd '${root}' && npx node-gyp rebuild`], 600_000);
    must("make", ["-C", join(root, "native", "launcher")], 600_000);
    npx("tsc", "-p", join(root, "tsconfig.build.json"));
    must("touch", [done]);
  }
  return at(root, commit, false);
}

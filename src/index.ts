// Entry point of the CLI (bin/sockswitch runs the built copy of this file).
import { main } from "./cli/main.js";

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`sockswitch: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

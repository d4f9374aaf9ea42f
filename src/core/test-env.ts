// Environment variables the daemon reads for tests only (docs/cli.md, Environment): they
// change no behaviour a user relies on, only let a test reach paths or bounds that this
// machine would not. SOCKSWITCH_TEST_HIDE_FEATURES is read by the kernel probe
// (core/kernel-info.ts).

/** Multiplies the daemon's bounds on etcd calls (the emulated kernel VM is many times slower). */
export const TIME_SCALE_ENV = "SOCKSWITCH_TEST_TIME_SCALE";

/** SOCKSWITCH_TEST_TIME_SCALE as a number >= 1 (1 when unset or not a number). */
export function testTimeScale(env: NodeJS.ProcessEnv = process.env): number {
  return Math.max(1, Number(env[TIME_SCALE_ENV]) || 1);
}

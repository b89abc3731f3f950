/**
 * V8 flags lazypulld runs with (the bin's shebang, `pnpm lazypulld` and the tests pass them).
 *
 * `--optimize-for-size` makes V8 grow the heap in small steps and collect sooner. A daemon walking a
 * 20,000-file image makes a lot of short-lived garbage; with V8's defaults the old generation grew to
 * about twice the live heap before a full collection, and RSS peaked near 280 MB for ~60 MB of live
 * objects. With the flag the same walk peaked at ~158 MB (apps/daemon/bench/rss.ts). Smaller young
 * generations (`--max-semi-space-size`) alone made it worse: garbage got promoted instead.
 */
export const NODE_FLAGS: readonly string[] = ["--optimize-for-size"];

/** the flags this process was started without (a hand-rolled `node dist/main.js`, say) */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return NODE_FLAGS.filter((f) => !execArgv.includes(f));
}

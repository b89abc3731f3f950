// One file for the `lazypull` bin: node then reads and compiles one script instead of resolving and
// loading the hundreds of small modules of the workspace packages and their dependencies, which is
// most of a cold CLI start (figures in the README). Built from the TypeScript sources (esbuild strips
// the types; `tsc` checks them and still emits dist/*.js and .d.ts for the package's `exports`), so it
// takes well under a second. fuse-native stays outside: its native addon is found relative to its own
// package directory.
//
//   node scripts/bundle.mjs [OUTFILE]     default dist/lazypull.mjs (+ .map)
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
await build({
  entryPoints: [join(pkg, "src/main.ts")],
  outfile: resolve(process.argv[2] ?? join(pkg, "dist/lazypull.mjs")),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["@lazypull/source"],
  sourcemap: "linked",
  external: ["fuse-native"],
  // CommonJS dependencies bundled into ESM still call require() for node builtins
  banner: { js: "import { createRequire as __lazypullRequire } from 'node:module';\nconst require = __lazypullRequire(import.meta.url);" },
  logLevel: "warning",
});

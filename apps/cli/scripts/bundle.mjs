// One file for the `lazypull` bin: node then reads and compiles one script instead of resolving and
// loading the hundreds of small modules of the workspace packages and their dependencies, which is
// most of a cold CLI start (figures in the README). Built from the TypeScript sources (esbuild strips
// the types; `tsc` checks them and still emits dist/*.js and .d.ts for the package's `exports`), so it
// takes well under a second. fuse-native stays outside: its native addon is found relative to its own
// package directory.
//
// The bundle is CommonJS (dist/lazypull.cjs, + .map) behind a small ESM bin (dist/lazypull.mjs, from
// scripts/bin-loader.mjs) that compiles it with a V8 code cache (dist/lazypull.cjs.cache), made here by
// running `--help` once with the node that builds. An ES module cannot be given a code cache in node 20,
// hence CommonJS; what main.ts and commands/index.ts import with import() is still evaluated only when
// imported. `undici` is scripts/undici-lite.mjs, the part of it lazypull uses.
//
//   node scripts/bundle.mjs [OUTDIR]     default dist/
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = resolve(process.argv[2] ?? join(pkg, "dist"));
const bundle = join(outdir, "lazypull.cjs");
const bin = join(outdir, "lazypull.mjs");

/** `undici` → scripts/undici-lite.mjs, its imports resolved in undici's own directory */
const undiciLite = {
  name: "undici-lite",
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, async (args) => {
      if (args.pluginData === "undici-lite") return undefined;
      const real = await b.resolve("undici/package.json", { resolveDir: args.resolveDir, kind: args.kind, pluginData: "undici-lite" });
      if (real.errors.length) return { errors: real.errors };
      return { path: join(dirname(real.path), "lazypull-undici-lite.mjs"), namespace: "undici-lite" };
    });
    b.onLoad({ filter: /.*/, namespace: "undici-lite" }, (args) => ({
      contents: readFileSync(join(pkg, "scripts/undici-lite.mjs"), "utf8"),
      loader: "js",
      resolveDir: dirname(args.path),
    }));
  },
};

await build({
  entryPoints: [join(pkg, "src/main.ts")],
  outfile: bundle,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  conditions: ["@lazypull/source"],
  sourcemap: "linked",
  external: ["fuse-native"],
  // `import("fuse-native")` as require(): a vm.Script cannot import() in node 20 without a flag
  supported: { "dynamic-import": false },
  plugins: [undiciLite],
  // src/version.ts: the version is built in, so its package.json read (import.meta, empty in CommonJS) never runs
  define: { LAZYPULL_CLI_VERSION: JSON.stringify(JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version) },
  logOverride: { "empty-import-meta": "silent" },
  logLevel: "warning",
});

const id = `lazypull-${createHash("sha256").update(readFileSync(bundle)).digest("hex")}`;
writeFileSync(bin, readFileSync(join(pkg, "scripts/bin-loader.mjs"), "utf8").replace("@BUNDLE_ID@", id));
chmodSync(bin, 0o755);
rmSync(`${bundle}.cache`, { force: true });
rmSync(`${bin}.map`, { force: true }); // from when the bin was the bundle
// the cache is only valid for this node and these V8 flags (V8 checks both): the bin's shebang flags, no
// NODE_OPTIONS
const env = { ...process.env, LAZYPULL_WRITE_CODE_CACHE: `${bundle}.cache` };
delete env.NODE_OPTIONS;
execFileSync(process.execPath, [...shebangFlags(bin), bin, "--help"], { env, stdio: "ignore" });

/** `#!/usr/bin/env -S node --a --b` → ["--a", "--b"] */
function shebangFlags(file) {
  const line = readFileSync(file, "utf8").split("\n", 1)[0];
  const m = /^#!\/usr\/bin\/env(?: -S)? node((?: --[\w-]+(?:=\S+)?)*)$/.exec(line);
  if (!m) throw new Error(`${file}: unexpected shebang ${JSON.stringify(line)}`);
  return m[1].split(" ").filter(Boolean);
}

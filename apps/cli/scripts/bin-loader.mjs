#!/usr/bin/env node
// dist/lazypull.mjs, the `lazypull` bin (scripts/bundle.mjs writes it with the bundle's id): compiles the
// CommonJS bundle dist/lazypull.cjs with the V8 code cache the build made (dist/lazypull.cjs.cache), so
// node neither parses 1.4 MB of JavaScript nor compiles the functions every start runs (figures in the
// README). A cache from another bundle is not used (the id heads the file); one V8 rejects (another node,
// or other V8 flags than the shebang's: bundle.mjs makes it with those) only costs the read. With source
// maps on (`NODE_OPTIONS=--enable-source-maps`) node loads the bundle itself, as it maps the stacks of
// what it loads and not of a vm.Script.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

const BUNDLE_ID = "@BUNDLE_ID@";
const file = fileURLToPath(new URL("./lazypull.cjs", import.meta.url));
const require = createRequire(file);

if (process.sourceMapsEnabled) {
  require(file);
} else {
  let cachedData;
  try {
    const cache = readFileSync(`${file}.cache`);
    if (cache.toString("latin1", 0, BUNDLE_ID.length) === BUNDLE_ID) cachedData = cache.subarray(BUNDLE_ID.length);
  } catch {
    // no cache: compiled from source
  }
  const source = readFileSync(file, "utf8").replace(/^#!.*/, "");
  // no importModuleDynamically: node 20 calls it only with --experimental-vm-modules, so the bundle has
  // no import() left (bundle.mjs)
  const script = new Script(Module.wrap(source), { filename: file, cachedData });
  // the build runs `--help` once with this set: the cache then holds every function that ran, not only
  // the top-level code
  const out = process.env.LAZYPULL_WRITE_CODE_CACHE;
  if (out) {
    process.once("exit", () => {
      writeFileSync(`${out}.tmp`, Buffer.concat([Buffer.from(BUNDLE_ID, "latin1"), script.createCachedData()]));
      renameSync(`${out}.tmp`, out);
    });
  }
  // a rejected cache only costs start time, silently: this says which it was (the e2e checks the bin's shebang flags and the build's agree)
  if (process.env.LAZYPULL_CODE_CACHE_REPORT) process.stderr.write(`lazypull: code cache ${cachedData === undefined ? "absent" : script.cachedDataRejected ? "rejected" : "used"}\n`);
  const module = { exports: {}, id: file, filename: file, loaded: false };
  script.runInThisContext().call(module.exports, module.exports, require, module, file, dirname(file));
}

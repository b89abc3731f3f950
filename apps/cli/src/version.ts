import { readFileSync } from "node:fs";

// scripts/bundle.mjs builds the version into the bin (esbuild `define`): the bundle is CommonJS, where
// import.meta is empty, and reading package.json would cost the start a file read.
declare const LAZYPULL_CLI_VERSION: string | undefined;

/** The @lazypull/cli package version. */
export function cliVersion(): string {
  if (typeof LAZYPULL_CLI_VERSION === "string") return LAZYPULL_CLI_VERSION;
  // the sources (tsx) and dist/*.js sit one directory below package.json
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

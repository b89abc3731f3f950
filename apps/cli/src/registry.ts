import { join } from "node:path";
import { defaultCacheDir } from "@lazypull/blob-cache";
import { fileSchemeMemo, RegistryClient } from "@lazypull/registry-client";
import { InvalidArgumentError, type Command } from "commander";

/** podman's flags for how registries are spoken to, given on the command line of this invocation. */
export interface RegistryFlags {
  /** `--tls-verify=false`: verify no certificate, allow plain HTTP */
  tlsVerify?: boolean;
  /** `--cert-dir DIR`: CA and client certificates for every registry, instead of certs.d */
  certDir?: string;
}

let given: RegistryFlags = {};

function parseBool(v: string): boolean {
  if (v === "true") return true;
  if (v === "false") return false;
  throw new InvalidArgumentError(`want --tls-verify=true or --tls-verify=false, got ${v}`);
}

/** Adds `--tls-verify` and `--cert-dir` (podman's names and meaning) to a command that talks to registries. */
export function withRegistryFlags(cmd: Command): Command {
  return cmd
    // a required value (`--tls-verify=false`, as podman users write it): an optional one would take the
    // image reference that follows a bare `--tls-verify` as its value
    .option("--tls-verify <bool>", "require HTTPS and verify certificates (default true; false also allows plain HTTP)", parseBool)
    .option("--cert-dir <dir>", "use the certificates in DIR (*.crt CAs, *.cert + *.key client pair) for every registry")
    .hook("preAction", (_program, action) => {
      const o = action.opts<{ tlsVerify?: boolean; certDir?: string }>();
      given = {
        ...(o.tlsVerify !== undefined ? { tlsVerify: o.tlsVerify } : {}),
        ...(o.certDir !== undefined ? { certDir: o.certDir } : {}),
      };
    });
}

/** Flags that change how registries are reached: lazypulld cannot honour them for one caller. */
export function registryFlagsGiven(): boolean {
  return given.tlsVerify === false || given.certDir !== undefined;
}

/**
 * The one registry client a CLI invocation uses: credentials from the usual auth files and credential
 * helpers, registries.conf (mirrors, rewrites, insecure), certs.d, the command's `--tls-verify`/`--cert-dir`,
 * and `LAZYPULL_INSECURE_REGISTRIES` (comma-separated).
 */
export function createRegistryClient(opts: { platform?: string } = {}): RegistryClient {
  const insecure = (process.env.LAZYPULL_INSECURE_REGISTRIES ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return new RegistryClient({
    insecureRegistries: insecure,
    ...(opts.platform ? { platform: opts.platform } : {}),
    ...given,
    // a loopback or insecure registry that answered in plain HTTP last time is asked that way at once
    schemeMemo: fileSchemeMemo(join(defaultCacheDir(), "registry-schemes.json")),
    userAgent: "lazypull/0.0",
  });
}

/** Where finished layer conversions are remembered, beside the chunk cache. */
export function convertMemoDir(): string {
  return join(defaultCacheDir(), "converted-layers");
}

import { join } from "node:path";
import { defaultCacheDir } from "@lazypull/blob-cache";
import { RegistryClient } from "@lazypull/registry-client";

/**
 * The one registry client a CLI invocation uses: credentials from the usual auth files, insecure
 * registries from registries.conf plus `LAZYPULL_INSECURE_REGISTRIES` (comma-separated).
 */
export function createRegistryClient(opts: { platform?: string } = {}): RegistryClient {
  const insecure = (process.env.LAZYPULL_INSECURE_REGISTRIES ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return new RegistryClient({ insecureRegistries: insecure, ...(opts.platform ? { platform: opts.platform } : {}), userAgent: "lazypull/0.0" });
}

/** Where finished layer conversions are remembered, beside the chunk cache. */
export function convertMemoDir(): string {
  return join(defaultCacheDir(), "converted-layers");
}

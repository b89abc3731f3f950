// Platforms (`os/arch[/variant]`): parsing, this host's, and picking the best match out of an index.
import type { Descriptor } from "./types.js";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH: Record<string, string> = { x64: "amd64", ia32: "386", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", loong64: "loong64", mips: "mips", mipsel: "mipsle" };

/** The platform of this process, in OCI terms (`linux/amd64`, `linux/arm/v7`, …). */
export function hostPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch;
  const p: Platform = { os: process.platform === "win32" ? "windows" : process.platform, architecture };
  if (architecture === "arm") {
    const v = (process.config.variables as { arm_version?: string }).arm_version;
    if (v) p.variant = `v${v}`;
  }
  return p;
}

/** Parses `os/arch[/variant]`. */
export function parsePlatform(s: string): Platform | undefined {
  const [os, architecture, variant] = s.split("/");
  if (!os || !architecture) return undefined;
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

// arm64's only variant is v8, so an absent variant means v8 (containerd's normalisation)
function normVariant(arch: string, variant: string | undefined): string | undefined {
  if (arch === "arm64" && (variant === undefined || variant === "v8")) return undefined;
  if (arch === "amd64" && variant === "v1") return undefined;
  return variant;
}

/**
 * Picks the index entry for a platform: os and architecture must match; a wanted variant must match
 * exactly, otherwise an entry without variant (or the first one) wins. Attestation manifests
 * (`unknown/unknown`) never match.
 */
export function selectPlatform(manifests: Descriptor[], want: Platform): Descriptor | undefined {
  const wantVariant = normVariant(want.architecture, want.variant);
  const candidates = manifests.filter((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture);
  if (wantVariant !== undefined) {
    return candidates.find((m) => normVariant(m.platform!.architecture, m.platform!.variant) === wantVariant);
  }
  return candidates.find((m) => normVariant(m.platform!.architecture, m.platform!.variant) === undefined) ?? candidates[0];
}

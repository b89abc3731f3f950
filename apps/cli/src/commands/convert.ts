import { existsSync } from "node:fs";
import { InvalidArgumentError, type Command } from "commander";
import { convertLocalFile } from "../convert-local.js";
import { formatBytes } from "../ui/progress.js";
import { convertRegistryImage } from "./convert-image.js";
import { CliError } from "../errors.js";
import { withRegistryFlags } from "../registry.js";

function intOption(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`--${name} must be a non-negative integer, got ${v}`);
    return n;
  };
}

/** An argument no one would mean as an image reference: a path, or a layer file's name. */
export function looksLikePath(arg: string): boolean {
  return /^(\/|\.\.?\/|~)/.test(arg) || /\.(tar|tgz|gz|zst|esgz|stargz)$/.test(arg);
}

export function register(program: Command): void {
  withRegistryFlags(program.command("convert"))
    .description("convert a registry image (SRC → DST) or a local tar/tar.gz/tar.zst layer file into eStargz")
    .argument("<in>", "source image reference, or a local layer file (tar, tar.gz or tar.zst, detected by magic)")
    .argument("<out>", "destination image reference, or the output eStargz blob file")
    .option("--chunk-size <bytes>", "chunk size for large files (default 4 MiB)", intOption("chunk-size"))
    .option("--level <n>", "gzip level 0-9 (default 9)", intOption("level"))
    .option("--prioritize <file>", "file listing paths to put first (before .prefetch.landmark), one per line")
    .option("--platform <os/arch>", "platform to convert from a multi-platform image (default: this host's)")
    .option("--json", "print the result as JSON")
    .action(async (input: string, output: string, opts: { chunkSize?: number; level?: number; prioritize?: string; platform?: string; json?: boolean }) => {
      if (!existsSync(input)) {
        if (looksLikePath(input)) throw new CliError("CLI_NO_SUCH_FILE", `${input}: no such file (and not an image reference)`, { path: input });
        await convertRegistryImage(input, output, opts);
        return;
      }
      const r = await convertLocalFile(input, output, {
        ...(opts.chunkSize !== undefined ? { chunkSize: opts.chunkSize } : {}),
        ...(opts.level !== undefined ? { level: opts.level } : {}),
        ...(opts.prioritize ? { prioritizeFile: opts.prioritize } : {}),
        progress: !opts.json,
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      const lines = [
        `TOC digest:        ${r.tocDigest}`,
        `diffID:            ${r.diffId}`,
        `uncompressed size: ${r.uncompressedSize} (${formatBytes(r.uncompressedSize)})`,
        `blob digest:       ${r.blobDigest}`,
        `blob size:         ${r.blobSize} (${formatBytes(r.blobSize)})`,
      ];
      if (r.missingPrioritized.length) lines.push(`not found (prioritize): ${r.missingPrioritized.join(", ")}`);
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}

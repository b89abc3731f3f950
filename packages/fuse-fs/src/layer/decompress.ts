import { spawn } from "node:child_process";
import { PassThrough, Readable, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { FuseFsError } from "../errors.js";

export type Compression = "gzip" | "zstd" | "none";

/** Layer compression from the blob's first bytes (media types differ between docker and OCI). */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  return "none";
}

export interface DecompressedLayer {
  compression: Compression;
  tar: Readable;
  /** settles when the compressed input was consumed to its end (digest checked by the source) */
  inputDone: Promise<void>;
}

/**
 * Decompresses a layer stream of any supported compression. Node 20's zlib has no zstd, so zstd goes
 * through the system `zstd` binary: it streams and runs off the event loop; a missing binary is a clear error.
 */
export async function decompressLayer(input: NodeJS.ReadableStream, label: string): Promise<DecompressedLayer> {
  const src = Readable.from(input as AsyncIterable<Buffer>, { objectMode: false });
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const buffered: Buffer[] = [];
  let have = 0;
  while (have < 4) {
    const r = await it.next();
    if (r.done) break;
    buffered.push(r.value);
    have += r.value.length;
  }
  let settle!: (err?: Error | null) => void;
  const inputDone = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  inputDone.catch(() => undefined);
  const rest = Readable.from(
    (async function* () {
      try {
        yield* buffered;
        for (;;) {
          const r = await it.next();
          if (r.done) break;
          yield r.value;
        }
        settle();
      } catch (err) {
        settle(err as Error);
        throw err;
      }
    })(),
    { objectMode: false },
  );
  const compression = sniffCompression(Buffer.concat(buffered));
  if (compression === "gzip") {
    const out = createGunzip();
    pipeline(rest, out, () => undefined);
    return { compression, tar: out, inputDone };
  }
  if (compression === "zstd") {
    const out = new PassThrough();
    const child = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    child.stdout.pipe(out, { end: false });
    pipeline(rest, child.stdin, (err) => {
      if (err && err.code !== "EPIPE") out.destroy(err);
    });
    child.on("error", (err) =>
      out.destroy(
        new FuseFsError("FUSEFS_UNSUPPORTED_COMPRESSION", `zstd layer ${label} needs the zstd binary: ${err.message}`, {
          digest: label,
        }),
      ),
    );
    child.on("close", (code) => {
      if (code === 0) out.end();
      else out.destroy(new FuseFsError("FUSEFS_BAD_LAYER", `zstd failed on layer ${label}: ${stderr.trim()}`, { digest: label }));
    });
    return { compression, tar: out, inputDone };
  }
  return { compression, tar: rest, inputDone };
}

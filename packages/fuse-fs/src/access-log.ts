import { createWriteStream, type WriteStream } from "node:fs";

/**
 * Records the order in which files are first read, one `<layer-hex>/<path>` per line: the input for
 * workload-based prioritisation when an image is converted again. Writes are asynchronous (a stream).
 */
export class AccessRecorder {
  private readonly seen = new Set<string>();
  private readonly out: WriteStream | undefined;
  readonly order: string[] = [];

  constructor(path?: string) {
    this.out = path ? createWriteStream(path, { flags: "a" }) : undefined;
  }

  record(layerHex: string, path: string): void {
    const line = `${layerHex}/${path}`;
    if (this.seen.has(line)) return;
    this.seen.add(line);
    this.order.push(line);
    this.out?.write(`${line}\n`);
  }

  close(): Promise<void> {
    const out = this.out;
    if (!out) return Promise.resolve();
    return new Promise((resolve) => out.end(resolve));
  }
}

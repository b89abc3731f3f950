import type { FileHandle } from "node:fs/promises";

/** Sequential bytes for the tar reader: from a stream (skip = read and drop) or a file (skip = seek). */
export interface ByteSource {
  /** bytes consumed so far */
  readonly position: number;
  /** up to `n` bytes; fewer only at the end of input */
  read(n: number): Promise<Buffer>;
  skip(n: number): Promise<void>;
}

export class StreamByteSource implements ByteSource {
  position = 0;
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;

  constructor(
    private readonly it: AsyncIterator<Buffer | Uint8Array>,
    private readonly onRead?: (position: number) => void,
  ) {}

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      if (b.length === 0) continue;
      this.chunks.push(b);
      this.buffered += b.length;
    }
  }

  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const take = Math.min(n, this.buffered);
    let out: Buffer;
    const first = this.chunks[0];
    if (first && first.length >= take) {
      out = first.subarray(0, take);
      if (first.length === take) this.chunks.shift();
      else this.chunks[0] = first.subarray(take);
    } else {
      out = Buffer.allocUnsafe(take);
      let pos = 0;
      while (pos < take) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, take - pos);
        c.copy(out, pos, 0, k);
        pos += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= take;
    this.position += take;
    this.onRead?.(this.position);
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const b = await this.read(Math.min(left, 1 << 20));
      if (b.length === 0) return;
      left -= b.length;
    }
  }
}

/** Positional reads of an open file; skip only moves the cursor. */
export class FileByteSource implements ByteSource {
  constructor(
    private readonly fh: FileHandle,
    public position = 0,
  ) {}

  async read(n: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fh.read(out, got, n - got, this.position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    this.position += got;
    return got === n ? out : out.subarray(0, got);
  }

  async skip(n: number): Promise<void> {
    this.position += n;
  }
}

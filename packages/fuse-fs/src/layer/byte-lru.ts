/**
 * What an entry costs beyond its bytes: the Buffer and ArrayBuffer objects, the malloc'd backing store,
 * the key and the Map slot (measured ~200-250 B in heap snapshots). A layer of 20,000 small files has
 * chunks of a few hundred bytes, where this is most of the cost.
 */
export const ENTRY_OVERHEAD = 256;

/** A byte-bounded LRU of recently inflated chunks: warm sequential reads copy from memory. */
export class ByteLru<K> {
  private readonly map = new Map<K, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: K): Buffer | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, valueIn: Buffer): void {
    if (valueIn.length + ENTRY_OVERHEAD > this.maxBytes) return;
    // A small chunk is often a view into a much larger zlib output buffer; keeping the view keeps all
    // of it alive, and the byte count lies (seen: 365 MB held by a "64 MiB" LRU walking 20k files).
    const value = valueIn.byteLength * 2 < valueIn.buffer.byteLength ? Buffer.from(valueIn) : valueIn;
    const old = this.map.get(key);
    if (old) {
      this.bytes -= old.length + ENTRY_OVERHEAD;
      this.map.delete(key);
    }
    this.map.set(key, value);
    this.bytes += value.length + ENTRY_OVERHEAD;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.length + ENTRY_OVERHEAD;
    }
  }

  /** drops the entries whose key starts with `prefix` */
  deletePrefix(this: ByteLru<string>, prefix: string): void {
    for (const [k, v] of this.map) {
      if (!k.startsWith(prefix)) continue;
      this.map.delete(k);
      this.bytes -= v.length + ENTRY_OVERHEAD;
    }
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  /** bytes held, counting each entry's overhead */
  get size(): number {
    return this.bytes;
  }
}

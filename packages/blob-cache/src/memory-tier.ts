import { LRUCache } from "lru-cache";

/**
 * Hot entries kept in RAM, bounded in bytes. Entries are copied in and out so that a caller who writes
 * into a returned Buffer can never change what the next caller gets.
 */
export class MemoryTier {
  private readonly lru: LRUCache<string, Buffer> | undefined;
  /** entries bigger than this bypass the tier: one chunk must not flush everything else */
  readonly maxEntryBytes: number;

  constructor(readonly maxBytes: number) {
    this.maxEntryBytes = Math.floor(maxBytes / 4);
    this.lru = maxBytes > 0 ? new LRUCache<string, Buffer>({ maxSize: maxBytes, sizeCalculation: (b) => Math.max(1, b.length) }) : undefined;
  }

  get(key: string): Buffer | undefined {
    return this.lru?.get(key);
  }

  set(key: string, data: Buffer): void {
    if (this.lru && data.length <= this.maxEntryBytes) this.lru.set(key, Buffer.from(data));
  }

  clear(): void {
    this.lru?.clear();
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  get entries(): number {
    return this.lru?.size ?? 0;
  }
}

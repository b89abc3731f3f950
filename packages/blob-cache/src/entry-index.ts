import { decodeBlob } from "./layout.js";

const HASH_BYTES = 21; // the 42 hex of sha256 in an entry's path: 2 of fan-out, 40 in the name
const KEY_BYTES = HASH_BYTES + 3; // + the blob's id in the blob table, little-endian
const MAX_BLOBS = 2 ** 24;
const FIRST_CAPACITY = 1024;
const HEX40 = /^[0-9a-f]{40}$/;
const HEX2 = /^[0-9a-f]{2}$/;

/**
 * What a directory scan found (name hash, blob, size, mtime per entry file), held in typed arrays until it is
 * applied to the index at once: a scan of a large cache must not cost more memory than the index itself.
 * Blob names are checked once and stored once.
 */
export class ScannedEntries {
  /** entries added */
  count = 0;
  private hashes = Buffer.alloc(HASH_BYTES * 256);
  private blobIds = new Uint32Array(256);
  private sizes = new Float64Array(256);
  private mtimes = new Float64Array(256);
  private readonly encs: string[] = [];
  /** file-name form of a blob → its id here, -1 when it is not a blob */
  private readonly encIdOf = new Map<string, number>();

  /** The blob of file `name` in fan-out directory `fan` (an id for `add`), or -1 for anything that is not an entry. */
  blobOf(fan: string, name: string): number {
    const dot = name.lastIndexOf(".");
    if (dot <= 0 || name.length - dot !== 41 || !HEX2.test(fan) || !HEX40.test(name.slice(dot + 1))) return -1;
    const raw = name.slice(0, dot);
    let id = this.encIdOf.get(raw);
    if (id === undefined) {
      id = decodeBlob(raw) ? this.encs.push(raw) - 1 : -1;
      this.encIdOf.set(raw, id);
    }
    return id;
  }

  /** Records entry file `name` in `fan` (its `blobOf` was `blobId`). */
  add(fan: string, name: string, blobId: number, size: number, mtime: number): void {
    const i = this.count++;
    if (i === this.sizes.length) this.grow();
    const at = i * HASH_BYTES;
    this.hashes.write(fan, at, 1, "hex");
    this.hashes.write(name.slice(name.length - 40), at + 1, HASH_BYTES - 1, "hex");
    this.blobIds[i] = blobId;
    this.sizes[i] = size;
    this.mtimes[i] = mtime;
  }

  /** the blob's file-name form, "sha256-<hex>" */
  enc(i: number): string {
    return this.encs[this.blobIds[i]!]!;
  }
  size(i: number): number {
    return this.sizes[i]!;
  }
  mtime(i: number): number {
    return this.mtimes[i]!;
  }
  copyHash(i: number, to: Buffer): void {
    this.hashes.copy(to, 0, i * HASH_BYTES, (i + 1) * HASH_BYTES);
  }

  private grow(): void {
    const n = this.sizes.length * 2;
    const hashes = Buffer.alloc(n * HASH_BYTES);
    this.hashes.copy(hashes);
    this.hashes = hashes;
    const blobIds = new Uint32Array(n);
    blobIds.set(this.blobIds);
    this.blobIds = blobIds;
    for (const k of ["sizes", "mtimes"] as const) {
      const b = new Float64Array(n);
      b.set(this[k]);
      this[k] = b;
    }
  }
}

/**
 * The in-memory index of the entries on disk, compact because a cache of small chunks holds hundreds of
 * thousands of them in a daemon that must stay small: about 130 bytes per entry where one object per
 * entry keyed by its ~115-char path took about 450.
 *
 * An entry lives in a numbered slot of typed arrays (size, last use, last known mtime, when this process
 * added it). A Map from a 24-char one-byte key (the binary hash of its path + its blob's id in an interned
 * blob table) finds the slot; the path is rebuilt from the key when one is needed. Slots of removed
 * entries are reused; a blob leaves the table with its last entry.
 */
export class EntryIndex {
  private readonly slotOf = new Map<string, number>();
  /** slot → key ("" when free): to rebuild the path and to find the Map entry again */
  private readonly keys: string[] = [];
  private readonly free: number[] = [];
  private sizes = new Float64Array(FIRST_CAPACITY);
  private lastUses = new Float64Array(FIRST_CAPACITY);
  private toucheds = new Float64Array(FIRST_CAPACITY);
  private addedAts = new Float64Array(FIRST_CAPACITY);

  private readonly blobIdOf = new Map<string, number>();
  private readonly blobEnc: string[] = [];
  private readonly blobName: string[] = [];
  private readonly blobRefs: number[] = [];
  private readonly freeBlobIds: number[] = [];

  private readonly scratch = Buffer.alloc(KEY_BYTES);

  /** entries */
  get count(): number {
    return this.slotOf.size;
  }

  /** distinct blobs with at least one entry */
  get blobCount(): number {
    return this.blobIdOf.size;
  }

  /** one past the highest slot in use so far (slots are small integers) */
  get slotLimit(): number {
    return this.keys.length;
  }

  /** The entry's slot, or -1. `rel` is a path built by `entryRelPath` (trusted, not checked). */
  find(rel: string): number {
    const dot = rel.lastIndexOf(".");
    const id = this.blobIdOf.get(rel.slice(3, dot));
    if (id === undefined) return -1;
    return this.slotOf.get(this.relKey(rel, dot, id)) ?? -1;
  }

  /** The slot of entry `i` of a scan, or -1. */
  findScanned(found: ScannedEntries, i: number): number {
    const id = this.blobIdOf.get(found.enc(i));
    if (id === undefined) return -1;
    found.copyHash(i, this.scratch);
    return this.slotOf.get(this.finishKey(id)) ?? -1;
  }

  /**
   * Sets an entry's fields, adding it when absent; returns its slot (an existing entry keeps its slot).
   * `blob` is the digest as the caller knows it; without it the name is decoded from the path, and an
   * entry whose name does not decode (an algorithm with "-" and a 128-char digest) is not added: -1.
   */
  set(rel: string, size: number, lastUse: number, touched: number, addedAt: number, blob?: string): number {
    const dot = rel.lastIndexOf(".");
    const id = this.internBlob(rel.slice(3, dot), blob);
    if (id < 0) return -1;
    return this.setKey(this.relKey(rel, dot, id), id, size, lastUse, touched, addedAt);
  }

  /** Adds entry `i` of a scan with its size (it must not be in the index: see `findScanned`). */
  addScanned(found: ScannedEntries, i: number, lastUse: number, touched: number, addedAt: number): number {
    const id = this.internBlob(found.enc(i));
    if (id < 0) return -1;
    found.copyHash(i, this.scratch);
    return this.setKey(this.finishKey(id), id, found.size(i), lastUse, touched, addedAt);
  }

  private setKey(key: string, blobId: number, size: number, lastUse: number, touched: number, addedAt: number): number {
    let slot = this.slotOf.get(key);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.keys.length;
      if (slot === this.keys.length) {
        this.keys.push(key);
        if (slot === this.sizes.length) this.grow();
      } else {
        this.keys[slot] = key;
      }
      this.slotOf.set(key, slot);
      this.blobRefs[blobId]!++;
    }
    this.sizes[slot] = size;
    this.lastUses[slot] = lastUse;
    this.toucheds[slot] = touched;
    this.addedAts[slot] = addedAt;
    return slot;
  }
  remove(slot: number): void {
    const key = this.keys[slot];
    if (!key) return;
    this.slotOf.delete(key);
    this.keys[slot] = "";
    this.free.push(slot);
    const id = this.blobIdOfKey(key);
    if (--this.blobRefs[id]! === 0) {
      this.blobIdOf.delete(this.blobEnc[id]!);
      this.blobEnc[id] = "";
      this.blobName[id] = "";
      this.freeBlobIds.push(id);
    }
  }

  /** Live slots, in insertion order; entries removed meanwhile are skipped, entries added are visited. */
  slots(): IterableIterator<number> {
    return this.slotOf.values();
  }

  /** True while `slot` holds the entry it held when `key(slot)` was read. */
  holds(slot: number, key: string): boolean {
    return key !== "" && this.keys[slot] === key;
  }

  keyOf(slot: number): string {
    return this.keys[slot] ?? "";
  }

  rel(slot: number): string {
    const key = this.keys[slot]!;
    this.scratch.write(key, 0, HASH_BYTES, "latin1");
    const hex = this.scratch.toString("hex", 0, HASH_BYTES);
    return `${hex.slice(0, 2)}/${this.blobEnc[this.blobIdOfKey(key)]}.${hex.slice(2)}`;
  }

  /** "sha256:<hex>" */
  blob(slot: number): string {
    return this.blobName[this.blobIdOfKey(this.keys[slot]!)]!;
  }

  size(slot: number): number {
    return this.sizes[slot]!;
  }
  lastUse(slot: number): number {
    return this.lastUses[slot]!;
  }
  touched(slot: number): number {
    return this.toucheds[slot]!;
  }
  addedAt(slot: number): number {
    return this.addedAts[slot]!;
  }
  setSize(slot: number, v: number): void {
    this.sizes[slot] = v;
  }
  setLastUse(slot: number, v: number): void {
    this.lastUses[slot] = v;
  }
  setTouched(slot: number, v: number): void {
    this.toucheds[slot] = v;
  }

  /** The key of "<2 hex>/<enc>.<40 hex>" (the dot at `dot`) without slicing the hex apart. */
  private relKey(rel: string, dot: number, blobId: number): string {
    this.scratch.write(rel, 0, 1, "hex");
    this.scratch.write(rel.slice(dot + 1), 1, HASH_BYTES - 1, "hex");
    return this.finishKey(blobId);
  }

  /** The key whose hash is in `scratch`: a flat one-byte string (a concatenation would be a cons string, one more object per entry). */
  private finishKey(blobId: number): string {
    const s = this.scratch;
    s[HASH_BYTES] = blobId & 0xff;
    s[HASH_BYTES + 1] = (blobId >>> 8) & 0xff;
    s[HASH_BYTES + 2] = blobId >>> 16;
    return s.toString("latin1", 0, KEY_BYTES);
  }

  private blobIdOfKey(key: string): number {
    return key.charCodeAt(HASH_BYTES) | (key.charCodeAt(HASH_BYTES + 1) << 8) | (key.charCodeAt(HASH_BYTES + 2) << 16);
  }

  /** The blob's id, added with no entries yet when new; -1 when it has no name. */
  private internBlob(enc: string, blob?: string): number {
    let id = this.blobIdOf.get(enc);
    if (id !== undefined) return id;
    const name = blob ?? decodeBlob(enc);
    if (!name) return -1;
    id = this.freeBlobIds.pop() ?? this.blobEnc.length;
    // unreachable in practice: a blob has an id only while it has entries, and 16M entries would not fit
    if (id >= MAX_BLOBS) throw new RangeError(`more than ${MAX_BLOBS} blobs in the cache index`);
    this.blobEnc[id] = enc;
    this.blobName[id] = name;
    this.blobRefs[id] = 0;
    this.blobIdOf.set(enc, id);
    return id;
  }

  private grow(): void {
    const n = this.sizes.length * 2;
    const bigger = (a: Float64Array) => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.sizes = bigger(this.sizes);
    this.lastUses = bigger(this.lastUses);
    this.toucheds = bigger(this.toucheds);
    this.addedAts = bigger(this.addedAts);
  }
}

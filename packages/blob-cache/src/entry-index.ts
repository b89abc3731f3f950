import { decodeBlob } from "./layout.js";

const HASH_BYTES = 21; // the 42 hex of sha256 in an entry's path: 2 of fan-out, 40 in the name
const FREE = 0xffffffff; // blob id of a free slot
const EMPTY = -1; // an empty place in the hash table
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
 * thousands of them in a daemon that must stay small: about 90 bytes per entry, all of it in typed
 * arrays (nothing per entry for the garbage collector to trace), where one object per entry keyed by its
 * ~115-char path took about 430 bytes of heap.
 *
 * An entry lives in a numbered slot: the 21 bytes of its path's sha256 hex, its blob's id in an interned
 * blob table, size, last use, last known mtime, when this process added it. An open-addressing table
 * (linear probing, at most half full) maps (hash, blob) to the slot; the path is rebuilt from them when
 * one is needed. Slots of removed entries are reused; a blob leaves the table with its last entry.
 */
export class EntryIndex {
  private live = 0;
  /** sum of the live entries' sizes, kept here so it cannot drift from them (every size change passes through) */
  private total = 0;
  private limit = 0;
  private readonly free: number[] = [];
  private hashes = Buffer.alloc(FIRST_CAPACITY * HASH_BYTES);
  /** FREE for a free slot */
  private blobIds = new Uint32Array(FIRST_CAPACITY).fill(FREE);
  /** bumped when a slot is freed: tells an entry from a later one in the same slot */
  private gens = new Uint32Array(FIRST_CAPACITY);
  private sizes = new Float64Array(FIRST_CAPACITY);
  private lastUses = new Float64Array(FIRST_CAPACITY);
  private toucheds = new Float64Array(FIRST_CAPACITY);
  private addedAts = new Float64Array(FIRST_CAPACITY);
  /** slot numbers, EMPTY where none; length a power of two */
  private table = new Int32Array(FIRST_CAPACITY * 2).fill(EMPTY);

  private readonly blobIdOf = new Map<string, number>();
  private readonly blobEnc: string[] = [];
  private readonly blobName: string[] = [];
  private readonly blobRefs: number[] = [];
  private readonly freeBlobIds: number[] = [];

  /** the hash being looked up or added */
  private readonly scratch = Buffer.alloc(HASH_BYTES);

  /** entries */
  get count(): number {
    return this.live;
  }

  /** bytes of all entries (the sum of their sizes): the cache's usage as far as this process knows */
  get bytes(): number {
    return this.total;
  }

  /** distinct blobs with at least one entry */
  get blobCount(): number {
    return this.blobIdOf.size;
  }

  /** one past the highest slot in use so far (slots are small integers) */
  get slotLimit(): number {
    return this.limit;
  }

  /** The entry's slot, or -1. `rel` is a path built by `entryRelPath` (trusted, not checked). */
  find(rel: string): number {
    const dot = rel.lastIndexOf(".");
    const id = this.blobIdOf.get(rel.slice(3, dot));
    if (id === undefined) return -1;
    this.hashOfRel(rel, dot);
    return this.lookup(id);
  }

  /** The slot of entry `i` of a scan, or -1. */
  findScanned(found: ScannedEntries, i: number): number {
    const id = this.blobIdOf.get(found.enc(i));
    if (id === undefined) return -1;
    found.copyHash(i, this.scratch);
    return this.lookup(id);
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
    this.hashOfRel(rel, dot);
    return this.setScratch(id, size, lastUse, touched, addedAt);
  }

  /** Adds entry `i` of a scan with its size (it must not be in the index: see `findScanned`). */
  addScanned(found: ScannedEntries, i: number, lastUse: number, touched: number, addedAt: number): number {
    const id = this.internBlob(found.enc(i));
    if (id < 0) return -1;
    found.copyHash(i, this.scratch);
    return this.setScratch(id, found.size(i), lastUse, touched, addedAt);
  }

  remove(slot: number): void {
    const id = this.blobIds[slot];
    if (id === undefined || id === FREE) return;
    const mask = this.table.length - 1;
    let hole = this.home(this.hashes, slot * HASH_BYTES, id);
    while (this.table[hole] !== slot) hole = (hole + 1) & mask;
    // Backward-shift deletion: move later members of the probe run into the hole when their home allows.
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const s = this.table[j]!;
      if (s === EMPTY) break;
      const h = this.home(this.hashes, s * HASH_BYTES, this.blobIds[s]!);
      const stays = hole <= j ? hole < h && h <= j : hole < h || h <= j;
      if (stays) continue;
      this.table[hole] = s;
      hole = j;
    }
    this.table[hole] = EMPTY;
    this.total -= this.sizes[slot]!;
    this.blobIds[slot] = FREE;
    this.gens[slot]!++;
    this.free.push(slot);
    this.live--;
    if (--this.blobRefs[id]! === 0) {
      this.blobIdOf.delete(this.blobEnc[id]!);
      this.blobEnc[id] = "";
      this.blobName[id] = "";
      this.freeBlobIds.push(id);
    }
  }

  /** Live slots in slot order; entries removed meanwhile are skipped, entries added in new slots are visited. */
  *slots(): IterableIterator<number> {
    for (let s = 0; s < this.limit; s++) if (this.blobIds[s] !== FREE) yield s;
  }

  /** Identifies the entry now in `slot`, for `holds` after an await. */
  ticket(slot: number): number {
    return this.gens[slot]!;
  }

  /** True while `slot` holds the entry it held when `ticket(slot)` was read. */
  holds(slot: number, ticket: number): boolean {
    return this.blobIds[slot] !== FREE && this.gens[slot] === ticket;
  }

  rel(slot: number): string {
    const hex = this.hashes.toString("hex", slot * HASH_BYTES, (slot + 1) * HASH_BYTES);
    return `${hex.slice(0, 2)}/${this.blobEnc[this.blobIds[slot]!]}.${hex.slice(2)}`;
  }

  /** "sha256:<hex>" */
  blob(slot: number): string {
    return this.blobName[this.blobIds[slot]!]!;
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
    this.total += v - this.sizes[slot]!;
    this.sizes[slot] = v;
  }
  setLastUse(slot: number, v: number): void {
    this.lastUses[slot] = v;
  }
  setTouched(slot: number, v: number): void {
    this.toucheds[slot] = v;
  }

  /** Puts the hash of "<2 hex>/<enc>.<40 hex>" (the dot at `dot`) in `scratch`. */
  private hashOfRel(rel: string, dot: number): void {
    this.scratch.write(rel, 0, 1, "hex");
    this.scratch.write(rel.slice(dot + 1), 1, HASH_BYTES - 1, "hex");
  }

  /** The hash is sha256 output, already uniform: four of its bytes mixed with the blob id place it. */
  private home(buf: Buffer, at: number, blobId: number): number {
    return (buf.readUInt32LE(at) ^ Math.imul(blobId, 0x9e3779b1)) & (this.table.length - 1);
  }

  /** The slot of the hash in `scratch` with this blob, or -1. */
  private lookup(blobId: number): number {
    const mask = this.table.length - 1;
    for (let p = this.home(this.scratch, 0, blobId); ; p = (p + 1) & mask) {
      const slot = this.table[p]!;
      if (slot === EMPTY) return -1;
      if (this.blobIds[slot] === blobId && this.sameHash(slot)) return slot;
    }
  }

  private sameHash(slot: number): boolean {
    const at = slot * HASH_BYTES;
    for (let i = 0; i < HASH_BYTES; i++) if (this.hashes[at + i] !== this.scratch[i]) return false;
    return true;
  }

  private setScratch(blobId: number, size: number, lastUse: number, touched: number, addedAt: number): number {
    let slot = this.lookup(blobId);
    if (slot < 0) {
      slot = this.free.pop() ?? this.limit++;
      if (slot === this.sizes.length) this.growSlots();
      this.scratch.copy(this.hashes, slot * HASH_BYTES);
      this.blobIds[slot] = blobId;
      this.blobRefs[blobId]!++;
      this.live++;
      this.sizes[slot] = 0; // a reused slot still holds its old entry's size
      if (this.live * 2 > this.table.length) this.rebuildTable(this.table.length * 2);
      else this.place(slot);
    }
    this.total += size - this.sizes[slot]!;
    this.sizes[slot] = size;
    this.lastUses[slot] = lastUse;
    this.toucheds[slot] = touched;
    this.addedAts[slot] = addedAt;
    return slot;
  }

  private place(slot: number): void {
    const mask = this.table.length - 1;
    let p = this.home(this.hashes, slot * HASH_BYTES, this.blobIds[slot]!);
    while (this.table[p] !== EMPTY) p = (p + 1) & mask;
    this.table[p] = slot;
  }

  private rebuildTable(length: number): void {
    this.table = new Int32Array(length).fill(EMPTY);
    for (let s = 0; s < this.limit; s++) if (this.blobIds[s] !== FREE) this.place(s);
  }

  /** The blob's id, added with no entries yet when new; -1 when it has no name. */
  private internBlob(enc: string, blob?: string): number {
    let id = this.blobIdOf.get(enc);
    if (id !== undefined) return id;
    const name = blob ?? decodeBlob(enc);
    if (!name) return -1;
    id = this.freeBlobIds.pop() ?? this.blobEnc.length;
    this.blobEnc[id] = enc;
    this.blobName[id] = name;
    this.blobRefs[id] = 0;
    this.blobIdOf.set(enc, id);
    return id;
  }

  private growSlots(): void {
    const n = this.sizes.length * 2;
    const hashes = Buffer.alloc(n * HASH_BYTES);
    this.hashes.copy(hashes);
    this.hashes = hashes;
    const blobIds = new Uint32Array(n).fill(FREE);
    blobIds.set(this.blobIds);
    this.blobIds = blobIds;
    const gens = new Uint32Array(n);
    gens.set(this.gens);
    this.gens = gens;
    for (const k of ["sizes", "lastUses", "toucheds", "addedAts"] as const) {
      const b = new Float64Array(n);
      b.set(this[k]);
      this[k] = b;
    }
  }
}

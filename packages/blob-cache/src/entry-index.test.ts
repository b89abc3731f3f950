import { describe, expect, it } from "vitest";
import { EntryIndex, ScannedEntries } from "./entry-index.js";
import { blobOfEntryName, entryRelPath } from "./layout.js";

const BLOBS = [`sha256:${"a1".repeat(32)}`, `sha256:${"b2".repeat(32)}`, `sha512:${"c3".repeat(64)}`];
const rel = (i: number, blob = BLOBS[i % BLOBS.length]!) => entryRelPath({ blob, id: `chunk:${i}` });

interface Fields {
  rel: string;
  blob: string;
  size: number;
  lastUse: number;
  touched: number;
  addedAt: number;
}

/** Everything the index holds, read back through its public accessors, in a stable order. */
function contents(index: EntryIndex): Fields[] {
  return [...index.slots()]
    .map((s) => ({
      rel: index.rel(s),
      blob: index.blob(s),
      size: index.size(s),
      lastUse: index.lastUse(s),
      touched: index.touched(s),
      addedAt: index.addedAt(s),
    }))
    .sort((a, b) => a.rel.localeCompare(b.rel));
}

function rng(seed: number): () => number {
  return () => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
}

describe("EntryIndex", () => {
  it("should give back each entry's exact path, blob and fields", () => {
    const index = new EntryIndex();
    const slots = [0, 1, 2, 3].map((i) => index.set(rel(i), 1000 + i, 1.5 + i, 0.25 + i, -i));
    expect(contents(index)).toEqual(
      [0, 1, 2, 3]
        .map((i) => ({ rel: rel(i), blob: BLOBS[i % 3], size: 1000 + i, lastUse: 1.5 + i, touched: 0.25 + i, addedAt: -i }))
        .sort((a, b) => a.rel.localeCompare(b.rel)),
    );
    expect([0, 1, 2, 3].map((i) => index.find(rel(i)))).toEqual(slots);
    expect([index.find(rel(4)), index.count, index.blobCount]).toEqual([-1, 4, 3]);
  });

  it("should update an entry in place when it is set again", () => {
    const index = new EntryIndex();
    const slot = index.set(rel(7), 10, 1, 1, 1);
    expect(index.set(rel(7), 20, 2, 3, 4)).toBe(slot);
    index.setSize(slot, 21);
    index.setLastUse(slot, 5);
    index.setTouched(slot, 6);
    expect([index.count, index.bytes, contents(index)]).toEqual([1, 21, [{ rel: rel(7), blob: BLOBS[1], size: 21, lastUse: 5, touched: 6, addedAt: 4 }]]);
  });

  it("should reuse removed slots, tell a reused slot from the entry it held, and drop blobs with their last entry", () => {
    const index = new EntryIndex();
    const a = index.set(rel(0), 1, 1, 1, 1);
    const b = index.set(rel(1), 2, 2, 2, 2);
    const ticketA = index.ticket(a);
    index.remove(a);
    index.remove(a); // a second remove of a free slot changes nothing
    expect([index.count, index.blobCount, index.find(rel(0)), index.holds(a, ticketA)]).toEqual([1, 1, -1, false]);
    const c = index.set(rel(3), 3, 3, 3, 3); // same blob as rel(0)
    expect([c, index.holds(c, ticketA), index.holds(c, index.ticket(c)), index.rel(c), index.blob(c)]).toEqual([a, false, true, rel(3), BLOBS[0]]);
    index.remove(b);
    index.remove(c);
    expect([index.count, index.blobCount, [...index.slots()]]).toEqual([0, 0, []]);
  });

  it("should keep entries of the same name hash in two blobs apart", () => {
    // a foreign file can carry another blob's name with the same 40 hex: two entries, as on disk
    const index = new EntryIndex();
    const r = rel(1, BLOBS[0]);
    const other = r.replace("sha256-" + "a1".repeat(32), "sha256-" + "b2".repeat(32));
    const s1 = index.set(r, 1, 1, 1, 1);
    const s2 = index.set(other, 2, 2, 2, 2);
    expect([s1 !== s2, index.rel(s1), index.rel(s2), index.blob(s2), index.count]).toEqual([true, r, other, BLOBS[1], 2]);
  });

  it("should take the blob's name from the caller when its file name does not decode back to it", () => {
    // "x-y:<128>" is a valid digest, but its file-name form "x-y-<128>" reads back as "x:y-<128>" (too long)
    const blob = `x-y:${"d".repeat(128)}`;
    const r = entryRelPath({ blob, id: "1" });
    const index = new EntryIndex();
    expect(index.set(r, 1, 1, 1, 1)).toBe(-1);
    const slot = index.set(r, 1, 1, 1, 1, blob);
    expect([index.find(r), index.rel(slot), index.blob(slot), index.count]).toEqual([slot, r, blob, 1]);
  });

  it("should match a Map of objects under a random workload that grows it past its first capacity and removes a third of what it adds", () => {
    const index = new EntryIndex();
    const model = new Map<string, Fields>();
    const rand = rng(7);
    const check = () => {
      expect([index.count, contents(index)]).toEqual([model.size, [...model.values()].sort((a, b) => a.rel.localeCompare(b.rel))]);
      expect(index.bytes).toBe([...model.values()].reduce((n, f) => n + f.size, 0));
      // every path finds its own entry, and only present ones are found
      for (let i = 0; i < 2500; i++) {
        const s = index.find(rel(i));
        expect(s >= 0 ? index.rel(s) : undefined).toBe(model.has(rel(i)) ? rel(i) : undefined);
      }
    };
    for (let op = 0; op < 12_000; op++) {
      if (op % 3000 === 2999) check();
      const r = rel(Math.floor(rand() * 2500));
      const x = rand();
      if (x < 0.6) {
        const f = { size: Math.floor(rand() * 1e6), lastUse: rand() * 1e12, touched: rand() * 1e12, addedAt: -op };
        index.set(r, f.size, f.lastUse, f.touched, f.addedAt);
        model.set(r, { rel: r, blob: blobOfEntryName(r.slice(3))!, ...f });
      } else if (x < 0.85) {
        const s = index.find(r);
        if (s >= 0) index.remove(s);
        model.delete(r);
      } else {
        const s = index.find(r);
        expect(s >= 0).toBe(model.has(r));
        if (s >= 0) {
          index.setLastUse(s, op);
          model.get(r)!.lastUse = op;
        }
      }
    }
    check();
    expect(index.blobCount).toBe(new Set([...model.values()].map((f) => f.blob)).size);
    for (const s of [...index.slots()]) index.remove(s);
    expect([index.count, index.blobCount, index.bytes, [0, 1, 2].map((i) => index.find(rel(i)))]).toEqual([0, 0, 0, [-1, -1, -1]]);
  });
});

describe("ScannedEntries", () => {
  it("should read entry names into the same entries as their paths, and refuse anything else", () => {
    const found = new ScannedEntries();
    const index = new EntryIndex();
    const names = [5, 6, 7, 8, 9, 10, 11].map((i) => rel(i).split("/") as [string, string]);
    for (const [i, [fan, name]] of names.entries()) found.add(fan, name, found.blobOf(fan, name), 100 + i, 1e12 + i);
    expect(found.count).toBe(7);
    const slots = names.map((_, i) => {
      expect(index.findScanned(found, i)).toBe(-1);
      return index.addScanned(found, i, found.mtime(i), found.mtime(i), -1);
    });
    expect(names.map((_, i) => index.findScanned(found, i))).toEqual(slots);
    expect(contents(index)).toEqual(
      names
        .map(([fan, name], i) => {
          const r = `${fan}/${name}`;
          return { rel: r, blob: blobOfEntryName(name), size: 100 + i, lastUse: 1e12 + i, touched: 1e12 + i, addedAt: -1 };
        })
        .sort((a, b) => a.rel.localeCompare(b.rel)),
    );
    expect(names.map(([fan, name]) => index.find(`${fan}/${name}`))).toEqual(slots);

    const [fan, name] = names[0]!;
    const hex = name.slice(-40);
    const enc = name.slice(0, -41);
    const foreign: [string, string][] = [
      ["zz", name], // fan-out not hex
      [fan, name.toUpperCase()], // the path rebuilt from the hash would be another file
      [fan, `${enc}.${hex.slice(1)}`], // 39 hex
      [fan, `${enc}.${hex}0`], // 41 hex
      [fan, `latest.${hex}`], // not a blob
      [fan, `sha256-short.${hex}`],
      [fan, hex],
      [fan, `.${hex}`],
      [fan, `${name}.123.4`], // a temp file's name
    ];
    expect(foreign.map(([f, n]) => found.blobOf(f, n))).toEqual(foreign.map(() => -1));
    // one id per blob, however many names carry it
    expect(found.blobOf(fan, name)).toBe(found.blobOf(...names[3]!));
  });

  it("should keep every entry of a scan that outgrows its first arrays", () => {
    const found = new ScannedEntries();
    const index = new EntryIndex();
    for (let i = 0; i < 1000; i++) {
      const [fan, name] = rel(i).split("/") as [string, string];
      found.add(fan, name, found.blobOf(fan, name), i, 2 * i);
    }
    for (let i = 0; i < found.count; i++) index.addScanned(found, i, found.mtime(i), 0, -1);
    expect(index.bytes).toBe((999 * 1000) / 2);
    expect(contents(index)).toEqual(
      Array.from({ length: 1000 }, (_, i) => ({ rel: rel(i), blob: BLOBS[i % 3], size: i, lastUse: 2 * i, touched: 0, addedAt: -1 })).sort((a, b) =>
        a.rel.localeCompare(b.rel),
      ),
    );
  });
});

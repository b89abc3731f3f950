import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { convertBuffer, makeTar, memRange, type FixtureEntry } from "../test/helpers.js";
import { openStargz } from "./reader.js";

const fileArb = fc.record({
  name: fc.stringMatching(/^[a-c]{1,3}(\/[a-c]{1,3}){0,2}$/),
  data: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
});

describe("properties (bounded)", () => {
  it("should read back every file and every byte range exactly as written", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fileArb, { selector: (f) => f.name, maxLength: 12 }), fc.integer({ min: 1, max: 2048 }), fc.nat(), async (files, chunkSize, seed) => {
        // a name cannot be both a file and a directory: keep the ones that are not prefixes of others
        const keep = files.filter((f) => !files.some((g) => g.name.startsWith(`${f.name}/`)));
        const entries: FixtureEntry[] = keep.map((f) => ({ header: { name: f.name, type: "reg" }, data: f.data }));
        const { blob } = await convertBuffer(makeTar(entries), { chunkSize, level: 1 });
        const r = await openStargz(memRange(blob));
        for (const f of keep) {
          expect(await r.readFile(f.name)).toEqual(f.data);
          const off = f.data.length ? seed % f.data.length : 0;
          const len = (seed >> 3) % 700;
          expect(await r.readFile(f.name, off, len)).toEqual(f.data.subarray(off, off + len));
        }
      }),
      { numRuns: 40, seed: 4242 },
    );
  });

  it("should answer a corrupted or truncated blob with a typed error or the right bytes, never wrong bytes", async () => {
    const files = [
      { name: "dir/a", data: Buffer.from("alpha ".repeat(500)) },
      { name: "dir/b", data: Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 256)) },
      { name: "c", data: Buffer.from("c") },
    ];
    const { blob } = await convertBuffer(makeTar(files.map((f) => ({ header: { name: f.name, type: "reg" as const }, data: f.data }))), { chunkSize: 1500 });
    const damaged = fc.oneof(
      fc.record({ at: fc.nat({ max: blob.length - 1 }), xor: fc.integer({ min: 1, max: 255 }) }).map(({ at, xor }) => {
        const b = Buffer.from(blob);
        b[at]! ^= xor;
        return b;
      }),
      fc.nat({ max: blob.length - 1 }).map((n) => blob.subarray(0, n)),
    );
    await fc.assert(
      fc.asyncProperty(damaged, async (b) => {
        try {
          const r = await openStargz(memRange(b));
          for (const f of files) expect(await r.readFile(f.name)).toEqual(f.data);
        } catch (err) {
          expect((err as { code?: unknown }).code).toMatch(/^(ESTARGZ|TAR)_/);
        }
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});

// The error catalogue is enforced, not hoped for: every code a package declares is in ERRORS.md, every
// code in ERRORS.md is declared, every declared code is raised somewhere, and no package throws a plain
// Error. Reads the sources as text, so this package depends on none of the others.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../../..");
/** test support, not shipped: may throw what it likes */
const EXEMPT = new Set(["packages/testkit"]);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

const packages = ["packages", "apps"]
  .flatMap((group) => readdirSync(join(ROOT, group)).map((name) => `${group}/${name}`))
  .filter((pkg) => !EXEMPT.has(pkg) && statSync(join(ROOT, pkg, "src"), { throwIfNoEntry: false })?.isDirectory());
const files = packages.flatMap((pkg) => sourceFiles(join(ROOT, pkg, "src")));

/** code → the errors.ts that declares it, from every `*_ERROR_CODES = [...] as const` */
const declared = new Map<string, string>();
for (const f of files.filter((f) => f.endsWith("/errors.ts"))) {
  for (const m of readFileSync(f, "utf8").matchAll(/export const [A-Z_]+_ERROR_CODES = \[([^\]]*)\] as const/g)) {
    for (const c of m[1]!.matchAll(/"([A-Z0-9_]+)"/g)) declared.set(c[1]!, relative(ROOT, f));
  }
}
const listed = new Set([...readFileSync(join(ROOT, "ERRORS.md"), "utf8").matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));

describe("the error catalogue (ERRORS.md)", () => {
  it("should list exactly the codes the packages declare", () => {
    expect(declared.size).toBeGreaterThan(50);
    expect([...declared.keys()].filter((c) => !listed.has(c)).sort()).toEqual([]);
    expect([...listed].filter((c) => !declared.has(c)).sort()).toEqual([]);
  });

  it("should have no dead code: each is raised (or matched) outside its errors.ts", () => {
    const uses = files.filter((f) => !f.endsWith("/errors.ts")).map((f) => readFileSync(f, "utf8"));
    const dead = [...declared.keys()].filter((c) => !uses.some((text) => text.includes(`"${c}"`)));
    expect(dead.sort()).toEqual([]);
  });

  it("should have every package throw its own coded errors, never a plain Error or a bare LazypullError", () => {
    const offenders: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      for (const m of text.matchAll(/new (Error|RangeError|TypeError|LazypullError)\(/g)) {
        // the errors package defines the base class; everything else constructs its own subclass
        if (m[1] === "LazypullError" && f.includes("packages/errors/")) continue;
        const line = text.slice(0, m.index).split("\n").length;
        offenders.push(`${relative(ROOT, f)}:${line} new ${m[1]}(`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
